# One entry point for set-up: every target creates .venv (Python 3.11) and installs the pinned stack when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sclle-installed

.PHONY: install test demo lle5 clean-venv

install: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

test: $(STAMP)  ## run the test suite (CPU, no downloads; uses ../shared/assets when present)
	$(PY) -m pytest -ra tests

demo: $(STAMP)  ## train a small SCL-LLE on data built from installed packages, a few minutes on CPU
	$(PY) scripts/run_demo.py

lle5: $(STAMP)  ## enhance DICM/LIME/MEF/NPE/VV with the released weights, NIQE per set
	$(PY) sclle_basicsr/test.py -opt options/test/test_SCLLLE_lle5.yml

clean-venv:
	rm -rf $(VENV)
