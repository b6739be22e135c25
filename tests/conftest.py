"""Small hand-made tables, and one tiny training run shared by the tests that inspect it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
ETTH1 = REPO / "data" / "ETTh1.csv"


def coded_frame(n_rows: int, columns: tuple[str, ...] = ("a", "b", "c")) -> pd.DataFrame:
    """Hourly rows where column j of row i holds ``100 * i + j``."""
    frame = pd.DataFrame(
        {c: 100.0 * np.arange(n_rows) + j for j, c in enumerate(columns)},
    )
    frame.insert(0, "date", pd.date_range("2024-01-01", periods=n_rows, freq="h"))
    return frame


def sine_frame(n_rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three noisy daily sines: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    frame = pd.DataFrame(
        {
            "load": 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n_rows),
            "temp": 20 + 2 * np.cos(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n_rows),
            "price": 5 + np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(n_rows),
        }
    )
    frame.insert(0, "date", pd.date_range("2024-01-01", periods=n_rows, freq="h"))
    return frame


@pytest.fixture
def sine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    return path


TINY = [
    "data=csv",
    "data.lookback=24",
    "data.horizon=6",
    "data.batch_size=64",
    "model.hidden_size=16",
    "model.num_layers=2",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_config(tmp: Path, overrides: list[str], name: str = "config"):
    """The real conf/ with tiny overrides (training) or none (``eval``); outputs and the
    MLflow store inside ``tmp``."""
    from hydra import compose, initialize_config_dir

    from forecast.config import CONF_DIR

    outputs = [
        f"paths.output_dir={tmp / 'run' if name == 'config' else tmp}",
        f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides=[*(TINY if name == "config" else []), *outputs, *overrides])


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """One tiny training run shared by the tests that inspect its outputs."""
    from forecast.train import train

    tmp = tmp_path_factory.mktemp("trained")
    csv = tmp / "sines.csv"
    sine_frame().to_csv(csv, index=False)
    cfg = compose_config(tmp, [f"data.path={csv}"])
    metrics = train(cfg)
    return {
        "cfg": cfg,
        "metrics": metrics,
        "csv": csv,
        "tmp": tmp,
        "model": tmp / "run" / "model.pt",
    }


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
