"""What one run of a step works with: the resolved configuration (:class:`Env`), the operator's params
(:class:`RunParams`), and how a failure reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ordersync.ledger import Ledger
from ordersync.platforms.base import StoreConnection, StoreError
from ordersync.platforms.http import RetryPolicy
from ordersync.settings import Settings, SettingsError, VendorConfig


@dataclass
class Env:
    """Everything a step needs, resolved from Airflow Variables and Connections (see ``ordersync.airflow``)."""

    settings: Settings
    vendors: dict[str, VendorConfig]
    merchant: StoreConnection
    connections: dict[str, StoreConnection]  # vendor conn_id -> connection
    ledger: Ledger
    webhook: StoreConnection | None = None  # failure_alerts.webhook_conn_id
    smtp_conn_id: str | None = None  # e-mail alerts (failure_alerts.emails) go through it
    mailer: Callable[[list[str], str, str], None] | None = None  # (to, subject, html): sends one e-mail
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    sleep: Callable[[float], None] = time.sleep
    _per_vendor: dict[str, Settings] = field(default_factory=dict, repr=False)

    def settings_for(self, vendor: str) -> Settings:
        """The settings that apply to ``vendor``: the global ones with its ``settings`` in ordersync_vendors
        laid over them (each value knows where it came from: ``Settings.said``)."""
        found = self._per_vendor.get(vendor)
        if found is None:
            config = self.vendors.get(vendor)
            found = self.settings.for_vendor(config) if config is not None else self.settings
            self._per_vendor[vendor] = found
        return found


@dataclass(frozen=True)
class RunParams:
    run_id: str
    order_ids: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    dry_run: bool = False
    # started by a webhook event: takes the orders in the webhook inbox, honours every setting and the sync
    # horizon like a scheduled run, and moves no watermark
    event: bool = False

    @classmethod
    def from_params(cls, run_id: str, params: dict[str, Any], event: bool = False) -> RunParams:
        def strings(name: str) -> tuple[str, ...]:
            value = params.get(name) or []
            if isinstance(value, str):
                value = [v for v in value.replace(",", "\n").splitlines()]
            if not isinstance(value, (list, tuple)):
                raise SettingsError(f"param {name} must be a list of strings, got {type(value).__name__}")
            return tuple(str(v).strip() for v in value if str(v).strip())

        dry_run = params.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise SettingsError(f"param dry_run must be true or false, got {dry_run!r}")
        order_ids = strings("order_ids")
        return cls(
            run_id=run_id,
            order_ids=order_ids,
            vendors=strings("vendors"),
            dry_run=dry_run,
            event=event and not order_ids,  # a person naming orders wins over the inbox
        )


def failure_reason(exc: Exception) -> str:
    """A failed line's reason: a store error already names the store and its answer; anything else its type."""
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
