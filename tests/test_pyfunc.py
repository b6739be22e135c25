"""The MLflow pyfunc: models logged by earlier versions of forecast still load from the
registry and forecast the same numbers."""

from __future__ import annotations

import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

OLD = Path(__file__).resolve().parent / "data"


def test_a_pyfunc_logged_before_the_package_move_loads_from_the_registry(tmp_path, monkeypatch):
    """``pyfunc_v2.zip`` is the folder MLflow logged for the ensemble of
    ``model_v2_ensemble.pt`` (forecast at commit 3298673): its pickled model class is
    ``forecast.mlflow_model.ForecastModel`` and it carries that commit's code. Registered in a
    new store and loaded by its registry URI in this process, where today's ``forecast`` is
    imported already, it forecasts what the model file does."""
    folder = tmp_path / "logged"
    with zipfile.ZipFile(OLD / "pyfunc_v2.zip") as archive:
        archive.extractall(folder)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(folder), "model")
        mlflow.register_model(f"runs:/{run.info.run_id}/model", "old-forecast")
        pyfunc = mlflow.pyfunc.load_model("models:/old-forecast/1")
    finally:
        mlflow.set_tracking_uri(None)
    history = pd.read_csv(OLD / "history_v2.csv")
    future = pd.read_csv(OLD / "future_v2.csv")
    table = pd.concat([history.assign(is_future=False), future.assign(is_future=True)])
    got = pyfunc.predict(table)
    expected = pd.read_csv(OLD / "forecast_v2_ensemble.csv")
    assert list(got.columns) == list(expected.columns)
    assert list(got.date.astype(str)) == list(expected.date)
    for column in ("y", "y_q0.1", "y_q0.9"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-6, atol=1e-6)
