"""The network's own choices: one field per key of ``conf/model/lstm.yaml``, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forecast.errors import ForecastError

DECODERS = ("linear", "recurrent")
# Negative log-likelihoods of counts: the forecast is then a non-negative mean (a softplus on
# the data's units, forecast.model.parts.CountLink) scored by that likelihood
COUNT_LOSSES = ("poisson", "tweedie")
# model.distribution's families (forecast.model.distributions), trained by their likelihood
DISTRIBUTIONS = ("normal", "studentt", "negbinomial")
# The levels a distribution's forecasts and scores report where model.quantiles names none:
# the 80% interval and the median
DISTRIBUTION_LEVELS = (0.1, 0.5, 0.9)


def segment_near(lookback: int, near: int) -> int:
    """The divisor of ``lookback`` closest to ``near`` (the smaller on a tie): a
    ``segment_len`` that fits the lookback."""
    divisors = [d for d in range(1, lookback + 1) if lookback % d == 0]
    return min(divisors, key=lambda d: (abs(d - near), d))


def derived_segment(lookback: int, season: int) -> int:
    """``model.segment_len=null``: a divisor of the lookback near the season (a day of hourly
    data: each LSTM step reads one cycle), or, without a season that fits the lookback twice,
    near a quarter of it (four steps over the lookback)."""
    return segment_near(lookback, season if 1 < season <= lookback // 2 else max(1, lookback // 4))


def quantile_levels(levels: Sequence[float] | None, key: str) -> tuple[float, ...]:
    """``levels`` as floats, refused under ``key`` unless distinct, increasing and in (0, 1)."""
    try:
        values = tuple(float(q) for q in levels or ())
    except (TypeError, ValueError):
        raise ForecastError(f"{key}={levels!r} must be a list of levels in (0, 1)") from None
    if any(not 0 < q < 1 for q in values) or list(values) != sorted(set(values)):
        raise ForecastError(f"{key}={list(values)} must be distinct, increasing and inside (0, 1)")
    return values


@dataclass(frozen=True)
class LSTMConfig:
    """The network's own choices, one field per key of ``conf/model/lstm.yaml``. Its sizes
    that come from the data (features, targets, lookback, horizon) are the ``DataSpec``'s."""

    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    proj_size: int = 0  # 0: none; else h_t is projected to proj_size (< hidden_size)
    instance_norm: bool = True
    channel_independent: bool = False
    segment_len: int = 1  # time steps per LSTM step
    decoder: str = "linear"  # or "recurrent"
    linear_skip: bool = False
    quantiles: tuple[float, ...] = ()
    loss: str = "mse"  # a count loss (poisson, tweedie) makes the forecast a non-negative mean
    tweedie_power: float = 1.5  # the Tweedie variance power, in (1, 2)
    nonnegative: bool = False  # forecasts and quantiles kept >= 0 in the data's units
    distribution: str | None = None  # normal, studentt or negbinomial: a likelihood head

    def __post_init__(self) -> None:
        for name, top in (("hidden_size", 1 << 16), ("num_layers", 64), ("segment_len", 1 << 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                # the upper bound keeps a mistyped size from asking for terabytes of weights
                raise ForecastError(f"model.{name}={value!r} must be an integer in [1, {top}]")
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ForecastError(f"model.dropout={self.dropout!r} must be in [0, 1)")
        if self.decoder not in DECODERS:
            raise ForecastError(f"model.decoder={self.decoder!r} is not one of {DECODERS}")
        object.__setattr__(self, "quantiles", quantile_levels(self.quantiles, "model.quantiles"))
        if self.distribution is not None:
            self._check_distribution()
        if not isinstance(self.tweedie_power, int | float) or not 1 < self.tweedie_power < 2:
            raise ForecastError(f"model.tweedie_power={self.tweedie_power!r} must be in (1, 2)")
        if not isinstance(self.nonnegative, bool):
            raise ForecastError(f"model.nonnegative={self.nonnegative!r} must be true or false")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ForecastError(
                "proj_size has to be smaller than hidden_size and >= 0 "
                f"(model.proj_size={self.proj_size}, model.hidden_size={self.hidden_size})"
            )

    def _check_distribution(self) -> None:
        """A distribution's likelihood replaces the point loss (``loss``: mse, mae or huber)
        and the pinball loss: its quantiles are read from it (at ``quantiles``, else
        ``DISTRIBUTION_LEVELS``), not learned."""
        chosen = f"model.distribution={self.distribution}"
        if self.distribution not in DISTRIBUTIONS:
            raise ForecastError(f"{chosen!r} is not one of {DISTRIBUTIONS} (or null)")
        if self.loss in COUNT_LOSSES:
            raise ForecastError(
                f"{chosen} and model.loss={self.loss} are two likelihoods: for counts take "
                "model.distribution=negbinomial (a point loss is replaced by the distribution's)"
            )
        if self.nonnegative and self.distribution != "negbinomial":
            raise ForecastError(
                f"{chosen} has quantiles below zero, which model.nonnegative=true cannot "
                "floor: for counts take model.distribution=negbinomial"
            )
        object.__setattr__(self, "quantiles", self.quantiles or DISTRIBUTION_LEVELS)

    @property
    def floored(self) -> bool:
        """Whether forecasts are kept at or above zero in the data's units: asked for
        (``nonnegative``: sales, loads, concentrations), or a count's mean."""
        return self.nonnegative or self.loss in COUNT_LOSSES or self.distribution == "negbinomial"

    @property
    def h_out(self) -> int:
        """Width of the LSTM's output and of ``h``."""
        return self.proj_size or self.hidden_size
