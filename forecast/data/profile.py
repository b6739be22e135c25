"""What a table holds, as ``forecast-check`` shows it: per series (rows, span, duplicates,
unsorted rows, missing steps, missing values) and per column, in one pass of array operations
over all rows, whatever the number of series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecast.data.clock import INFER_ROWS, head_frequency, season_from_freq, usual_step, wall_time
from forecast.data.options import DataOptions, as_list, feature_columns
from forecast.data.timestamps import utc_stamps
from forecast.errors import ForecastError


@dataclass
class Profile:
    """What a table holds, per series (arrays in order of first appearance) and per column."""

    ids: list
    rows: np.ndarray
    first: np.ndarray  # datetime64[ns], the earliest timestamp of each series
    last: np.ndarray
    duplicates: np.ndarray  # rows repeating the timestamp of the row before
    unsorted: np.ndarray  # rows earlier than the row before
    missing_steps: np.ndarray  # timestamps absent between first and last at the frequency
    off_grid: np.ndarray  # steps that are not a whole number of the frequency
    missing_values: np.ndarray  # NaN/inf among the features, per series
    freq: str | None
    first_unsorted: int | None = None  # the data row (0-based) of the first unsorted row
    # the first gaps: (series, the timestamp before, steps missing)
    gaps: list[tuple] = field(default_factory=list)
    # each column: name, type, NaN count, whether constant
    columns: list[tuple[str, str, int, bool]] = field(default_factory=list)

    @property
    def loaded_rows(self) -> np.ndarray:
        """Each series' rows as the loader will hold them: duplicates merged, gaps filled."""
        return self.rows - self.duplicates + self.missing_steps

    @property
    def season(self) -> int:
        return season_from_freq(self.freq) if self.freq else 1


def profile(frame: pd.DataFrame, options: DataOptions, source: str) -> Profile:
    """Every statistic at once, vectorized over rows: the series are laid out contiguously (by
    one stable sort of their codes, when the file interleaves them), so neighbours in a series
    are neighbours in the arrays."""
    id_columns = as_list(options.series_id) or []
    stamps = profile_stamps(frame, options, source, id_columns)
    codes, ids, order = series_codes(frame, id_columns)
    codes, stamps = codes[order], stamps[order]
    rows = np.bincount(codes, minlength=len(ids))
    starts = np.r_[0, np.cumsum(rows)[:-1]]
    nanos = stamps.view(np.int64)
    steps = np.diff(nanos)  # steps[i]: row i to row i + 1, of series codes[i + 1]
    freq = options.freq or _infer_freq(stamps[: min(rows[0], INFER_ROWS)], steps)
    step = fixed_step(freq)
    # A step from one series into the next is no step at all: made one of the usual size, it
    # counts as nothing below, and the large arrays are never copied to leave it out.
    steps[starts[1:] - 1] = step or 1
    found = Profile(
        ids=ids,
        rows=rows,
        first=np.minimum.reduceat(nanos, starts).view("datetime64[ns]"),
        last=np.maximum.reduceat(nanos, starts).view("datetime64[ns]"),
        duplicates=np.bincount(codes[1:][steps == 0], minlength=len(ids)),
        unsorted=np.bincount(codes[1:][steps < 0], minlength=len(ids)),
        missing_steps=np.zeros(len(ids), dtype=np.int64),
        off_grid=np.zeros(len(ids), dtype=np.int64),
        missing_values=missing_values(frame, options, id_columns, codes, order, len(ids)),
        freq=freq,
        first_unsorted=first_back(steps, order, len(frame)),
        columns=_columns(frame),
    )
    if step:
        _fixed_gaps(found, stamps, steps, codes[1:], step)
    elif freq:  # calendar steps: each series against its own calendar
        for k, (a, n) in enumerate(zip(starts, rows, strict=True)):
            block = np.unique(stamps[a : a + n])
            calendar = pd.date_range(block[0], block[-1], freq=freq)
            found.missing_steps[k] = max(0, len(calendar) - len(block))
            found.off_grid[k] = len(np.setdiff1d(block, calendar.to_numpy("datetime64[ns]")))
    return found


def profile_stamps(
    frame: pd.DataFrame, options: DataOptions, source: str, id_columns: list[str]
) -> np.ndarray:
    """Each row's timestamp as the loader reads it: UTC, or for days, weeks and months in a
    zone, its wall time (``clock.wall_time``)."""
    stamp_columns = as_list(options.timestamp) or []
    missing = [c for c in [*stamp_columns, *id_columns] if c not in frame.columns]
    if missing:
        raise ForecastError(
            f"{source}: column(s) {missing} not found (data.timestamp, data.series_id); "
            f"available: {list(frame.columns)}"
        )
    stamps, _ = utc_stamps(
        frame, stamp_columns, options.timestamp_format, options.timezone, source, id_columns
    )
    local = wall_time(stamps, options.timezone, options.freq)
    return stamps if local is None else local


def first_back(steps: np.ndarray, order: Any, n_rows: int) -> int | None:
    """The data row of the first row earlier than the one before it, in the file's order (the
    contiguous layout's row, mapped back through ``order``); None if every row is in order."""
    back = np.flatnonzero(steps < 0)
    return int(np.arange(n_rows)[order][back[0] + 1]) if back.size else None


def series_codes(frame: pd.DataFrame, id_columns: list[str]) -> tuple[np.ndarray, list, Any]:
    """Each row's series number (in order of first appearance), the series' ids, and the
    order that lays the series out contiguously (a slice when they already are)."""
    codes = np.zeros(len(frame), dtype=np.int64)
    if not id_columns:
        return codes, [""], slice(None)
    codes = frame.groupby(id_columns, sort=False, dropna=False).ngroup().to_numpy()
    # A long table usually holds each series in one block already: then no sort, no copies.
    grouped = bool((codes[1:] >= codes[:-1]).all())
    first_rows = (
        np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        if grouped
        else np.unique(codes, return_index=True)[1]
    )
    keys = frame[id_columns].iloc[first_rows].itertuples(index=False, name=None)
    ids = [key[0] if len(id_columns) == 1 else key for key in keys]
    return codes, ids, slice(None) if grouped else np.argsort(codes, kind="stable")


def _fixed_gaps(
    found: Profile, stamps: np.ndarray, steps: np.ndarray, series_of: np.ndarray, step: int
) -> None:
    """Missing and off-grid steps of a fixed-length frequency, and the first gaps, into
    ``found``; ``series_of[i]`` is the series of ``steps[i]``."""
    n = len(found.ids)
    unusual = np.flatnonzero(steps != step)  # few in any file worth training on
    odd = unusual[steps[unusual] > 0]
    found.off_grid = np.bincount(series_of[odd[steps[odd] % step != 0]], minlength=n)
    wide = odd[steps[odd] > step]
    missing = steps[wide] // step - 1
    found.missing_steps = np.bincount(series_of[wide], missing, minlength=n).astype(int)
    found.gaps = [
        (found.ids[series_of[p]], pd.Timestamp(stamps[p]), int(m))
        for p, m in zip(wide[:3], missing[:3], strict=True)
    ]


def missing_values(
    frame: pd.DataFrame,
    options: DataOptions,
    id_columns: list[str],
    codes: np.ndarray,
    order: Any,
    n_series: int,
) -> np.ndarray:
    """NaN/inf among the features, per series (``codes`` already in ``order``)."""
    bad_rows = np.zeros(len(frame), dtype=np.int64)
    for column in feature_candidates(frame, options, id_columns):
        bad_rows += ~np.isfinite(frame[column].to_numpy(np.float64, na_value=np.nan))
    return np.bincount(codes, weights=bad_rows[order], minlength=n_series).astype(int)


def _infer_freq(head: np.ndarray, steps: np.ndarray) -> str | None:
    """The first series' frequency as the loader infers it, else the most common of the first
    steps."""
    inferred = head_frequency(np.unique(head))  # in order, without repeats, as the loader
    if inferred is not None:
        return inferred
    first = steps[: 100 * INFER_ROWS]
    step = usual_step(first[first > 0])
    return None if step is None else pd.tseries.frequencies.to_offset(pd.Timedelta(step)).freqstr


def fixed_step(freq: str | None) -> int | None:
    """Nanoseconds per step of a fixed-length frequency (hours, days); None for calendar ones."""
    if freq is None:
        return None
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value
    except ValueError:  # months, quarters, weeks anchored on a weekday
        return None


def feature_candidates(
    frame: pd.DataFrame, options: DataOptions, id_columns: list[str]
) -> list[str]:
    """The numeric columns the loader would take as features."""
    skip = [*(as_list(options.timestamp) or []), *id_columns, *covariate_columns(options)]
    columns = feature_columns(frame.columns, options.features, skip)
    return [c for c in columns if c in frame.columns and is_numeric(frame[c])]


def covariate_columns(options: DataOptions) -> set[str]:
    return set(options.side_columns)


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and column.dtype != bool


def _columns(frame: pd.DataFrame) -> list[tuple[str, str, int, bool]]:
    out = []
    for name in frame.columns:
        column = frame[name]
        kind = "number" if is_numeric(column) else str(column.dtype)
        missing = int(column.isna().sum())
        if is_numeric(column):
            values = column.to_numpy(np.float64, na_value=np.nan)
            finite = values[np.isfinite(values)]
            missing = int(len(values) - len(finite))
            constant = len(finite) > 0 and finite.min() == finite.max()
        else:
            constant = column.nunique(dropna=True) <= 1
        out.append((str(name), kind, missing, bool(constant)))
    return out
