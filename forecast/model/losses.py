"""What a network forecasts (``Forecast``: the output layout), the training losses, and the
quantile figures built from the same formulas: pure torch, so the network, the
LightningModule and the scorer all import them from below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from forecast.data.scaling import Standardize
from forecast.errors import ForecastError
from forecast.model.config import COUNT_LOSSES
from forecast.model.distributions import Distribution


class Forecast(NamedTuple):
    """What the network forecasts: the point forecast, a quantile per level, and a
    distribution head's parameters (``forecast.model.distributions``)."""

    point: Tensor  # (batch, horizon, n_targets)
    quantiles: Tensor  # (batch, horizon, n_targets, n_quantiles); n_quantiles may be 0
    params: Tensor | None = None  # (batch, horizon, n_targets, n_params): a distribution's

    @classmethod
    def split(cls, values: Tensor) -> Forecast:
        """From the head's layout ``(..., 1 + n_quantiles)``: the point first."""
        return cls(values[..., 0], values[..., 1:])

    def flat(self) -> Tensor:
        """``(batch, horizon, n_targets * (1 + n_quantiles))``: every target's point, then
        each target's quantiles in level order (the output columns of forecast-predict)."""
        return torch.cat([self.point, self.quantiles.flatten(2)], dim=2)


ForecastFn = Callable[[Tensor, Tensor | None, Tensor | None], Forecast]


def forecast_unbatched(
    forecast: ForecastFn, x: Tensor, future: Tensor | None, static: Tensor | None
) -> Forecast:
    """``forecast`` of one unbatched window ``x (lookback, n_features)`` (covariates
    ``future (lookback + horizon, n_future)``, ``static (n_static,)``) as a batch of one, the
    answer unbatched again: ``(horizon, n_targets)``."""
    future, static = (None if t is None else t.unsqueeze(0) for t in (future, static))
    batched = forecast(x.unsqueeze(0), future, static)
    return Forecast(*(None if part is None else part[0] for part in batched))


def squared_error(forecast: Tensor, y: Tensor) -> Tensor:
    return (forecast - y).square()


def absolute_error(forecast: Tensor, y: Tensor) -> Tensor:
    return (forecast - y).abs()


def huber_error(forecast: Tensor, y: Tensor) -> Tensor:
    return nn.functional.huber_loss(forecast, y, reduction="none")


POINT_LOSSES = {"mse": squared_error, "mae": absolute_error, "huber": huber_error}  # per value
LOSSES = (*POINT_LOSSES, *COUNT_LOSSES)


def poisson_loss(mean: Tensor, y: Tensor) -> Tensor:
    """Poisson negative log-likelihood of counts ``y`` at rate ``mean`` (both >= 0), value by
    value, without the ``log(y!)`` term, which does not depend on the forecast."""
    return mean - y * torch.log(mean + 1e-8)


def tweedie_loss(mean: Tensor, y: Tensor, power: float) -> Tensor:
    """Tweedie negative log-likelihood (up to terms free of ``mean``) for ``1 < power < 2``,
    value by value: a compound Poisson-gamma, with an exact zero mass, for intermittent
    demand."""
    mean = mean + 1e-8
    return -y * mean.pow(1 - power) / (1 - power) + mean.pow(2 - power) / (2 - power)


def pinball_loss(
    quantiles: Tensor, y: Tensor, levels: Sequence[float], observed: Tensor | None = None
) -> Tensor:
    """Mean pinball (quantile) loss of ``quantiles (..., Q)`` for targets ``y (...)``, over
    the ``observed`` targets (default: all).

    Its minimizer is the ``q``-th quantile of ``y`` given the input, so a head trained with
    it gives calibrated intervals rather than a spread that merely looks plausible.
    """
    q = quantiles.new_tensor(levels)
    error = y.unsqueeze(-1) - quantiles
    loss = torch.maximum(q * error, (q - 1) * error)
    if observed is None:
        return loss.mean()
    return observed_mean(loss, observed.unsqueeze(-1).expand_as(loss))


def observed_mean(values: Tensor, observed: Tensor) -> Tensor:
    """The mean of ``values`` where ``observed``: a target the data's rules made up (NaN in
    ``y``) counts for nothing. ``values`` must be finite everywhere (``where`` passes no
    gradient to the values it drops, but a NaN there would still poison it)."""
    return torch.where(observed, values, 0.0).sum() / observed.sum().clamp_min(1)


class ForecastLoss(nn.Module):
    """The point loss named ``loss``, plus the pinball loss of the quantiles if there are any;
    or, with a ``distribution``, its negative log-likelihood alone (an ensemble of them,
    whose mixture has no one likelihood: the pinball loss of its quantiles at ``levels``).

    Forecasts and targets come scaled; a count loss takes them back to the data's units with
    ``scale`` (the targets' training statistics; none: they are the data's units), since a
    Poisson or Tweedie rate is a rate of the counts themselves.
    """

    def __init__(
        self,
        loss: str,
        levels: Sequence[float] = (),
        scale: Standardize | None = None,
        power: float = 1.5,
        distribution: Distribution | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ForecastError(f"model.loss={loss!r} is not one of {sorted(LOSSES)}")
        self.name, self.power = loss, power
        self.point = POINT_LOSSES.get(loss)
        self.distribution = distribution
        self.levels = list(levels)
        self.scale = scale or Standardize(torch.zeros(()), torch.ones(()))

    def forward(self, forecast: Forecast, y: Tensor) -> Tensor:
        """The mean loss over the targets of ``y`` that are observed (not NaN: validation and
        test windows mark made-up values so)."""
        observed = torch.isfinite(y)
        y = torch.where(observed, y, forecast.point.detach())  # finite: see observed_mean
        if forecast.params is not None:
            return observed_mean(self.distribution.nll(forecast.params, y), observed)
        if self.distribution is not None:  # an ensemble's mixture: no one likelihood
            return pinball_loss(forecast.quantiles, y, self.levels, observed)
        if self.point is not None:
            loss = self.point(forecast.point, y)
        else:
            rate, counts = (self.scale.inverse(t) for t in (forecast.point, y))
            rate = rate.clamp_min(0)  # float rounding of a mean the network keeps >= 0
            if self.name == "poisson":
                loss = poisson_loss(rate, counts)
            else:
                loss = tweedie_loss(rate, counts, self.power)
        loss = observed_mean(loss, observed)
        if self.levels:
            loss = loss + pinball_loss(forecast.quantiles, y, self.levels, observed)
        return loss
