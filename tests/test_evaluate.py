"""Baselines, MASE, the per-step curve, backtests and quantiles, checked against exact values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import coded_frame, compose_config, sine_frame

from forecast.baselines import LinearBaseline, repeat_last, season_from_freq, seasonal_naive
from forecast.errors import ForecastError
from forecast.evaluate import Scores, evaluate, evaluate_windows, mase_scale
from forecast.model import LSTMNet, pinball_loss
from forecast.windows import ForecastDataModule, WindowDataset


def test_repeat_last_and_seasonal_naive_are_exact():
    x = torch.arange(12.0).reshape(1, 6, 2)  # row i = [2i, 2i + 1]
    torch.testing.assert_close(repeat_last(3, [1])(x), torch.tensor([[[11.0], [11.0], [11.0]]]))
    # period 2: steps 1..5 take rows 4, 5, 4, 5, 4 of the lookback
    forecast = seasonal_naive(5, [0, 1], period=2)(x)
    torch.testing.assert_close(forecast[0, :, 0], torch.tensor([8.0, 10.0, 8.0, 10.0, 8.0]))
    torch.testing.assert_close(forecast[0, :, 1], forecast[0, :, 0] + 1)


@pytest.mark.parametrize(
    ("freq", "period"), [("h", 24), ("15min", 96), ("D", 7), ("MS", 12), ("W-SUN", 52)]
)
def test_season_follows_the_frequency(freq, period):
    assert season_from_freq(freq) == period


def test_linear_baseline_continues_a_ramp_and_sees_only_training_windows():
    ramp = torch.arange(60.0).unsqueeze(1) * 0.1  # one column, slope 0.1 per row
    train = WindowDataset(ramp, [(0, 40)], lookback=8, horizon=4, target_index=[0])
    linear = LinearBaseline.fit(train)
    x = (torch.arange(50.0, 58.0) * 0.1).view(1, 8, 1)  # a window beyond the training rows
    expected = (torch.arange(58.0, 62.0) * 0.1).view(1, 4, 1)
    torch.testing.assert_close(linear(x), expected, atol=1e-3, rtol=0)


def test_mase_scale_is_the_in_sample_seasonal_error(tmp_path):
    path = tmp_path / "table.csv"
    coded_frame(100).to_csv(path, index=False)  # column j of row i: 100 i + j
    dm = ForecastDataModule(str(path), lookback=4, horizon=2, split_ratios=[0.5, 0.25, 0.25])
    dm.setup()
    # scaled values step by 100 / std per row, so a season of 3 rows is 300 / std
    expected = 300 / dm.scaler.std
    torch.testing.assert_close(mase_scale(dm, 3), torch.tensor(expected), rtol=1e-5, atol=0)


def test_scores_match_direct_computation():
    torch.manual_seed(0)
    forecast, y = torch.randn(10, 4, 2), torch.randn(10, 4, 2)
    scores = Scores.empty(4, 2)
    for part in range(0, 10, 3):  # batching must not change anything
        scores.update(forecast[part : part + 3], y[part : part + 3])
    std, scale = torch.tensor([2.0, 3.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    m = scores.metrics(std, scale)
    error = (forecast - y).double()
    assert m["mse"] == pytest.approx(error.square().mean().item())
    assert m["mae"] == pytest.approx(error.abs().mean().item())
    assert m["mae_orig"] == pytest.approx((error.abs().mean((0, 1)) * std).mean().item())
    torch.testing.assert_close(scores.mse_by_step(), error.square().mean((0, 2)))


def test_strided_windows_restart_in_every_segment():
    values = torch.zeros(50, 1)
    dataset = WindowDataset(values, [(0, 20), (30, 50)], lookback=4, horizon=2, target_index=[0])
    assert len(dataset) == 30
    assert dataset.strided(5).tolist() == [0, 5, 10, 15, 20, 25]
    assert dataset.starts(dataset.strided(5)).tolist() == [0, 5, 10, 30, 35, 40]


def test_span_windows_keep_their_targets_inside_the_span(tmp_path):
    path = tmp_path / "table.csv"
    coded_frame(200).to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=10, horizon=5)
    dm.setup()
    dataset = dm.span("2024-01-03 00:00", "2024-01-04 23:00")  # rows 48 .. 95
    index = torch.arange(len(dataset))
    described = dm.describe_windows(dataset, index)
    assert described.origin.iloc[0] == pd.Timestamp("2024-01-03 00:00")
    assert described.origin.iloc[-1] == pd.Timestamp("2024-01-04 19:00")  # + 4 h = 23:00
    assert len(dataset) == 96 - 48 - 5 + 1
    with pytest.raises(ForecastError, match="targets between"):
        dm.span("2030-01-01", None)


def test_pinball_loss_is_exact():
    quantiles = torch.tensor([[0.0, 0.0]])  # levels 0.1 and 0.9, both forecast 0
    assert pinball_loss(quantiles, torch.tensor([1.0]), [0.1, 0.9]).item() == pytest.approx(0.5)
    # under-forecast by 1: 0.1 * 1 and 0.9 * 1; over-forecast by 1: 0.9 and 0.1
    assert pinball_loss(quantiles, torch.tensor([-1.0]), [0.1, 0.9]).item() == pytest.approx(0.5)
    assert pinball_loss(quantiles[:, :1], torch.tensor([1.0]), [0.1]).item() == pytest.approx(0.1)


def test_quantile_head_shapes_and_point_forecast():
    net = LSTMNet(3, 2, 12, 4, 8, 1, target_index=[0, 2], quantiles=[0.1, 0.5, 0.9]).eval()
    x = torch.randn(5, 12, 3)
    out = net.decode(x)[0]
    assert out.shape == (5, 4, 2, 4)  # point forecast and three quantiles
    torch.testing.assert_close(net(x)[0], out[..., 0])
    assert net.decode(x[0])[0].shape == (4, 2, 4)
    with pytest.raises(ForecastError, match="quantiles"):
        LSTMNet(3, 2, 12, 4, quantiles=[0.9, 0.1])


def test_evaluation_of_a_perfect_forecaster_and_the_baselines(tmp_path):
    """A pure daily sine: seasonal naive is exact, so its MSE is 0 and the naive one is not."""
    t = np.arange(400)
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=400, freq="h")})
    frame["wave"] = np.sin(2 * np.pi * t / 24)
    path = tmp_path / "wave.csv"
    frame.to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=48, horizon=12)
    dm.setup()
    net = LSTMNet(1, 1, 48, 12, 4, 1)
    evaluation = evaluate_windows(net, dm, dm.datasets["test"])
    metrics = evaluation.metrics("test")
    assert evaluation.season == 24
    assert metrics["test_mse_seasonal_naive"] == pytest.approx(0, abs=1e-10)
    assert metrics["test_mse_linear"] < 1e-4  # a sine continues linearly from its lookback
    assert metrics["test_mse_naive"] > 0.1
    # the in-sample seasonal error is 0 too: MASE guards the division
    assert len(evaluation.windows) == len(dm.datasets["test"]) == 80 - 12 + 1
    assert list(evaluation.by_step().columns) == ["model", "naive", "seasonal_naive", "linear"]


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


def test_a_season_longer_than_the_lookback_drops_only_the_seasonal_naive(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=300, freq="D")})
    frame["sales"] = np.arange(300.0) % 7
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=5, horizon=3)
    dm.setup()
    evaluation = evaluate_windows(LSTMNet(1, 1, 5, 3, 4, 1), dm, dm.datasets["test"])
    assert evaluation.season == 7  # daily data: a week
    assert list(evaluation.scores) == ["model", "naive", "linear"]
    metrics = evaluation.metrics("test")
    assert "test_mse_seasonal_naive" not in metrics and metrics["test_mase"] > 0
