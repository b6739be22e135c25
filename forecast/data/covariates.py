"""Inputs besides the past of the series: known-in-advance (future) covariates, calendar
features and static attributes, encoded the same way for training and for forecasting.

Future covariates are known for the lookback and the horizon (a planned price, an event, a
day-ahead load forecast); calendar features are computed from the timestamps, so they are
known for any step; static covariates are constant within a series (store, region). Numeric
columns are standardized with training statistics, categorical ones become integer codes into
a vocabulary built from the training rows (the model embeds them). A category the training
rows never showed is refused, naming the column, the value and where it is: guessing an
embedding for it would silently change the forecast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from forecast.data.options import DataOptions
from forecast.data.rules import fill_numeric
from forecast.data.shards import WHOLE, Shard
from forecast.errors import ForecastError

# Calendar features: (value of a timestamp, period). Each becomes a sine and a cosine, so the
# first and the last hour of a day sit next to each other, and no scaling is needed.
CALENDAR = {
    "minute": (lambda t: t.minute, 60),
    "hour": (lambda t: t.hour, 24),
    "dayofweek": (lambda t: t.dayofweek, 7),
    "dayofmonth": (lambda t: t.day - 1, 31),
    "dayofyear": (lambda t: t.dayofyear - 1, 366),
    "weekofyear": (lambda t: t.isocalendar().week.to_numpy() - 1, 53),
    "month": (lambda t: t.month - 1, 12),
    "quarter": (lambda t: t.quarter - 1, 4),
}


def check_calendar(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in CALENDAR]
    if unknown:
        raise ForecastError(f"data.calendar: {unknown} are not among {list(CALENDAR)}")


def calendar_columns(names: Sequence[str]) -> list[str]:
    return [f"{name}_{part}" for name in names for part in ("sin", "cos")]


def calendar_features(stamps: np.ndarray | pd.DatetimeIndex, names: Sequence[str]) -> np.ndarray:
    """``(n_rows, 2 * len(names))`` sines and cosines of each feature's phase, in the
    timestamps' own zone (an hour of the day is a local hour)."""
    index = pd.DatetimeIndex(stamps)
    out = np.empty((len(index), 2 * len(names)))
    for k, name in enumerate(names):
        value, period = CALENDAR[name]
        phase = 2 * np.pi * np.asarray(value(index), dtype=np.float64) / period
        out[:, 2 * k], out[:, 2 * k + 1] = np.sin(phase), np.cos(phase)
    return out


def vocabulary(values: np.ndarray, shard: Shard = WHOLE) -> list:
    """The categories of a column (over every rank's values under DDP), sorted by their text
    so the order does not depend on the rows' order; plain Python values, as a model file
    stores them."""
    unique = pd.unique(pd.Series(values).dropna())
    own = sorted((v.item() if hasattr(v, "item") else v for v in unique), key=str)
    return own if shard.world == 1 else vocabulary(np.concatenate(shard.gathered(own)))


def covariate_columns(
    raw: dict[str, np.ndarray], options: DataOptions, bounds: Sequence[tuple[int, int]],
    name: Callable[[int], str],
) -> dict[str, np.ndarray]:  # fmt: skip
    """The raw values of each covariate (``raw``, in the stacked rows' order) with missing
    future values filled by ``data.fill_missing``; a static one is checked constant over
    each series' ``bounds`` (series ``k`` named ``name(k)``)."""
    for column in options.future_covariates:
        if column not in options.categorical and options.fill_missing:
            raw[column] = np.concatenate([
                fill_numeric(raw[column][a:b], options.fill_missing, column, name(k))
                for k, (a, b) in enumerate(bounds)
            ])  # fmt: skip
    for column in options.static_covariates:
        for k, (a, b) in enumerate(bounds):
            static_value(raw[column][a:b], column, name(k))
    return raw


def encode_categories(
    values: np.ndarray, categories: list, column: str, where: str, rows: np.ndarray | None = None
) -> np.ndarray:
    """Codes ``0 .. len(categories) - 1``; an unseen or missing value is a ForecastError."""
    codes = pd.Categorical(values, categories=categories).codes
    if (codes < 0).any():
        bad = int(np.flatnonzero(codes < 0)[0])
        row = bad if rows is None else int(rows[bad])
        raise ForecastError(
            f"{where}: column {column!r} has the category {values[bad]!r} at row {row}, which "
            f"the training rows do not have (known: {categories[:20]})"
        )
    return codes.astype(np.float64)


def static_value(values: np.ndarray, column: str, where: str) -> np.ndarray:
    """The one value of a static covariate over a series' rows, as a 1-element array."""
    distinct = pd.unique(values)
    if len(distinct) > 1:
        raise ForecastError(
            f"{where}: static covariate {column!r} varies within the series "
            f"({list(distinct[:3])}); a static covariate is one value per series"
        )
    return distinct[:1]


def check_numeric(
    values: np.ndarray, column: str, where: str, rows: np.ndarray | None = None
) -> np.ndarray:
    """A numeric covariate column, checked finite, as it is (a float64 copy of every
    covariate would be several times a large table; scaling reads it in float64 chunks)."""
    if values.dtype.kind not in "iuf":
        raise ForecastError(
            f"{where}: covariate column {column!r} is not numeric (dtype {values.dtype}); "
            "list it in data.categorical to use it as categories"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ForecastError(
            f"{where}: covariate column {column!r} has {int(bad.sum())} NaN/inf value(s), first "
            f"at row {first if rows is None else int(rows[first])}"
        )
    return values
