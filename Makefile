# One entry point for what a developer or CI runs. `make test` is what .ci/run runs.

# The python of every target (or `make ... PYTHON=/path/to/python`): inside a venv (an activated
# one, or a venv's python3 first on PATH) that venv's; otherwise the checkout's own venv .venv,
# made from $(BASE_PYTHON) when missing. Debian's python3 refuses pip outside a venv (PEP 668).
BASE_PYTHON ?= python3
VENV_DIR := .venv
ifdef VIRTUAL_ENV
PYTHON ?= $(VIRTUAL_ENV)/bin/python
else
PATH_VENV_PYTHON := $(shell $(BASE_PYTHON) -c \
  'import sys; print(sys.executable if sys.prefix != sys.base_prefix else "")' 2>/dev/null)
ifneq ($(PATH_VENV_PYTHON),)
PYTHON ?= $(PATH_VENV_PYTHON)
else
PYTHON ?= $(VENV_DIR)/bin/python
endif
endif
# The venv to make first: only when PYTHON is .venv's.
VENV := $(filter $(VENV_DIR)/bin/python,$(PYTHON))
# Where PYTHON's pip puts console scripts (`pruneflow`).
SCRIPTS = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')

# The quick start's sweep (`make run SWEEP="..."` for another).
SWEEP ?= -m prune.sparsity=0.25,0.5,0.9

# Debian packages the tests use: a private sshd for the SSH device tests; qemu and debootstrap
# for the emulated Raspberry Pi (slow tests only).
# postgresql: a private PostgreSQL server for the PostgreSQL tracking-backend test; chromium:
# the browser test of `pruneflow ui`.
TEST_DEBS = openssh-server postgresql chromium
SLOW_DEBS = qemu-user-static binfmt-support debootstrap

.PHONY: help run venv print-python install system-deps slow-system-deps test test-slow lint docs bench
# A bare `make` lists the targets (README documents only named ones: `make run`, `make test`).
.DEFAULT_GOAL := help

# Every target with its `## ` description (the self-documenting Makefile idiom).
help: ## list the targets and what each does
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  make %-18s %s\n", $$1, $$2}' \
	  $(MAKEFILE_LIST)

# The quick start: pruneflow installed, then the default sweep in this folder.
run: $(VENV) ## the quick start: install pruneflow, run the default sweep (SWEEP="...")
	$(PYTHON) -m pip install -q -e .
	$(SCRIPTS)/pruneflow $(SWEEP)
	@echo "make: the pruneflow command is $(SCRIPTS)/pruneflow"

venv: $(VENV) ## make the checkout's venv .venv (when make uses it)

print-python: ## print the python every target uses
	@echo $(PYTHON)

# The checkout's venv (git-ignored). `python3 -m venv` needs ensurepip, which Debian ships apart
# in python3-venv: installed with apt-get when missing (root, as on CI machines).
$(VENV_DIR)/bin/python:
	@$(BASE_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "make: $(BASE_PYTHON) cannot make a venv (no ensurepip; Debian ships it in" \
	    "python3-venv): installing python3-venv with apt-get"; \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "make: that needs root and apt-get: sudo apt-get install python3-venv," \
	      "or run make in an active venv" >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
	@echo "make: creating the venv $(VENV_DIR) with" \
	  "$$($(BASE_PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])')"
	@$(BASE_PYTHON) -m venv $(VENV_DIR) || { rm -rf $(VENV_DIR); exit 1; }

# Installs only what is missing (apt-get needs root, as on CI machines).
system-deps: ## install the Debian packages the tests use (root)
	@dpkg -s $(TEST_DEBS) >/dev/null 2>&1 || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_DEBS); }

slow-system-deps: ## install the Debian packages the slow tests use (root)
	@dpkg -s $(SLOW_DEBS) >/dev/null 2>&1 || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SLOW_DEBS); }

# Python packages of the project and of its tests.
install: $(VENV) ## install pruneflow and its test dependencies (editable)
	$(PYTHON) -m pip install -q -e ".[test]"

# The default test run: everything but the `slow` marker, on TEST_WORKERS processes (most of a
# test's time is a child process importing TensorFlow: two halve CI's time on 2 cores); one file's
# tests stay in one process (--dist loadfile: its module fixtures are made once).
TEST_WORKERS ?= 2
test: system-deps install lint ## lint, then every test but the slow ones (what CI runs)
	$(PYTHON) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --durations=30

# Long end-to-end runs, kept out of CI (with the ray extra: the Ray launcher's test).
test-slow: system-deps slow-system-deps install ## the slow end-to-end tests
	$(PYTHON) -m pip install -q -e ".[test,ray]"
	$(PYTHON) -m pytest -m slow

lint: $(VENV) ## ruff check and ruff format --check
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# The reference in docs/reference/, generated from the code (tests/test_docs.py fails when stale).
docs: $(VENV) ## regenerate docs/reference/ from results.py, the schemas and conf/
	$(PYTHON) scripts/gen_docs.py docs/reference

# The figures in BENCHMARKS.md.
bench: system-deps install ## measure the figures in BENCHMARKS.md (long)
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
	$(PYTHON) bench/channels.py
	$(PYTHON) bench/report_speed.py 3 1000
	$(PYTHON) bench/failures.py 3
	$(PYTHON) bench/own_model.py 5
	$(PYTHON) bench/own_tflite.py
	$(PYTHON) bench/zoo.py 3
	$(PYTHON) bench/inspect_speed.py 3
	$(PYTHON) bench/energy.py --rounds 2
	$(PYTHON) bench/float16_compute.py
	$(PYTHON) bench/compare_cost.py 2 readme 3 10
	@# this version against the previous one: OLD_PYTHON=<a venv's python with it installed>
	@if [ -n "$(OLD_PYTHON)" ]; then $(PYTHON) bench/previous_version.py 3 $(OLD_PYTHON); fi
	@# issue #21's side-by-side figures: OLD_CHECKOUT=<a checkout of the previous version>
	@if [ -n "$(OLD_CHECKOUT)" ]; then $(PYTHON) bench/sweep_overhead.py 3 $(OLD_CHECKOUT) && \
	  OLD_CHECKOUT=$(OLD_CHECKOUT) $(PYTHON) bench/study_speed.py 2 mobilenet growth; fi
	@# the models cache's gain: PRE_CACHE_CHECKOUT=<a checkout of a97ccbb, before the cache>
	@if [ -n "$(PRE_CACHE_CHECKOUT)" ]; then \
	  $(PYTHON) bench/models_cache.py 2 $(PRE_CACHE_CHECKOUT) digits && \
	  $(PYTHON) bench/models_cache.py 1 $(PRE_CACHE_CHECKOUT) mobilenet; fi
