"""Training losses and the quantile figures built from the same formulas: pure torch, so the
network, the LightningModule and the scorer all import them from below.

A forecast is a point ``(..., horizon, n_targets)`` and, for each configured level, a quantile
``(..., horizon, n_targets, n_quantiles)``; see ``forecast.model.Forecast``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from forecast.errors import ForecastError

if TYPE_CHECKING:
    from forecast.model import Forecast

POINT_LOSSES: dict[str, Callable[[], nn.Module]] = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "huber": nn.HuberLoss,
}


def pinball_loss(quantiles: Tensor, y: Tensor, levels: Sequence[float]) -> Tensor:
    """Mean pinball (quantile) loss of ``quantiles (..., Q)`` for targets ``y (...)``.

    Its minimizer is the ``q``-th quantile of ``y`` given the input, so a head trained with
    it gives calibrated intervals rather than a spread that merely looks plausible.
    """
    q = quantiles.new_tensor(levels)
    error = y.unsqueeze(-1) - quantiles
    return torch.maximum(q * error, (q - 1) * error).mean()


def interval_hits(quantiles: Tensor, y: Tensor) -> Tensor:
    """Whether each ``y`` lies between the lowest and the highest quantile: its mean is the
    interval's coverage, to compare with the nominal ``q_high - q_low``."""
    return (y >= quantiles[..., 0]) & (y <= quantiles[..., -1])


class ForecastLoss(nn.Module):
    """The point loss named ``loss``, plus the pinball loss of the quantiles if there are any."""

    def __init__(self, loss: str, levels: Sequence[float] = ()) -> None:
        super().__init__()
        if loss not in POINT_LOSSES:
            raise ForecastError(f"model.loss={loss!r} is not one of {sorted(POINT_LOSSES)}")
        self.point = POINT_LOSSES[loss]()
        self.levels = list(levels)

    def forward(self, forecast: Forecast, y: Tensor) -> Tensor:
        loss = self.point(forecast.point, y)
        if self.levels:
            loss = loss + pinball_loss(forecast.quantiles, y, self.levels)
        return loss
