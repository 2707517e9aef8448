# The two quick-start commands (see README.md):
#   make demo   run order_sync against local sandbox stores and print what landed where
#   make test   run the whole test suite
#   make bench  benchmark order_sync + tracking_sync (ORDERS=1000 VENDORS=5 by default; see docs/benchmarks.md)
.PHONY: demo test bench
SHELL := /bin/bash

demo:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/demo.py

test:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" -m pytest $(PYTEST_ARGS)

ORDERS ?= 1000
VENDORS ?= 5
bench:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/benchmark.py --orders $(ORDERS) --vendors $(VENDORS) $(BENCH_ARGS)
