"""Conformal calibration: offsets worked out by hand, kept in the model file, and the nominal
coverage reached on a generated series whose model's intervals were too narrow."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import compose_config, spec_for

from forecast import Forecaster
from forecast.config import check_config
from forecast.data.scaling import Scaler
from forecast.data.windows import WindowDataset
from forecast.errors import ForecastError
from forecast.model.calibration import (
    GAP,
    GRID,
    Calibration,
    conformal,
    conformal_quantiles,
    coverage,
    residual_quantiles,
)
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.serving.checkpoint import load_checkpoint, save_checkpoint


def test_offsets_move_each_level_and_keep_the_levels_in_order():
    offsets = torch.tensor([[[-1.0, 0.5]], [[2.0, -3.0]]])  # (horizon 2, targets 1, levels 2)
    calibration = Calibration([0.1, 0.9], offsets)
    quantiles = torch.tensor([[[[0.0, 0.0, 1.0]], [[0.0, 1.0, 2.0]]]])  # levels .1 .5 .9
    moved = calibration(quantiles, [0.1, 0.5, 0.9])
    # step 1: 0 - 1, 0 (not calibrated), 1 + 0.5; step 2: 0 + 2, 1, 2 - 3, sorted
    assert moved.tolist() == [[[[-1.0, 0.0, 1.5]], [[-1.0, 1.0, 2.0]]]]
    assert calibration(quantiles, [0.2, 0.5, 0.8]) is quantiles  # no level it knows


def test_a_level_between_close_calibrated_levels_takes_their_interpolated_offset():
    offsets = torch.tensor([[[1.0, 3.0, -2.0]]])  # (horizon 1, targets 1), levels .1 .2 .9
    calibration = Calibration([0.1, 0.2, 0.9], offsets)
    quantiles = torch.tensor([[[[0.0, 10.0, 20.0, 30.0]]]])  # levels .05 .15 .5 .95
    moved = calibration(quantiles, [0.05, 0.15, 0.5, 0.95])
    # .15: halfway from 1 to 3; .5 lies between .2 and .9, too far apart; .05, .95 outside
    assert moved.tolist() == [[[[0.0, 12.0, 20.0, 30.0]]]]
    assert calibration(quantiles[..., :1], [0.125])[..., 0].item() == pytest.approx(1.5)


def test_residual_quantiles_are_the_conformal_order_statistics():
    """One series of 0, 1, ..., 9 and a forecast of zeros: the errors at the one step are
    the targets 2, ..., 9 (m = 8). Level 0.25 takes the floor(9 x 0.25) = 2nd smallest, 3;
    level 0.75 the ceil(9 x 0.75) = 7th, 8; level 0.05 the smallest, as 9 x 0.05 < 1."""
    values = torch.arange(10.0).unsqueeze(-1)
    dataset = windows(values, lookback=2, horizon=1)
    zeros = residual_quantiles(dataset, lambda b: torch.zeros_like(b.y), [0.05, 0.25, 0.75])
    assert zeros[0, 0].tolist() == [2.0, 3.0, 8.0]


def test_few_errors_still_bound_their_share():
    """8 errors and a 0.1 bound: the smallest (a plain quantile would put 1/8 below); a NaN
    (a made-up target) is not counted; no error at all: no offset (NaN)."""
    errors = torch.tensor([5.0, 1.0, 7.0, 3.0, 2.0, 8.0, 6.0, 4.0, math.nan])
    columns = torch.stack([errors, errors, torch.full_like(errors, math.nan)], dim=-1)
    got = conformal_quantiles(columns.unsqueeze(1), [0.1, 0.9, 0.5])[0]
    assert got[:2].tolist() == [1.0, 8.0] and math.isnan(got[2])


def windows(values: torch.Tensor, lookback: int, horizon: int) -> WindowDataset:
    """Every window of one series of one target."""
    return WindowDataset(values, [(0, len(values))], lookback, horizon, [0])


def test_a_step_with_few_windows_takes_the_whole_horizon_s_offset():
    """40 windows of 3 steps whose errors grow by step: a 0.1 bound wants 100 errors a step,
    so the three steps share the order statistic of all 120; a 0.5 bound (20 wanted) keeps
    each step's own."""
    values = torch.zeros(44, 1)
    dataset = windows(values, lookback=2, horizon=3)  # 40 windows
    errors = torch.arange(40.0).view(40, 1, 1) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1)
    offsets = residual_quantiles(dataset, lambda b: -errors[: len(b.y)], [0.1, 0.5])
    pooled = conformal_quantiles(errors.flatten().view(-1, 1), [0.1])[0]
    assert offsets[:, 0, 0].tolist() == [pooled.item()] * 3
    assert offsets[:, 0, 1].tolist() == [20.0, 40.0, 60.0]  # ceil(41 x 0.5) = 21st of 0..39


def noisy_series(n: int, seed: int = 0) -> torch.Tensor:
    """A daily sine under Student-t noise, scaled: stationary, so validation speaks for
    the test."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.sin(2 * np.pi * t / 24) + 0.5 * rng.standard_t(4, n)
    return torch.tensor(values, dtype=torch.float32).unsqueeze(-1)


def test_calibration_reaches_the_nominal_coverage_on_a_generated_series():
    """An untrained quantile head (an interval far from 80%) calibrated on one stretch of a
    stationary series covers 80% of the next stretch, within 0.03."""
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1, quantiles=[0.1, 0.9]), spec_for(1, 24, 6))
    val = windows(noisy_series(4000, seed=1), lookback=24, horizon=6)
    test = windows(noisy_series(4000, seed=2), lookback=24, horizon=6)
    before = coverage(net, test, [0.1, 0.9], stride=1)
    assert abs(before - 0.8) > 0.2
    net.calibration = conformal(net, val, [0.1, 0.9])
    assert net.calibration.levels == [0.1, 0.9]  # quantile heads: the levels they learned
    assert coverage(net, val, [0.1, 0.9], stride=1) == pytest.approx(0.8, abs=0.005)
    assert coverage(net, test, [0.1, 0.9], stride=1) == pytest.approx(0.8, abs=0.03)


def test_a_calibrated_model_file_forecasts_calibrated(tmp_path):
    spec = replace(spec_for(1, 24, 6), freq="h", scaler=Scaler(np.zeros(1), np.ones(1)))
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1, distribution="normal"), spec)
    net.calibration = conformal(net, windows(noisy_series(500), 24, 6), [0.1, 0.5, 0.9])
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "model.pt", net, spec))
    # a distribution: its own levels and the grid, every step between them at most GAP
    assert loaded.calibration.levels == sorted({*GRID, 0.1, 0.5, 0.9})
    assert all(b - a <= GAP + 1e-9 for a, b in itertools.pairwise(GRID))
    assert torch.equal(loaded.calibration.offsets, net.calibration.offsets)
    x = noisy_series(24)
    with torch.no_grad():
        assert torch.equal(loaded.forecast(x).quantiles, net.forecast(x).quantiles)
    history = pd.DataFrame({"date": pd.date_range("2024", periods=24, freq="h"), "f0": x[:, 0]})
    frame = Forecaster(loaded, spec).predict(history)
    assert list(frame.columns) == ["date", "f0", "f0_q0.1", "f0_q0.5", "f0_q0.9"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["conformal=true"], "conformal=true calibrates quantiles: set model.quantiles"),
        (
            ["conformal=true", "model.quantiles=[0.1,0.9]", "refit=true"],
            "which refit=true trains on",
        ),
        (["conformal=maybe"], "conformal='maybe' must be true or false"),
    ],
)
def test_conformal_settings_that_cannot_work_are_named(tmp_path, overrides, message):
    cfg = compose_config(tmp_path, ["data.path=x.csv", *overrides])
    with pytest.raises(ForecastError, match=message):
        check_config(cfg)
