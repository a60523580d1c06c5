# Two entry points a newcomer needs: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.setup-stamp
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test lint services

setup: $(STAMP)

# pipenv reads the package index from PIP_INDEX_URL (see Pipfile); default to pip's own.
$(STAMP): Pipfile.lock
	@python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet pipenv
	export PIP_INDEX_URL="$${PIP_INDEX_URL:-$$(python3 -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)')}" \
		PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1; \
		python3 -m pipenv sync --dev
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/flask --app app demo

services:
	bash scripts/services.sh

test: setup services
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# ruff, then the layer and cycle contracts of pyproject.toml [tool.importlinter].
lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	PYTHONPATH=. $(VENV)/bin/lint-imports --no-cache
