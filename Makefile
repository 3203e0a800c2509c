# tfbsim — two commands do all setup:  `make demo`  and  `make test`.
# Both create .venv when needed: pinned CPU torch first (unless a torch is already there, e.g. your CUDA
# build), then `pip install -e .[test]`. The install is skipped while pyproject.toml and setup.py are unchanged.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.tfbsim-installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: setup demo test test-slow test-all bench model clean help

help:
	@echo "make demo       build -> MD -> analysis on the bundled model; report in $(DEMO_OUT)/"
	@echo "make test       the default test suite (excludes slow and gpu tests)"
	@echo "make test-slow  the long physics validation (minutes to an hour)"
	@echo "make bench      benchmarks; results go to BENCHMARKS.md"
	@echo "make model      re-create the bundled MACE model (hours on 2 CPU cores)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml setup.py | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/tfbsim demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

bench: setup
	$(PY) bench/run_all.py

model: setup
	$(VENV)/bin/tfbsim train make-bundled --out workflows/potentials/models --work model_work

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build dist *.egg-info
