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
	$(PYTHON) scripts/preset_runs.py
	$(PYTHON) scripts/benchmark_training.py
	$(PYTHON) scripts/benchmark_training.py --grid --repeats 3 --batches 35
	$(PYTHON) scripts/profile_training.py
	$(PYTHON) scripts/benchmark_inference.py
	$(PYTHON) scripts/benchmark_cpu.py
	$(PYTHON) scripts/benchmark_memory.py
	$(PYTHON) scripts/benchmark_serving.py
	$(PYTHON) scripts/readme_tables.py

reproduce: install
	$(PYTHON) scripts/reproduce_benchmark.py
	$(PYTHON) scripts/reproduce_benchmark.py --label lookback336 --override data.lookback=336 --datasets etth1 --seeds 42
	$(PYTHON) scripts/reproduce_benchmark.py --label lookback720 --override data.lookback=720 --datasets etth1 --seeds 42
	$(PYTHON) scripts/readme_tables.py
