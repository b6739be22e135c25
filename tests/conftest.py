"""Fixtures: a table on disk, and one tiny training run shared by the tests that inspect it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: a core each, torch and the commands
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # read before torch is first imported

from helpers import compose_config, sine_frame


@pytest.fixture
def sine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """One tiny training run shared by the tests that inspect its outputs: the model alone
    (no combination with the baselines), whose file these tests take apart."""
    from forecast.train import train

    tmp = tmp_path_factory.mktemp("trained")
    csv = tmp / "sines.csv"
    sine_frame().to_csv(csv, index=False)
    overrides = [f"data.path={csv}", "ensemble.combine=mean"]
    cfg = compose_config(tmp, overrides)
    metrics = train(cfg)
    return {
        "cfg": cfg,
        "cfg_overrides": overrides,
        "metrics": metrics,
        "csv": csv,
        "tmp": tmp,
        "model": tmp / "run" / "model.pt",
    }


@pytest.fixture(scope="session")
def spark():
    """A local Spark session of 2 cores; the [spark] extra, which `make test` installs."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers' Python: this one
    session = (
        SparkSession.builder.master("local[2]")
        .appName("forecast-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture
def trained_store(trained, monkeypatch):
    """Point MLflow (the env var and the process-wide URI, which Lightning's logger sets and
    which wins over the env var) at the shared run's store for one test."""
    import mlflow

    uri = trained["cfg"].logger.tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
