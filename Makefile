# cvmatch: `make run` starts the whole system; `make test` runs the whole suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced

.PHONY: all venv run test test-fast lint protos protos-check buf-lint bench clean

all: test

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The virtual environment follows uv.lock exactly (every dependency pinned for the whole workspace).
$(STAMP): $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(PY) tools/devstack.py

protos: venv
	$(PY) tools/protos.py generate

protos-check: venv
	$(PY) tools/protos.py check

buf-lint: venv
	$(PY) tools/protos.py lint

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: venv
	$(MAKE) --no-print-directory lint buf-lint protos-check
	$(VENV)/bin/pytest -q -p no:randomly

bench: venv
	$(PY) tools/bench_extraction.py
	$(PY) tools/bench_matcher_speed.py

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .cvmatch
