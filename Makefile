# Quick start: `make run` serves the demo site; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app sciweek
HOST ?= 127.0.0.1
PORT ?= 5000
# pytest processes (pytest-xdist): the suite waits on servers, browsers and workers much of
# the time, so two processes on two cores finish sooner; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

.PHONY: run test test-js install install-dev translations extract-messages migrate lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed translations

install-dev: $(VENV)/.installed-dev translations

# Compiled message catalogues are build output, made from the reviewed .po files.
translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d sciweek/translations

extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o sciweek/translations/messages.pot .
	$(BIN)/pybabel update -N -i sciweek/translations/messages.pot -d sciweek/translations

migrate: install
	$(FLASK) db upgrade

run: migrate
	$(FLASK) seed-demo --if-empty
	$(FLASK) run --host $(HOST) --port $(PORT)

test: lint typecheck
	@$(MAKE) --no-print-directory test-js
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The scanner page's decisions (static/js/scanner-core.js) against tests/scan_cases.json,
# with node's own test runner. Skipped without node, except in CI.
test-js:
	@if command -v node >/dev/null 2>&1; then node --test tests/js/; \
	elif [ "$$CI" = "true" ]; then echo "node is required in CI (Debian package nodejs)" >&2; exit 1; \
	else echo "SKIPPED: JavaScript tests in tests/js/ (node is not installed)"; fi

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check sciweek tests benchmarks

# mypy on sciweek/ against tools/mypy-baseline.txt, which may only shrink (see tools/typecheck.py).
typecheck: install-dev
	$(BIN)/python tools/typecheck.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
