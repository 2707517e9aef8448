"""A vendor order created exactly once, whatever fails: the ledger brackets every create (``in_flight`` before,
``pushed`` after) and a create whose outcome is unknown is looked up by its marker before trying again."""

from __future__ import annotations

import logging

from ordersync.context import Env
from ordersync.ledger import Pair
from ordersync.models import VendorOrderDraft, VendorOrderRef
from ordersync.platforms.base import StoreError, TransientError, VendorStore

log = logging.getLogger("ordersync")

CREATE_CYCLES = 3  # create -> unknown outcome -> look up -> create again, at most this often


def push_exactly_once(
    env: Env,
    store: VendorStore,
    draft: VendorOrderDraft,
    run_id: str,
    sync: dict[str, str] | None = None,
    known: dict[tuple[str, str], Pair] | None = None,
) -> tuple[VendorOrderRef, str]:
    """Create the vendor order unless an earlier attempt already did; the ledger brackets every create.

    ``known``: the pairs of this order's chunk as read just before (one run at a time, and one thread per
    pair, so nothing else changes this pair meanwhile; begin_attempt still refuses a pushed pair)."""
    ledger, vendor, name = env.ledger, draft.vendor, draft.merchant_order_name
    key = (draft.merchant_order_id, vendor)
    pair = known.get(key) if known is not None else ledger.pairs([draft.merchant_order_id], vendor).get(key)
    if pair is not None and pair.state == "pushed":
        return VendorOrderRef(id=pair.vendor_order_id or "", name=pair.vendor_order_name or ""), "already had"
    if pair is not None and pair.state in ("in_flight", "unknown"):
        found = store.find_order(draft.marker, pair.first_attempt_at)
        if found is not None:
            ledger.mark_pushed(
                draft.merchant_order_id,
                vendor,
                name,
                found.id,
                found.name,
                "found in the vendor store after an interrupted attempt",
                sync,
            )
            return found, "found (an earlier interrupted attempt had created it)"
    last_error: StoreError | None = None
    for cycle in range(1, CREATE_CYCLES + 1):
        pair = ledger.begin_attempt(draft.merchant_order_id, vendor, name, draft.marker, run_id)
        try:
            ref = store.create_order(draft)
        except TransientError as exc:
            ledger.mark_failed(draft.merchant_order_id, vendor, name, str(exc), exc.maybe_committed)
            last_error = exc
            if not exc.maybe_committed:
                raise
            log.info(
                "create of order %s at vendor %r: outcome unknown (%s); looking it up by its marker %s",
                name,
                vendor,
                exc,
                draft.marker,
            )
            # Store search is eventually consistent (Shopify's within seconds): give it time before looking.
            env.sleep(max(env.policy.delay(cycle), env.policy.lookup_delay_seconds))
            found = store.find_order(draft.marker, pair.first_attempt_at)
            if found is not None:
                ledger.mark_pushed(
                    draft.merchant_order_id, vendor, name, found.id, found.name, f"found after: {exc}", sync
                )
                return found, "found (the interrupted create had succeeded)"
            continue
        except StoreError as exc:
            ledger.mark_failed(draft.merchant_order_id, vendor, name, str(exc), maybe_committed=False)
            raise
        ledger.mark_pushed(
            draft.merchant_order_id, vendor, name, ref.id, ref.name, "created", sync, later=True
        )
        return ref, "created"
    assert last_error is not None
    raise TransientError(
        f"{last_error} (no vendor order found by marker after {CREATE_CYCLES} attempts; "
        "retried on the next run)",
        maybe_committed=True,
    )
