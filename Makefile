# Pipedeck: `make run` starts the app with demo data, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

# The first Python >= 3.12 on PATH, else among pyenv's installed versions; `make PYTHON=/path/to/python ...`
# chooses another.
PYTHON ?= $(shell for p in python3.12 python3.13 python3.14 python3 \
	$$(command -v pyenv >/dev/null 2>&1 && ls -d "$$(pyenv root)"/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo $$p; break; fi; done)

.PHONY: run test lint bench venv clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "Pipedeck needs Python >= 3.12: install python3.12 (apt install python3.12 python3.12-venv, or pyenv install 3.12)"; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e examples/pipedeck-sleep-plugin
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	PORT=$(PORT) $(PY) -m daphne -b 127.0.0.1 -p $(PORT) designer.asgi:application

# What CI checks before the tests (the same tools as .pre-commit-config.yaml)
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy orchestrator designer
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .bench-venvs
