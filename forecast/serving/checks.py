"""What a forecast is asked, given and gives, checked: one answer (quantiles or paths), the
future rows of each series against the steps after its history, and every value finite, a
bad one named by its series, step and column; and each series' future rows found in one
pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecast.data.clock import local_index
from forecast.data.series import SeriesInput
from forecast.errors import ForecastError
from forecast.model.config import LSTMConfig


def one_answer(quantiles: Sequence[float] | None, samples: int | None) -> None:
    """Quantiles and sample paths are two answers of different shapes (a column per level, or
    a row per path): a request for both would silently get only the paths."""
    if quantiles is not None and samples:
        raise ForecastError(
            "quantiles and samples were both asked for: a forecast gives quantile columns or "
            "sample paths, so ask for one (the paths' quantiles are their empirical ones)"
        )


def check_future_stamps(
    given: np.ndarray, expected: np.ndarray, label: str, timezone: str | None = None
) -> None:
    """The future rows must be exactly the next ``horizon`` steps, in order. In a zone, the
    same local wall times are the same steps: a naive ``02:00`` is read as the first of the
    two a daylight-saving change repeats, yet after a history ending at that one, the
    future's ``02:00`` can only mean the second. Messages show the zone's local time."""
    shown = local_index(np.concatenate([given, expected]), timezone)
    given_at, expected_at = shown[: len(given)], shown[len(given) :]
    walls = given_at.tz_localize(None), expected_at.tz_localize(None)
    if timezone is not None and len(given) == len(expected) and (walls[0] == walls[1]).all():
        return
    if len(given) != len(expected):
        raise ForecastError(
            f"{label}: the future covariates have {len(given)} rows, the model needs the next "
            f"{len(expected)} steps ({expected_at[0]} to {expected_at[-1]})"
        )
    wrong = np.flatnonzero(given != expected)
    if wrong.size:
        k = int(wrong[0])
        raise ForecastError(
            f"{label}: future row {k} is at {given_at[k]}, expected {expected_at[k]} (the next "
            f"{len(expected)} steps after the history)"
        )


def check_finite(
    values: np.ndarray, inputs: Sequence[SeriesInput], columns: list[str], problem: str
) -> None:
    """``values (n_series, steps, columns)``: a non-finite one is a ForecastError naming its
    series, step and column (inputs as huge as 1e30 overflow float32 once scaled)."""
    bad = ~np.isfinite(values)
    if bad.any():
        k, step, column = (int(i[0]) for i in np.nonzero(bad))
        raise ForecastError(
            f"{inputs[k].label}: column {columns[column]!r} at step {step} {problem} "
            "(check the input for values of extreme size)"
        )


def future_rows(
    columns: dict[str, np.ndarray], id_columns: list[str], n_rows: int
) -> dict[Any, np.ndarray]:
    """The future table's rows of each series id (a tuple for several id columns), found in
    one grouping pass: matching each series against every row took quadratic time."""
    if not id_columns:
        return {"": np.arange(n_rows)}
    ids = pd.DataFrame({c: columns[c] for c in id_columns})
    return ids.groupby(id_columns[0] if len(id_columns) == 1 else id_columns, sort=False).indices


def served(
    values: np.ndarray,
    inputs: Sequence[SeriesInput],
    columns: list[str],
    config: LSTMConfig,
    means: int,
) -> np.ndarray:
    """Forecast ``values (n_series, steps, columns)`` in the data's units as served: >= 0
    where the model floors them (float rounding of the scaling aside), counts whole past
    the first ``means`` columns (a negative binomial's mean is not a count), and never what
    is not a number: that is an error naming its series."""
    if config.floored:
        values = np.maximum(values, 0.0)
    if config.distribution == "negbinomial":
        values[..., means:] = np.rint(values[..., means:])
    check_finite(values, inputs, columns, "of the forecast is not finite")
    return values
