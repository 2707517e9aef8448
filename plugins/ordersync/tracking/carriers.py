"""The carrier map: a vendor's carrier name as the merchant store's tracking company (data in
``include/rules/carriers.json``)."""

from __future__ import annotations

import json
from functools import lru_cache

from ordersync.paths import rules_dir


def _carrier_key(name: str) -> str:
    """Case, spaces and punctuation do not matter: "Royal Mail", "royal-mail" (a WooCommerce slug), "ROYAL MAIL"."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@lru_cache(maxsize=1)
def _carriers() -> dict[str, str]:
    data = json.loads((rules_dir() / "carriers.json").read_text())
    return {_carrier_key(str(k)): str(v) for k, v in data["to_shopify"].items()}


def shopify_company(name: str | None) -> str | None:
    """The merchant-side tracking company for a vendor's carrier name; an unknown name is passed as is."""
    if name is None or not str(name).strip():
        return None
    return _carriers().get(_carrier_key(str(name)), str(name).strip())
