"""summary: the run's totals from the ledger; the watermark moves only once every fetched order was decided."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from ordersync.context import Env, RunParams
from ordersync.orders.fetch import EVENT_DAG, MERCHANT_WATERMARK

# A scheduled run marks done the webhook events received this long before its fetch began: it read those
# orders' changes (the merchant's order search can lag a few seconds behind a change; the margin covers it).
RECONCILE_MARGIN = timedelta(seconds=60)

log = logging.getLogger("ordersync")


def summarise(
    env: Env, run: RunParams, fetched: dict[str, Any] | None, decided_ok: bool, results: list[dict[str, Any]]
) -> dict[str, Any]:
    """Totals from the ledger, the watermark (moved only once every fetched order was decided), scratch cleared."""
    totals: Counter[str] = Counter()
    failed: list[str] = []
    if run.dry_run:
        for r in results:
            totals.update(
                {k: int(v) for k, v in r.items() if isinstance(v, int) and k not in ("calls", "throttled")}
            )
    else:
        for row in env.ledger.decisions_for_run(run.run_id):
            totals[row["outcome"]] += 1
            if row["outcome"] == "failed":
                failed.append(f"{row['merchant_order_name']} → {row['vendor'] or '(order)'}")
    moved = None
    complete = bool(fetched) and decided_ok and not run.dry_run and not run.order_ids and not run.vendors
    if complete and fetched and not run.event and env.settings.order_sync_enabled:
        newest = fetched.get("newest_update")
        if newest:
            env.ledger.set_watermark(MERCHANT_WATERMARK, datetime.fromisoformat(newest))
            moved = newest
        covered = env.ledger.inbox.reconcile(
            EVENT_DAG, datetime.fromisoformat(fetched["started_at"]) - RECONCILE_MARGIN
        )
        if covered:
            log.info("%d webhook event(s) waiting in the inbox were covered by this run's read", covered)
    if run.event and not run.dry_run:
        if complete:  # every order it took was decided; a failed share is retried like any other
            env.ledger.inbox.finish(run.run_id)
        else:
            released = env.ledger.inbox.release(run.run_id)
            log.warning("event run did not finish: its %d webhook event(s) go back to the inbox", released)
    env.ledger.clear_run(run.run_id)
    log.info(
        "run %s: %s; watermark %s%s",
        run.run_id,
        dict(totals) or "nothing to push",
        f"moved to {moved}" if moved else "unchanged",
        f"; FAILED: {', '.join(failed)}" if failed else "",
    )
    return {
        "totals": dict(totals),
        "failed": failed,
        "watermark": moved,
        "events": (fetched or {}).get("events", 0),
    }
