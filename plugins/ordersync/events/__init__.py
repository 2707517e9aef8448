"""Event-driven sync: the stores' webhooks as hints that start a run within seconds.

``topics`` names what each store sends and what ordersync does with it; ``inbox`` is the ledger's durable
record of accepted deliveries (the receiver writes it, the event runs take from it); ``subscribe`` keeps the
stores' webhook subscriptions pointing at the receiver. The receiver itself (an HTTP endpoint inside the
Airflow API server) lives in ``ordersync.airflow.webhooks``.
"""
