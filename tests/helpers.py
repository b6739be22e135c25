"""Small hand-made tables and the real configs with tiny overrides, shared by the tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from forecast.data.spec import DataSpec

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

    import forecast.config  # noqa: F401  (the resolvers conf/ uses: ${stem:...})
    from forecast.reference import CONF_DIR

    outputs = [
        f"paths.output_dir={tmp / 'run' if name == 'config' else tmp}",
        f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides=[*(TINY if name == "config" else []), *outputs, *overrides])


def spec_for(
    n_features: int, lookback: int, horizon: int, target_index: list[int] | None = None
) -> DataSpec:
    """A DataSpec of features ``f0, f1, ...`` forecasting those at ``target_index`` (all)."""
    features = [f"f{j}" for j in range(n_features)]
    index = range(n_features) if target_index is None else target_index
    targets = [features[j] for j in index]
    return DataSpec(features=features, targets=targets, lookback=lookback, horizon=horizon)


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise TimeoutError(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(argv: list[str], cwd: Path, url: str) -> Iterator[None]:
    """Run a server process until ``url`` answers 200; stop it afterwards."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        # `mlflow models serve` starts uvicorn by name: find it next to this Python, however
        # the tests were started (a virtual environment need not be on PATH)
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_up(url, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def sites(count: int) -> pd.DataFrame:
    """``count`` series of ``sine_frame``'s columns and different lengths, each site's rows
    together, with a text column no model reads."""
    return pd.concat(
        sine_frame(30 + k, seed=k).assign(site=f"s{k}", notes="text the model never reads")
        for k in range(count)
    ).reset_index(drop=True)


def per_site(model: Path):
    """The model at ``model`` (trained on ``sine_frame``) applied to each site of ``sites``."""
    from dataclasses import replace

    from forecast import Forecaster

    one = Forecaster.load(model)
    return Forecaster(one.net, replace(one.spec, series_id="site"))
