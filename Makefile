# One entry point for set-up: every target creates .venv (Python 3.11) and installs the pinned stack when needed.
# The pins live in requirements/constraints.txt; PIP_CONSTRAINT (not -c) also holds the build environments of
# source distributions (basicsr's sdist asks for torch) to them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sclle-installed

.PHONY: install lint test test-second-env test-wheel demo lle5 ablation gpu-check clean-venv

install: $(STAMP)

EXTRAS := tests,lint,cpu,openvino,mmcv-lite

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=requirements/constraints.txt $(PY) -m pip install -e '.[$(EXTRAS)]'
	touch $(STAMP)

lint: $(STAMP)  ## ruff: pycodestyle, pyflakes and import order (settings in pyproject.toml)
	$(PY) -m ruff check .

test: $(STAMP)  ## run the test suite (CPU, no downloads; uses ../shared/assets when present)
	$(PY) -m pytest -ra tests

test-second-env:  ## the plugin installed into another torch/torchvision, without a runtime (CI's second environment)
	.ci/second_env.sh

test-wheel:  ## the wheel in a fresh venv outside the checkout: no extra enhances on CPU; with mmcv-lite, demo trained and tested
	.ci/wheel_install.sh

demo: $(STAMP)  ## train a small SCL-LLE on data built from installed packages, a few minutes on CPU
	$(PY) scripts/run_demo.py

lle5: $(STAMP)  ## enhance DICM/LIME/MEF/NPE/VV with the released weights, NIQE per set
	$(PY) sclle_basicsr/test.py -opt options/test/test_SCLLLE_lle5.yml

ablation: $(STAMP)  ## Table 3 at CPU scale: train the ablations, NIQE on the five sets, sheet (resumable, hours)
	$(PY) scripts/run_ablation_study.py

gpu-check: $(STAMP)  ## on a CUDA machine: CUDA tests, training and inference figures, report in results/ (else a dry run)
	$(PY) scripts/gpu_check.py

clean-venv:
	rm -rf $(VENV)
