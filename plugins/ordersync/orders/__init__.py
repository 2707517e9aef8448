"""order_sync, one module per task, in the order a run takes them:

``validate`` (validate_settings) → ``fetch`` (fetch_orders) → ``decide`` → ``push`` (push_vendor_orders,
one mapped task per vendor, with ``exactly_once`` and ``fanout``) → ``summary``. ``split`` turns a merchant
order into vendor shares and drafts. Steps hand each other ids and counts; merchant orders travel through
the ledger's run scratch, and the ledger records every decision.
"""
