# One entry point for what a developer or CI runs. `make test` is what .ci/run runs.
PYTHON ?= python3

# Debian packages the tests use: a private sshd for the SSH device tests; qemu and debootstrap
# for the emulated Raspberry Pi (slow tests only).
# postgresql: a private PostgreSQL server for the PostgreSQL tracking-backend test; chromium:
# the browser test of `pruneflow ui`.
TEST_DEBS = openssh-server postgresql chromium
SLOW_DEBS = qemu-user-static binfmt-support debootstrap

.PHONY: install system-deps slow-system-deps test test-slow lint bench

# Installs only what is missing (apt-get needs root, as on CI machines).
system-deps:
	@dpkg -s $(TEST_DEBS) >/dev/null 2>&1 || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_DEBS); }

slow-system-deps:
	@dpkg -s $(SLOW_DEBS) >/dev/null 2>&1 || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SLOW_DEBS); }

# Python packages of the project and of its tests.
install:
	$(PYTHON) -m pip install -q -e ".[test]"

# The default test run: everything but the `slow` marker.
test: system-deps install lint
	$(PYTHON) -m pytest -m "not slow"

# Long end-to-end runs, kept out of CI (with the ray extra: the Ray launcher's test).
test-slow: system-deps slow-system-deps install
	$(PYTHON) -m pip install -q -e ".[test,ray]"
	$(PYTHON) -m pytest -m slow

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# The figures in BENCHMARKS.md.
bench: system-deps install
	$(PYTHON) bench/sweep_overhead.py
	$(PYTHON) bench/parallel_sweeps.py
	$(PYTHON) bench/digits_numbers.py
	$(PYTHON) bench/remote_overhead.py
	$(PYTHON) bench/pruning_quantization.py
	$(PYTHON) bench/mobilenet_int8.py
	$(PYTHON) bench/pruning_recipes.py uniform/1.0/constant global/0.75/constant
	$(PYTHON) bench/pruning_mobilenet.py
	$(PYTHON) bench/sparse_fp32.py
	$(PYTHON) bench/device_protocol.py
