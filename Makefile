# The two quick-start commands (see README.md):
#   make demo   run order_sync against local sandbox stores and print what landed where
#   make test   run the whole test suite
# and, for operators who want the UI:
#   make up     Airflow + the sandbox stores with demo orders, UI on http://127.0.0.1:8080 (Ctrl-C stops)
#               EXECUTOR=celery for the CeleryExecutor on PostgreSQL and Redis; PORT=8081 for another port
#   make bench  benchmark order_sync + tracking_sync (ORDERS=1000 VENDORS=5 by default; see docs/benchmarks.md)
.PHONY: demo test up bench
SHELL := /bin/bash

demo:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/demo.py

test:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" -m pytest $(PYTEST_ARGS)

up:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/stack.py $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(PORT),--port $(PORT))

ORDERS ?= 1000
VENDORS ?= 5
bench:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/benchmark.py --orders $(ORDERS) --vendors $(VENDORS) $(BENCH_ARGS)

# make bench-webhooks  event-driven latency (webhook -> vendor order, shipment -> merchant fulfilment) on the
#                      LocalExecutor and the Celery stack; EXECUTOR=local or celery for one; see
#                      docs/benchmarks.md#webhook-latency
.PHONY: bench-webhooks
bench-webhooks:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/benchmark.py --webhooks --executor $(or $(EXECUTOR),both) $(BENCH_ARGS)
