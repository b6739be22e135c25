# The two commands of the README. Each installs what it needs first; torch is pinned and
# installed alone so pip takes the local CPU wheel instead of downloading a CUDA build.
PYTHON ?= python3

.PHONY: install train test lint format bench

install:
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[dev]"

train: install
	forecast-train

test: install lint
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

bench: install
	$(PYTHON) scripts/benchmark_training.py
