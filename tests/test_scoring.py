"""The one scorer: MASE, error sums, the per-step curve, checked against exact values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import coded_frame

from forecast.data.datamodule import ForecastDataModule
from forecast.evaluation.scores import Scores, Units, seasonal_mae
from forecast.evaluation.scoring import evaluate_windows
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet


def test_seasonal_mae_is_the_in_sample_seasonal_error(tmp_path):
    path = tmp_path / "table.csv"
    coded_frame(100).to_csv(path, index=False)  # column j of row i: 100 i + j
    dm = ForecastDataModule(str(path), lookback=4, horizon=2, split_ratios=[0.5, 0.25, 0.25])
    dm.setup()
    # scaled values step by 100 / std per row, so a season of 3 rows is 300 / std
    expected = 300 / dm.spec.scaler.std
    torch.testing.assert_close(seasonal_mae(dm, 3), torch.tensor(expected), rtol=1e-5, atol=0)


def test_scores_match_direct_computation():
    torch.manual_seed(0)
    forecast, y = torch.randn(10, 4, 2), torch.randn(10, 4, 2)
    # each window's series has its own spread: errors in the data's units are weighted by it
    std = torch.rand(10, 2, dtype=torch.float64) + 0.5
    units = Units(std, torch.full_like(std, 3.0), torch.rand(10, 2, dtype=torch.float64) + 1)
    scores = Scores.empty(4, 2)
    for part in range(0, 10, 3):  # batching must not change anything
        scores.update(forecast[part : part + 3], y[part : part + 3],
                      Units(*(u[part : part + 3] for u in units)))  # fmt: skip
    m = scores.metrics(torch.ones(2, dtype=torch.float64))
    error = (forecast - y).double()
    assert m["mse"] == pytest.approx(error.square().mean().item())
    assert m["mae"] == pytest.approx(error.abs().mean().item())
    in_units = error * std.unsqueeze(1)
    assert m["mae_orig"] == pytest.approx(in_units.abs().mean((0, 1)).mean().item())
    assert m["rmse_orig"] == pytest.approx(in_units.square().mean((0, 1)).mean().sqrt().item())
    # M4's scores, window by window in the data's units, then averaged over windows
    f, a = (t.double() * std.unsqueeze(1) + 3.0 for t in (forecast, y))
    smape = (200 * (f - a).abs() / (f.abs() + a.abs())).mean(1)  # (windows, targets)
    assert m["smape"] == pytest.approx(smape.mean().item())
    mase = (f - a).abs().mean(1) / units.scale
    assert m["mase_series"] == pytest.approx(mase.mean().item())
    torch.testing.assert_close(scores.mse_by_step(), error.square().mean((0, 2)))


def test_evaluation_of_a_perfect_forecaster_and_the_baselines(tmp_path):
    """A pure daily sine: seasonal naive is exact, so its MSE is 0 and the naive one is not."""
    t = np.arange(400)
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=400, freq="h")})
    frame["wave"] = np.sin(2 * np.pi * t / 24)
    path = tmp_path / "wave.csv"
    frame.to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=48, horizon=12)
    dm.setup()
    net = LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), dm.spec)
    evaluation = evaluate_windows(net, dm, dm.datasets["test"])
    metrics = evaluation.metrics("test")
    assert evaluation.season == 24
    assert metrics["test_mse_seasonal_naive"] == pytest.approx(0, abs=1e-10)
    assert metrics["test_mse_linear"] < 1e-4  # a sine continues linearly from its lookback
    assert metrics["test_mse_naive"] > 0.1
    # the in-sample seasonal error is 0 too: MASE guards the division
    assert len(evaluation.windows) == len(dm.datasets["test"]) == 80 - 12 + 1
    assert list(evaluation.by_step().columns) == ["model", "naive", "seasonal_naive", "linear"]


def test_a_season_longer_than_the_lookback_drops_only_the_seasonal_naive(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=300, freq="D")})
    frame["sales"] = np.arange(300.0) % 7
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=5, horizon=3)
    dm.setup()
    net = LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), dm.spec)
    evaluation = evaluate_windows(net, dm, dm.datasets["test"])
    assert evaluation.season == 7  # daily data: a week
    assert list(evaluation.scores) == ["model", "naive", "linear"]
    metrics = evaluation.metrics("test")
    assert "test_mse_seasonal_naive" not in metrics and metrics["test_mase"] > 0


def test_a_filled_target_is_not_scored(tmp_path):
    """Issue #22, item 4: a ramp y = t whose last value is missing, filled by interpolation.
    The naive forecast (the last input, repeated) misses step h of a window by exactly h; the
    filled last value would add another error where it is a target (the last step of the last
    window). It is skipped: the naive MSE is exactly that of the observed targets, and the
    report says so."""
    lookback, horizon, n = 6, 4, 100
    y = np.arange(n, dtype=float)
    y[-1] = np.nan
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"), "y": y})
    frame.to_csv(tmp_path / "ramp.csv", index=False)
    dm = ForecastDataModule(
        str(tmp_path / "ramp.csv"), lookback=lookback, horizon=horizon, fill_missing="interpolate"
    )
    dm.setup()
    test = dm.datasets["test"]
    net = LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), dm.spec)
    evaluation = evaluate_windows(net, dm, test)
    assert evaluation.skipped == 1
    # by hand: window k's step h misses by h (in the data's units); the target at row n - 1
    # (the last window's last step) is left out
    squared, count = 0.0, 0
    for k in range(len(test)):
        first_target = int(test.starts(torch.tensor([k]))[0]) + lookback
        for h in range(1, horizon + 1):
            if first_target + h - 1 != n - 1:
                squared, count = squared + h**2, count + 1
    std = dm.spec.target_scaler.std[0]
    metrics = evaluation.metrics("test")
    assert metrics["test_mse_naive"] == pytest.approx(squared / count / std**2, rel=1e-6)
    assert metrics["test_targets_skipped"] == 1
    assert "1 target value(s) filled by data.fill_gaps or data.fill_missing not scored" in (
        evaluation.table()
    )
