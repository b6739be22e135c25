"""The network's own choices: one field per key of ``conf/model/lstm.yaml``, checked once."""

from __future__ import annotations

from dataclasses import dataclass

from forecast.errors import ForecastError

DECODERS = ("linear", "recurrent")
# Negative log-likelihoods of counts: the forecast is then a non-negative mean (a softplus on
# the data's units, forecast.model.parts.CountLink) scored by that likelihood
COUNT_LOSSES = ("poisson", "tweedie")


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
        quantiles = tuple(float(q) for q in self.quantiles or ())
        if any(not 0 < q < 1 for q in quantiles) or list(quantiles) != sorted(set(quantiles)):
            raise ForecastError(
                f"model.quantiles={list(quantiles)} must be distinct, increasing and inside (0, 1)"
            )
        object.__setattr__(self, "quantiles", quantiles)
        if not isinstance(self.tweedie_power, int | float) or not 1 < self.tweedie_power < 2:
            raise ForecastError(f"model.tweedie_power={self.tweedie_power!r} must be in (1, 2)")
        if not isinstance(self.nonnegative, bool):
            raise ForecastError(f"model.nonnegative={self.nonnegative!r} must be true or false")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ForecastError(
                "proj_size has to be smaller than hidden_size and >= 0 "
                f"(model.proj_size={self.proj_size}, model.hidden_size={self.hidden_size})"
            )

    @property
    def floored(self) -> bool:
        """Whether forecasts are kept at or above zero in the data's units: asked for
        (``nonnegative``: sales, loads, concentrations), or a count loss's mean."""
        return self.nonnegative or self.loss in COUNT_LOSSES

    @property
    def h_out(self) -> int:
        """Width of the LSTM's output and of ``h``."""
        return self.proj_size or self.hidden_size
