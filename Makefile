# The two commands of the README. Each installs what it needs first; torch is pinned and
# installed alone so pip takes the local CPU wheel instead of downloading a CUDA build.
PYTHON ?= python3

.PHONY: install train test lint format bench reproduce

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
	$(PYTHON) scripts/benchmark_training.py --grid --out bench/training_grid.json
	$(PYTHON) scripts/benchmark_training.py
	$(PYTHON) scripts/benchmark_memory.py
	$(PYTHON) scripts/benchmark_inference.py
	$(PYTHON) scripts/benchmark_cpu.py
	$(PYTHON) scripts/profile_training.py
	$(PYTHON) scripts/benchmark_serving.py

reproduce: install
	$(PYTHON) scripts/reproduce_benchmark.py
