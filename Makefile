# The two quick-start commands (see README.md):
#   make demo   run order_sync against local sandbox stores and print what landed where
#   make test   run the whole test suite
.PHONY: demo test
SHELL := /bin/bash

demo:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" scripts/demo.py

test:
	@venv=$$(scripts/bootstrap.sh) && "$$venv/bin/python" -m pytest $(PYTEST_ARGS)
