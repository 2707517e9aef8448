"""Operator settings (Variable ``ordersync_settings``) and vendors (``ordersync_vendors``).

Defaults live in ``include/rules/default_settings.json``; the Variable only
overrides. Anything wrong raises :class:`SettingsError` naming the key, before
the run writes anything.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ordersync.models import FinancialStatus
from ordersync.paths import rules_dir
from ordersync.platforms import registry

FINANCIAL_STATUSES: tuple[str, ...] = get_args(FinancialStatus)


def _known_platform(value: str) -> str:
    if value not in registry.names():
        raise ValueError(f"unknown platform {value!r}; known platforms: {', '.join(registry.names())}")
    return value


PlatformName = Annotated[str, AfterValidator(_known_platform)]  # a name in the platform registry


class SettingsError(ValueError):
    """Bad operator configuration: the run stops before any write."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MerchantContact(_Strict):
    name: str = Field(min_length=1)
    email: EmailStr
    phone: str = Field(min_length=3)


class FailureAlerts(_Strict):
    enabled: bool = True
    emails: list[EmailStr] = Field(default_factory=list)
    webhook_conn_id: str | None = None


VendorShipping = Literal["proportional", "full", "method_only"]


def _shown(value: Any) -> str:
    """A setting's value as the operator typed it (JSON)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str)


class VendorSettings(_Strict):
    """A vendor entry's ``settings``: per-vendor values that replace the global ones for that vendor only.
    Only these keys; the global-only ones (``order_sync_enabled``, ``sync_frequency_minutes``,
    ``order_push_platforms``, ``failure_alerts``, ``initial_lookback_hours``) and any other are refused."""

    push_only_if_paid: bool | None = None
    push_unmapped_products: bool | None = None
    override_customer_data: bool | None = None
    merchant_contact: MerchantContact | None = None
    order_status_filter: list[FinancialStatus] | None = None
    locations_addon: bool | None = None
    push_delay_minutes: int | None = Field(default=None, ge=0, le=1440)
    hold_risky_orders: bool | None = None
    vendor_shipping: VendorShipping | None = None
    notify_customer_on_tracking: bool | None = None
    sync_refunds: bool | None = None


class Settings(_Strict):
    """The operator's settings. Every default is in ``include/rules/default_settings.json``, none here."""

    order_sync_enabled: bool
    push_only_if_paid: bool
    push_unmapped_products: bool
    override_customer_data: bool
    merchant_contact: MerchantContact | None
    sync_frequency_minutes: Literal[5, 10, 15, 30, 60]
    order_status_filter: list[FinancialStatus]
    order_push_platforms: list[PlatformName]  # null in the defaults: every registered platform
    locations_addon: bool
    notify_customer_on_tracking: bool
    failure_alerts: FailureAlerts
    initial_lookback_hours: int = Field(ge=0)
    push_delay_minutes: int = Field(ge=0, le=1440)
    hold_risky_orders: bool
    vendor_shipping: VendorShipping
    sync_refunds: bool
    # key -> "global" or "vendor <name>": where each value came from (set by for_vendor)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _vendor: str | None = PrivateAttr(default=None)

    def source(self, key: str) -> str:
        """Where ``key``'s value came from: ``global`` or ``vendor <name>`` (a vendor's ``settings``)."""
        return self._sources.get(key, "global")

    def said(self, key: str) -> str:
        """``key=value, source`` as a decision line names the value that decided, e.g.
        ``push_only_if_paid=true, vendor Bolt Supply``."""
        return f"{key}={_shown(getattr(self, key))}, {self.source(key)}"

    def vendor_keys(self) -> list[str]:
        """The keys whose value is the vendor's own (``settings`` in its ordersync_vendors entry)."""
        return sorted(k for k, where in self._sources.items() if where != "global")

    def vendor_note(self) -> str:
        """``vendor Bolt Supply's own settings: push_only_if_paid=false, override_customer_data=true`` (the
        merchant contact is named, not shown)."""
        shown = [
            k if k == "merchant_contact" else f"{k}={_shown(getattr(self, k))}" for k in self.vendor_keys()
        ]
        return f"vendor {self._vendor}'s own settings: {', '.join(shown)}" if shown else ""

    def for_vendor(self, vendor: VendorConfig) -> Settings:
        """The settings that apply to ``vendor``: its ``settings`` replace the global values, each marked with
        where it came from. Raises :class:`SettingsError` naming the vendor and the key."""
        overrides = vendor.settings.model_dump(exclude_unset=True) if vendor.settings else {}
        if not overrides:
            return self
        merged = {**self.model_dump(), **overrides}
        if merged.get("override_customer_data") and not merged.get("merchant_contact"):
            raise SettingsError(
                f"Variable ordersync_vendors: vendor {vendor.vendor!r}: settings.override_customer_data is on "
                "but there is no merchant_contact, neither the vendor's (settings.merchant_contact) nor the global "
                "one: the buyer's contact would reach the vendor"
            )
        try:
            effective = Settings.model_validate(merged)
        except ValidationError as exc:
            raise SettingsError(_describe(exc, f"vendor {vendor.vendor!r}: settings")) from None
        effective._sources = {k: f"vendor {vendor.vendor}" for k in overrides}
        effective._vendor = vendor.vendor
        return effective

    @field_validator("order_push_platforms", mode="before")
    @classmethod
    def _every_platform_by_default(cls, value: Any) -> Any:
        return list(registry.names()) if value is None else value  # null: every registered platform

    @model_validator(mode="after")
    def _contact_required_for_override(self) -> Settings:
        if self.override_customer_data and self.merchant_contact is None:
            raise ValueError("merchant_contact is required when override_customer_data is on")
        return self


class VendorConfig(_Strict):
    vendor: str = Field(min_length=1)
    platform: PlatformName
    conn_id: str = Field(min_length=1)
    location_id: str | None = None
    enabled: bool = True
    settings: VendorSettings | None = None  # per-vendor overrides of the global settings

    @field_validator("vendor")
    @classmethod
    def _strip(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("vendor name has leading or trailing spaces")
        return value


@lru_cache(maxsize=1)
def default_settings() -> dict[str, Any]:
    path = rules_dir() / "default_settings.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"default settings file {path} is unreadable: {exc}") from exc


def _describe(exc: ValidationError, what: str) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or what
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{loc}: {msg}")
    return f"{what} is invalid: " + "; ".join(problems)


def _load_json(raw: str | None, what: str) -> Any:
    if raw is None or raw.strip() == "":
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def parse_settings(raw: str | None) -> Settings:
    """Parse the ``ordersync_settings`` Variable (JSON text; None = defaults)."""
    data = _load_json(raw, "Variable ordersync_settings")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError("Variable ordersync_settings must be a JSON object of settings")
    defaults = {k: v for k, v in default_settings().items() if not k.startswith("_")}
    missing = sorted(set(Settings.model_fields) - set(defaults))
    if missing:
        raise SettingsError(
            f"default settings file {rules_dir() / 'default_settings.json'} has no value for "
            f"{', '.join(missing)}"
        )
    merged = {**defaults, **data}
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, "Variable ordersync_settings")) from None


def parse_vendors(raw: str | None) -> list[VendorConfig]:
    """Parse the ``ordersync_vendors`` Variable (JSON list)."""
    data = _load_json(raw, "Variable ordersync_vendors")
    if data is None:
        raise SettingsError("Variable ordersync_vendors is missing: set it to a JSON list of vendors")
    if not isinstance(data, list):
        raise SettingsError("Variable ordersync_vendors must be a JSON list of vendor objects")
    vendors: list[VendorConfig] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise SettingsError(
                f"Variable ordersync_vendors[{index}] must be a vendor object "
                f'({{"vendor": …, "platform": …, "conn_id": …}}), got {json.dumps(item)[:80]}'
            )
        if "platform" in item and item["platform"] not in registry.names():
            name = item.get("vendor", f"#{index}")
            raise SettingsError(
                f"Variable ordersync_vendors[{index}] ({name}): unknown platform {item['platform']!r}; "
                f"known platforms: {', '.join(registry.names())}"
            )
        try:
            vendors.append(VendorConfig.model_validate(item))
        except ValidationError as exc:
            name = f" ({item['vendor']})" if isinstance(item.get("vendor"), str) else ""  # names the vendor
            raise SettingsError(_describe(exc, f"Variable ordersync_vendors[{index}]{name}")) from None
    names = [v.vendor for v in vendors]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SettingsError(f"Variable ordersync_vendors lists vendor(s) more than once: {', '.join(dupes)}")
    return vendors


def settings_per_vendor(settings: Settings, vendors: list[VendorConfig]) -> dict[str, Settings]:
    """Each vendor's effective settings (the global ones where it has no ``settings``); the first vendor whose
    values do not hold together (e.g. ``override_customer_data`` on with no ``merchant_contact``, global or
    its own) raises :class:`SettingsError` naming the vendor and the key."""
    return {v.vendor: settings.for_vendor(v) for v in vendors}


def vendors_by_name(vendors: list[VendorConfig]) -> dict[str, VendorConfig]:
    return {v.vendor: v for v in vendors}
