"""forecast-eval end to end: backtests from a model file, a quantile model scored and served,
and the test split kept out of training and selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import compose_config, sine_frame

from forecast.evaluate import evaluate


def test_backtest_from_the_checkpoint(trained, tmp_path):
    overrides = [
        f"ckpt_path={trained['model']}",
        "backtest.stride=24",
        "backtest.start='2024-01-05 00:00'",
        "backtest.end='2024-01-20 23:00'",
    ]
    cfg = compose_config(tmp_path, overrides, name="eval")
    metrics = evaluate(cfg)
    assert {"backtest_mse", "backtest_mase", "backtest_mse_naive"} <= set(metrics)
    windows = pd.read_csv(tmp_path / "evaluation" / "backtest_windows.csv", parse_dates=["origin"])
    assert windows.origin.iloc[0] == pd.Timestamp("2024-01-05 00:00")
    assert (windows.origin.diff().dropna() == pd.Timedelta(hours=24)).all()
    assert windows.origin.iloc[-1] + pd.Timedelta(hours=5) <= pd.Timestamp("2024-01-20 23:00")
    assert len(windows) == 16  # origins 5th .. 20th of January
    assert metrics["backtest_mse"] == pytest.approx(windows.mse.mean(), rel=1e-5)


def test_quantile_model_trains_scores_and_forecasts_intervals(tmp_path):
    from forecast import Forecaster
    from forecast.train import train

    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    cfg = compose_config(tmp_path, [f"data.path={path}", "model.quantiles=[0.1,0.9]"])
    metrics = train(cfg)
    assert 0 <= metrics["test_coverage"] <= 1 and metrics["test_pinball"] > 0
    forecaster = Forecaster.load(tmp_path / "run" / "model.pt")
    future = forecaster.predict(sine_frame().iloc[-30:])
    assert list(future.columns) == [
        "date", "load", "temp", "price",
        "load_q0.1", "load_q0.9", "temp_q0.1", "temp_q0.9", "price_q0.1", "price_q0.9",
    ]  # fmt: skip
    # quantile columns are unscaled like the point forecasts: same units, same neighbourhood
    assert (future["load_q0.1"] - future["load"]).abs().max() < 5


def test_test_rows_never_reach_training_or_selection(tmp_path):
    """Train twice, the second time with every test row replaced by noise: the weights and
    the selected epoch must be bit-identical, so the test split cannot have informed either."""
    from forecast.train import train

    frame = sine_frame(600)
    noisy = frame.copy()
    test_rows = slice(int(0.8 * 600), None)  # split_ratios 0.7/0.1/0.2
    noisy.iloc[test_rows, 1:] = np.random.default_rng(1).normal(0, 50, size=(120, 3))
    runs = []
    for name, table in (("clean", frame), ("noisy", noisy)):
        path = tmp_path / f"{name}.csv"
        table.to_csv(path, index=False)
        cfg = compose_config(
            tmp_path / name, [f"data.path={path}", "test=false", "register_model=null"]
        )
        metrics = train(cfg)
        runs.append((metrics["best_val_loss"], torch.load(tmp_path / name / "run" / "model.pt")))
    (val_a, a), (val_b, b) = runs
    assert val_a == val_b
    assert a["data"]["scaler"] == b["data"]["scaler"]
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
