# One venv, made from pyproject.toml; every target below uses it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TARGET ?= x86-host
MODEL ?=
SAMPLES ?= 16000
BATCH ?= 1

.PHONY: setup test lint analyze profile export bench report clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check toolkit tests benchmarks

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: lint
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected: failing"; exit 1; fi; exit $$rc

analyze: $(STAMP)
	$(PY) -m toolkit analyze $(MODEL) --batch $(BATCH) --samples $(SAMPLES)

clean:
	rm -rf $(VENV) build artifacts .pytest_cache
