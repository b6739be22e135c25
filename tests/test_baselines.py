"""Baselines against exact values: they are what every model is measured by."""

from __future__ import annotations

import pytest
import torch

from forecast.data.clock import season_from_freq
from forecast.data.windows import WindowDataset
from forecast.model.baselines import LinearBaseline, repeat_last, seasonal_naive


def test_repeat_last_and_seasonal_naive_are_exact():
    x = torch.arange(12.0).reshape(1, 6, 2)  # row i = [2i, 2i + 1]
    torch.testing.assert_close(repeat_last(3, [1])(x), torch.tensor([[[11.0], [11.0], [11.0]]]))
    # period 2: steps 1..5 take rows 4, 5, 4, 5, 4 of the lookback
    forecast = seasonal_naive(5, [0, 1], period=2)(x)
    torch.testing.assert_close(forecast[0, :, 0], torch.tensor([8.0, 10.0, 8.0, 10.0, 8.0]))
    torch.testing.assert_close(forecast[0, :, 1], forecast[0, :, 0] + 1)


@pytest.mark.parametrize(
    ("freq", "period"),
    [("h", 24), ("15min", 96), ("10min", 144), ("D", 7), ("B", 5), ("W-SUN", 52), ("MS", 12),
     ("ME", 12), ("BMS", 12), ("SMS", 24), ("2MS", 6), ("QS", 4), ("QS-OCT", 4), ("BQS", 4),
     ("YS", 1), ("5min", 288)],
)  # fmt: skip
def test_season_follows_the_frequency(freq, period):
    assert season_from_freq(freq) == period


def test_linear_baseline_continues_a_ramp_and_sees_only_training_windows():
    ramp = torch.arange(60.0).unsqueeze(1) * 0.1  # one column, slope 0.1 per row
    train = WindowDataset(ramp, [(0, 40)], lookback=8, horizon=4, target_index=[0])
    linear = LinearBaseline.fit(train)
    x = (torch.arange(50.0, 58.0) * 0.1).view(1, 8, 1)  # a window beyond the training rows
    expected = (torch.arange(58.0, 62.0) * 0.1).view(1, 4, 1)
    torch.testing.assert_close(linear(x), expected, atol=1e-3, rtol=0)
