# Thin wrappers. `make run` and `make test` are the two commands a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with wxhub and its development tools

run: $(STAMP)  ## the main job on the embedded default: data/wx_data into ./wxhub.db (SQLite)
	$(BIN)/wxhub run data/wx_data

test: $(STAMP)  ## the test suite (MariaDB tests skip with a reason when no server answers)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff (lint and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## full-data benchmarks on SQLite and MariaDB; see docs/benchmarks.md
	$(BIN)/python bench/bench_run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info wxhub.db wxhub.db-wal wxhub.db-shm
