# The two commands of the README. Each installs what it needs first, into a project virtual
# environment (.venv, made from $(BASE_PYTHON) on first use) whose executables are called by
# path: nothing needs activating, and a system Python that refuses pip (PEP 668) is left alone.
# torch is installed alone first, at the pin this machine holds as a local CPU wheel, so pip
# does not download a CUDA build; pyproject.toml declares the range the code is tested with.
BASE_PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PYTHON := $(VENV)/bin/python

.PHONY: install install-spark train test test-fast lint docs format bench reproduce

$(PYTHON):
	$(BASE_PYTHON) -m venv $(VENV)

install: $(PYTHON)
	$(PYTHON) -m pip install --quiet "$(TORCH)"
	$(PYTHON) -m pip install --quiet -e ".[dev]"

train: install
	$(VENV)/bin/forecast-train

# The [spark] extra and the Java runtime Spark runs on (from the system's packages, as root,
# where none is installed): what the Spark tests need beyond `install`.
install-spark: install
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	$(PYTHON) -m pip install --quiet -e ".[dev,spark]"

# Test processes (pytest-xdist): most tests wait on a command or a server they start, and each
# worker runs torch on one thread, so two share the 2 cores of CI; 0 runs in this process.
WORKERS ?= 2

test: install-spark lint docs
	$(PYTHON) -m pytest -n $(WORKERS)

# The edit loop: everything but the tests that start whole processes (marked slow).
test-fast: install lint
	$(PYTHON) -m pytest -m "not slow"

# The config reference from conf/ and the figures from benchmarks/, checked; then the site.
docs: install
	$(PYTHON) scripts/config_reference.py --check
	$(PYTHON) scripts/readme_tables.py --check
	$(VENV)/bin/mkdocs build --strict --quiet

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
	$(PYTHON) scripts/timing_under_load.py
	$(PYTHON) scripts/readme_tables.py

reproduce: install
	$(PYTHON) scripts/reproduce_benchmark.py
	$(PYTHON) scripts/reproduce_benchmark.py --label lookback336 --override data.lookback=336 --datasets etth1 --seeds 42
	$(PYTHON) scripts/reproduce_benchmark.py --label lookback720 --override data.lookback=720 --datasets etth1 --seeds 42
	$(PYTHON) scripts/readme_tables.py
