# Pipedeck: `make run` starts the app with demo data, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

PYTHON_FOR_VENV := $(shell for p in python3.12 python3.13 python3.14 /root/.pyenv/versions/3.12.1/bin/python3.12; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then echo $$p; break; fi; done)

.PHONY: run test test-fast lint bench venv clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON_FOR_VENV)" ]; then \
		echo "Pipedeck needs Python >= 3.12: install python3.12 (apt install python3.12 python3.12-venv, or pyenv install 3.12)"; exit 1; fi
	$(PYTHON_FOR_VENV) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e examples/pipedeck-sleep-plugin
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	PORT=$(PORT) $(PY) -m daphne -b 127.0.0.1 -p $(PORT) designer.asgi:application

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy orchestrator designer
	$(VENV)/bin/ruff format --check .

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy orchestrator designer
	$(PY) -m pytest -q -p no:cacheprovider

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .bench-venvs
