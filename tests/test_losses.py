"""Losses and quantile figures against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from forecast.data.scaling import Standardize
from forecast.errors import ForecastError
from forecast.model.losses import Forecast, ForecastLoss, pinball_loss


def test_pinball_loss_is_exact():
    quantiles = torch.tensor([[0.0, 0.0]])  # levels 0.1 and 0.9, both forecast 0
    assert pinball_loss(quantiles, torch.tensor([1.0]), [0.1, 0.9]).item() == pytest.approx(0.5)
    # under-forecast by 1: 0.1 * 1 and 0.9 * 1; over-forecast by 1: 0.9 and 0.1
    assert pinball_loss(quantiles, torch.tensor([-1.0]), [0.1, 0.9]).item() == pytest.approx(0.5)
    assert pinball_loss(quantiles[:, :1], torch.tensor([1.0]), [0.1]).item() == pytest.approx(0.1)


def test_forecast_loss_adds_the_pinball_loss_of_the_quantiles():
    y = torch.tensor([[1.0]])
    forecast = Forecast(point=torch.tensor([[0.0]]), quantiles=torch.tensor([[[0.0, 0.0]]]))
    assert ForecastLoss("mse")(forecast, y).item() == pytest.approx(1.0)
    assert ForecastLoss("mae", [0.1, 0.9])(forecast, y).item() == pytest.approx(1.0 + 0.5)
    with pytest.raises(ForecastError, match=r"model\.loss='l3' is not one of"):
        ForecastLoss("l3")


def test_count_losses_are_the_likelihoods_in_the_data_units():
    """Scaled forecasts and targets go back to counts (mean 2, std 4) before the likelihood."""
    mean, std = torch.tensor([2.0]), torch.tensor([4.0])
    rate = torch.tensor([[[1.0]], [[3.0]]])  # (batch, horizon, targets), counts
    counts = torch.tensor([[[0.0]], [[5.0]]])
    scaled = Forecast((rate - 2) / 4, torch.zeros(2, 1, 1, 0))
    poisson = ForecastLoss("poisson", scale=Standardize(mean, std))(scaled, (counts - 2) / 4)
    expected = ((1 - 0) + (3 - 5 * math.log(3))) / 2
    assert poisson.item() == pytest.approx(expected, rel=1e-5)
    tweedie = ForecastLoss("tweedie", scale=Standardize(mean, std), power=1.5)(
        scaled, (counts - 2) / 4
    )
    p = 1.5
    terms = [-y * r ** (1 - p) / (1 - p) + r ** (2 - p) / (2 - p) for r, y in ((1, 0), (3, 5))]
    assert tweedie.item() == pytest.approx(sum(terms) / 2, rel=1e-5)
