"""Interval scores by hand: the weighted quantile loss, coverage, width and M4's MSIS in the
data's units, and a baseline's interval from the quantiles of its errors."""

import numpy as np
import pandas as pd
import pytest
import torch

from forecast.data.datamodule import ForecastDataModule
from forecast.evaluation.intervals import IntervalScores
from forecast.evaluation.scores import Units
from forecast.evaluation.scoring import evaluate_windows
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet


def test_interval_scores_by_hand():
    # one window of 2 steps, one target, in a series of std 2, mean 10, seasonal MAE 4
    units = Units(*(torch.tensor([[v]], dtype=torch.float64) for v in (2.0, 10.0, 4.0)))
    y = torch.tensor([[[0.0], [1.0]]])  # 10 and 12 in the data's units
    quantiles = torch.tensor([[[[-1.0, 0.0, 0.5]], [[-0.5, 0.5, 2.0]]]])  # 8 10 11, 9 11 14
    scores = IntervalScores.empty([0.1, 0.5, 0.9])
    scores.update(quantiles, y, units)
    # pinball in units: step 1 (y 10): 0.1*2, 0, 0.1*1; step 2 (y 12): 0.1*3, 0.5*1, 0.1*2
    pinball = np.array([0.2 + 0.3, 0.0 + 0.5, 0.1 + 0.2])
    m = scores.metrics()
    assert m["wql"] == pytest.approx(np.mean(2 * pinball / 22))
    assert m["coverage"] == 1.0 and m["interval_width"] == pytest.approx((3 + 5) / 2)
    # both inside the 80% interval: no penalty; MSIS = mean width / seasonal MAE
    assert m["msis"] == pytest.approx(4 / 4)
    below = IntervalScores.empty([0.1, 0.9])  # y 10 below [11, 14]: 2/0.2 * 1 added
    below.update(torch.tensor([[[[0.5, 2.0]]]]), y[:, :1], units)
    assert below.metrics()["msis"] == pytest.approx((3 + 10 * 1) / 4)
    assert below.metrics()["coverage"] == 0.0


def test_a_count_on_a_whole_count_bound_is_inside():
    """Sales of 0 against a negative binomial's lower bound 0: both come back from float32
    scaled values (mean 0.8, std 1.27) a rounding apart, and still count as inside."""
    units = Units(*(torch.tensor([[v]], dtype=torch.float64) for v in (1.27, 0.8, 1.0)))
    zero = torch.tensor(-0.8 / 1.27, dtype=torch.float32)
    y = zero.view(1, 1, 1)
    above = torch.nextafter(zero, torch.tensor(1.0))  # the bound one float32 step higher
    scores = IntervalScores.empty([0.1, 0.9])
    scores.update(torch.stack([above, above + 2]).view(1, 1, 1, 2), y, units)
    assert scores.metrics()["coverage"] == 1.0


def test_a_made_up_target_is_not_scored():
    units = Units(*(torch.ones(1, 1, dtype=torch.float64) for _ in range(3)))
    scores = IntervalScores.empty([0.1, 0.9])
    scores.update(torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]]]]), torch.tensor([[[0.5], [np.nan]]]),
                  units)  # fmt: skip
    assert scores.count.item() == 1 and scores.metrics()["coverage"] == 1.0


def test_a_quantile_model_is_scored_next_to_the_seasonal_naive_interval(tmp_path):
    """On a season plus Gaussian noise, seasonal naive's errors are the difference of two
    noises: the quantiles of its training errors make an interval that covers about as
    often as it says, on the test windows too."""
    rng = np.random.default_rng(0)
    t = np.arange(3000)
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=len(t), freq="h"),
        "y": 10 + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, len(t)),
    })  # fmt: skip
    frame.to_csv(tmp_path / "noise.csv", index=False)
    dm = ForecastDataModule(str(tmp_path / "noise.csv"), lookback=48, horizon=12)
    dm.setup()
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1, quantiles=(0.1, 0.5, 0.9)), dm.spec)
    evaluation = evaluate_windows(net, dm, dm.datasets["test"], season=24)
    metrics = evaluation.metrics("test")
    for key in ("wql", "coverage", "interval_width", "msis"):
        assert np.isfinite(metrics[f"test_{key}"]) and np.isfinite(
            metrics[f"test_{key}_seasonal_naive"]
        )
    assert metrics["test_coverage_seasonal_naive"] == pytest.approx(0.8, abs=0.03)
    # the errors of y_t - y_{t-24}: noise of std 0.3 sqrt(2); the 80% interval is 2.56 of it
    assert metrics["test_interval_width_seasonal_naive"] == pytest.approx(
        2 * 1.2816 * 0.3 * np.sqrt(2), rel=0.05
    )
    assert "seasonal_naive  interval: coverage" in evaluation.table()
