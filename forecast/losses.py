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
# Negative log-likelihoods of counts: the network's forecast is then a non-negative mean (see
# forecast.model.CountLink) and these compare it with the targets in the data's units.
COUNT_LOSSES = ("poisson", "tweedie")
LOSSES = (*POINT_LOSSES, *COUNT_LOSSES)


def poisson_loss(mean: Tensor, y: Tensor) -> Tensor:
    """Poisson negative log-likelihood of counts ``y`` at rate ``mean`` (both >= 0), without
    the ``log(y!)`` term, which does not depend on the forecast."""
    return (mean - y * torch.log(mean + 1e-8)).mean()


def tweedie_loss(mean: Tensor, y: Tensor, power: float) -> Tensor:
    """Tweedie negative log-likelihood (up to terms free of ``mean``) for ``1 < power < 2``: a
    compound Poisson-gamma, with an exact zero mass, for intermittent demand."""
    mean = mean + 1e-8
    return (-y * mean.pow(1 - power) / (1 - power) + mean.pow(2 - power) / (2 - power)).mean()


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
    """The point loss named ``loss``, plus the pinball loss of the quantiles if there are any.

    Forecasts and targets come scaled; a count loss takes them back to the data's units with
    the targets' ``mean`` and ``std`` (training statistics, ``(n_targets,)``), since a Poisson
    or Tweedie rate is a rate of the counts themselves.
    """

    def __init__(
        self,
        loss: str,
        levels: Sequence[float] = (),
        mean: Tensor | None = None,
        std: Tensor | None = None,
        power: float = 1.5,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ForecastError(f"model.loss={loss!r} is not one of {sorted(LOSSES)}")
        self.name, self.power = loss, power
        self.point = POINT_LOSSES[loss]() if loss in POINT_LOSSES else None
        self.levels = list(levels)
        n = 0 if mean is None else len(mean)
        self.register_buffer("mean", torch.zeros(n) if mean is None else mean.float())
        self.register_buffer("std", torch.ones(n) if std is None else std.float())

    def forward(self, forecast: Forecast, y: Tensor) -> Tensor:
        if self.point is not None:
            loss = self.point(forecast.point, y)
        else:
            rate, counts = (t * self.std + self.mean for t in (forecast.point, y))
            rate = rate.clamp_min(0)  # float rounding of a mean the network keeps >= 0
            if self.name == "poisson":
                loss = poisson_loss(rate, counts)
            else:
                loss = tweedie_loss(rate, counts, self.power)
        if self.levels:
            loss = loss + pinball_loss(forecast.quantiles, y, self.levels)
        return loss
