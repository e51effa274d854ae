# monai-adaptiveclick: set-up, demo and tests on a fresh machine.
# `make demo` and `make test` create (or reuse) the virtual environment in $(VENV) and install what they need.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.monai-adaptiveclick-installed
OUTPUT ?= outputs/demo
PORT ?= 8000

.PHONY: venv demo test lint format label-server clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-label.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	# torch and torchvision first, pinned: this exact pair lies on the build machines' disk (SPEC section 9).
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev]"
	# MONAI Label: installed without its heavy optional dependencies, with the pins it needs (requirements-label.txt).
	$(PY) -m pip install --quiet --no-deps monailabel==0.8.5
	$(PY) -m pip install --quiet -r requirements-label.txt
	touch $(STAMP)

demo: venv
	$(PY) -m monai_adaptiveclick demo --output $(OUTPUT)

test: venv
	$(PY) -m pytest -q --doctest-modules monai_adaptiveclick tests

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

label-server: venv
	$(PY) -m monai_adaptiveclick serve-sample --port $(PORT)

clean-venv:
	rm -rf $(VENV)
