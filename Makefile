# One entry point for what a developer or CI runs. `make test` is what .ci/run runs.
PYTHON ?= python3

.PHONY: install test test-slow lint bench

# Python packages of the project and of its tests.
install:
	$(PYTHON) -m pip install -q -e ".[test]"

# The default test run: everything but the `slow` marker.
test: install lint
	$(PYTHON) -m pytest -m "not slow"

# Long end-to-end runs, kept out of CI.
test-slow: install
	$(PYTHON) -m pytest -m slow

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# The figures in BENCHMARKS.md.
bench: install
	$(PYTHON) bench/sweep_overhead.py
	$(PYTHON) bench/digits_numbers.py
