"""validate_settings: everything a run needs exists and makes sense; the ledger is reachable and current."""

from __future__ import annotations

import logging
from typing import Any

from ordersync.context import Env, RunParams
from ordersync.platforms import capabilities
from ordersync.platforms.base import StoreError
from ordersync.settings import SettingsError

log = logging.getLogger("ordersync")


def validate(env: Env, run: RunParams) -> dict[str, Any]:
    """Everything the run needs exists and makes sense; the ledger schema is current."""
    try:
        unknown = [v for v in run.vendors if v not in env.vendors]
        if unknown:
            raise SettingsError(
                f"param vendors names vendor(s) not in ordersync_vendors: {', '.join(unknown)}"
            )
        for vendor in env.vendors.values():
            try:
                capabilities(vendor.platform)
            except StoreError as exc:
                raise SettingsError(f"vendor {vendor.vendor}: {exc}") from None
    except SettingsError as exc:
        log.error("configuration problem, nothing was written: %s", exc)
        raise
    env.ledger.check()  # LedgerUnavailable: transient, the task is retried
    from ordersync.ledger.migrate import LedgerTooNew

    try:
        version = env.ledger.migrate()
    except LedgerTooNew as exc:  # permanent: the ledger belongs to a newer ordersync
        log.error("configuration problem, nothing was written: %s", exc)
        raise SettingsError(str(exc)) from None
    env.ledger.purge_stale_runs()
    log.info(
        "settings valid: %d vendor(s) configured, order sync %s, dry_run=%s, ledger schema %s",
        len(env.vendors),
        "on" if env.settings.order_sync_enabled else "OFF",
        run.dry_run,
        version,
    )
    return {"vendors": len(env.vendors), "order_ids": len(run.order_ids), "dry_run": run.dry_run}
