# One command to run the daemon on the simulator, one to run the tests.
# Both create .venv and install what they need; run them from a fresh clone.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench install install-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/risingtide run

lint: install-test
	$(BIN)/ruff check risingtide tests benchmarks
	$(BIN)/ruff format --check risingtide tests benchmarks
	$(BIN)/mypy

test: install-test
	VENV=$(VENV) bash scripts/install-system-deps
	$(BIN)/ruff check risingtide tests benchmarks
	$(BIN)/mypy
	# Two workers: the slow tests mostly wait on daemons, databases and browsers, so two at
	# once on a 2-core machine take about 7 minutes where one takes about 10.
	$(BIN)/pytest -q -n 2

bench: install-test
	$(BIN)/python benchmarks/run.py
