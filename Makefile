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

.PHONY: setup demo test test-slow test-all bench model model-v2 pbe-data pbe-tzv2p pbe-basis-check sevenn-env clean help

help:
	@echo "make demo       build -> MD -> analysis on the bundled model; report in $(DEMO_OUT)/"
	@echo "make test       the default test suite (excludes slow and gpu tests)"
	@echo "make test-slow  the long physics validation (minutes to an hour)"
	@echo "make bench      benchmarks; results go to BENCHMARKS.md"
	@echo "make model      re-create the bundled MACE model (hours on 2 CPU cores)"
	@echo "make model-v2   the v2 candidate: SevenNet-l3i5 distillation + PBE fine-tuning (needs sevenn-env, pbe-data)"
	@echo "make pbe-data   PBE (CP2K) labels of the DFT frames, resumable (hours; needs apt-get install cp2k)"
	@echo "make pbe-basis-check  the cutoff/basis check of the PBE labels (800 Ry, TZV2P; hours, resumable)"
	@echo "make pbe-tzv2p  the same frames at TZV2P, the fine-tuning set of v2 (tens of core-hours, resumable)"
	@echo "make sevenn-env the separate environment of the SevenNet teacher ($(SEVENN_VENV))"

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


PBE_DIR      ?= workflows/training/datasets/pbe-v1
CP2K_THREADS ?= 1
CP2K_WORKERS ?= 1
# another level of theory (a YAML of Cp2kSettings, e.g. $(PBE_DIR)/tzv2p/cp2k.yaml) labels into another PBE_DIR
PBE_CP2K_CONFIG ?=
# wall-clock limit of one frame (s): TZV2P takes ~2.8x the production basis, a 63-atom γ-Li3PO4 image ~1 h
CP2K_TIMEOUT_S ?= 5400
CP2K_CONFIG_ARG := $(if $(PBE_CP2K_CONFIG),--cp2k-config $(PBE_CP2K_CONFIG))
pbe-data: setup
	@test -f $(PBE_DIR)/frames.extxyz || $(VENV)/bin/tfbsim train dft-frames -o $(PBE_DIR)/frames.extxyz
	@for c in li3po4 li2po2n; do test -f $(PBE_DIR)/neb_$$c/neb.json || \
		$(VENV)/bin/tfbsim neb $$c --out $(PBE_DIR)/neb_$$c --images 5 --device cpu --dtype float64 || exit 1; done
	# training LiPON frames (the fine-tuning can start at min_dft_frames), held-out LiPON frames (the card's s_Li),
	# the Li-hop paths, the other training frames (crystals, contact), then the rest. Another labeller with another
	# --only selection may write into the same pbe.extxyz at the same time (appends are locked, none repeated).
	for sel in "--only split=train --only config_type=lipon_*" "--only split=test --only config_type=lipon_*"; do \
		$(VENV)/bin/tfbsim train label $(PBE_DIR)/frames.extxyz -o $(PBE_DIR)/pbe.extxyz --method cp2k $(CP2K_CONFIG_ARG) $$sel \
		--threads $(CP2K_THREADS) --workers $(CP2K_WORKERS) --timeout-s $(CP2K_TIMEOUT_S) || exit 1; done
	for c in li2po2n li3po4; do $(VENV)/bin/tfbsim train label $(PBE_DIR)/neb_$$c/images.extxyz \
		-o $(PBE_DIR)/pbe.extxyz --method cp2k $(CP2K_CONFIG_ARG) --threads $(CP2K_THREADS) --workers $(CP2K_WORKERS) \
		--timeout-s $(CP2K_TIMEOUT_S) || exit 1; done
	for sel in "--only split=train" ""; do \
		$(VENV)/bin/tfbsim train label $(PBE_DIR)/frames.extxyz -o $(PBE_DIR)/pbe.extxyz --method cp2k $(CP2K_CONFIG_ARG) $$sel \
		--threads $(CP2K_THREADS) --workers $(CP2K_WORKERS) --timeout-s $(CP2K_TIMEOUT_S) || exit 1; done

# The fine-tuning set of v2: pbe-v1's frames and Li-hop paths at TZV2P (pbe-tzv2p/README.md says why).
# CP2K_WORKERS=2 labels two frames at a time (two cores).
PBE_TZV2P := workflows/training/datasets/pbe-tzv2p
pbe-tzv2p:
	$(MAKE) pbe-data PBE_DIR=$(PBE_TZV2P) PBE_CP2K_CONFIG=$(PBE_TZV2P)/cp2k.yaml CP2K_TIMEOUT_S=9000

SEVENN_VENV ?= .venv-sevenn
SEVENN_STAMP := $(SEVENN_VENV)/.installed
$(SEVENN_STAMP):
	$(PYTHON) -m venv $(SEVENN_VENV)
	$(SEVENN_VENV)/bin/python -m pip install -q --upgrade pip
	$(SEVENN_VENV)/bin/python -m pip install -q $(TORCH)
	$(SEVENN_VENV)/bin/python -m pip install -q sevenn==0.13.0
	@touch $(SEVENN_STAMP)
sevenn-env: $(SEVENN_STAMP)

# The basis/cutoff check of pbe-v1 (README "Cutoff and basis"): one frame at 800 Ry, TZV2P and DZVP-UZH with the
# models scored against each level; a held-out frame at TZV2P; tzv2p/: the Li-hop end points and saddles and
# another held-out frame at TZV2P.
pbe-basis-check: setup $(SEVENN_STAMP)
	$(VENV)/bin/tfbsim train cp2k-check $(PBE_DIR)/frames.extxyz --index 12 -o $(PBE_DIR)/convergence.json \
		--threads $(CP2K_THREADS) --model v1=bundled-v1 --model teacher=sevennet:7net-l3i5
	$(VENV)/bin/tfbsim train cp2k-check $(PBE_DIR)/pbe.extxyz --index 24 --base-labels $(PBE_DIR)/pbe.extxyz \
		--variant TZV2P -o $(PBE_DIR)/convergence_TZV2P_pbe-24.json --threads $(CP2K_THREADS) \
		--model v1=bundled-v1 --model teacher=sevennet:7net-l3i5
	$(VENV)/bin/tfbsim train label $(PBE_DIR)/tzv2p/frames.extxyz -o $(PBE_DIR)/tzv2p/pbe.extxyz --method cp2k \
		--cp2k-config $(PBE_DIR)/tzv2p/cp2k.yaml --threads $(CP2K_THREADS) --workers $(CP2K_WORKERS) --timeout-s 9000

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build dist *.egg-info

# Potential v2 (candidate until its card against PBE is complete): SevenNet-l3i5 distillation, then fine-tuning on
# the PBE frames of pbe-v1; installs into $(V2_WORK)/install, not over the shipped model.
V2_WORK ?= model_work/v2-distil
model-v2: setup $(SEVENN_STAMP)
	$(VENV)/bin/tfbsim train make-bundled --config workflows/training/configs/bundled-v2.yaml \
		--work $(V2_WORK) --out $(V2_WORK)/install
