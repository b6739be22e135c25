"""A long table of one or many series, checked by the data's rules and stacked: one
contiguous array of all series in time order, plus the row range of each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from forecast.data.options import DataOptions, as_list, feature_columns
from forecast.data.rules import CheckedSeries, RowNames, check_series
from forecast.data.timestamps import integer_time, utc_stamps
from forecast.errors import ForecastError


@dataclass(frozen=True)
class SeriesFrame:
    """Validated series, stacked: rows of series k are ``bounds[k][0]:bounds[k][1]``."""

    values: np.ndarray  # (n_rows, n_features), original units
    timestamps: np.ndarray  # (n_rows,) datetime64[ns]
    bounds: list[tuple[int, int]]
    series_ids: list[Any]  # the series-id column's values, in order of first appearance
    features: list[str]
    freq: str
    rows: np.ndarray | None = None  # the frame's row of each stacked row; None: the same order
    timezone: str | None = None  # of timezone-aware timestamps, which are held in UTC
    merged: int = 0  # rows merged into the row before them by data.duplicates
    inserted: int = 0  # rows inserted at missing timestamps (the gap rule)
    filled: int = 0  # missing values filled by data.fill_missing
    integer_time: bool = False  # the time column holds integer steps (timestamps.integer_time)
    # (n_rows, n_features): values the gap and missing-value rules made up (None: none were),
    # which scoring skips
    imputed: np.ndarray | None = None

    def series_values(self, k: int) -> np.ndarray:
        start, end = self.bounds[k]
        return self.values[start:end]


def prepare_series(
    frame: pd.DataFrame,
    options: DataOptions,
    *,
    source: str = "input",
    dtype: type | None = np.float64,
    exclude: Sequence[str] = (),
    names: RowNames = RowNames(),
) -> SeriesFrame:
    """Check a long-format table and stack its series, values in ``dtype`` (None: float32
    where float32 holds every feature column exactly, floats of 32 bits or fewer and
    integers of 16, whose float64 copy would hold nothing more at twice the memory; else
    float64: an int32 count near 1e8 would lose its units in float32).

    ``options.features=None`` takes every column but the timestamp, the series id and
    ``exclude`` (the covariates, which are not past inputs unless named as features). Rows of
    one series must be strictly increasing in time at one regular frequency: a gap, a
    duplicate or an out-of-order row would make a window silently span the wrong stretch of
    time. The timestamp and the series id may each be several columns (``[year, month, day,
    hour]``, ``[Region, State]``); a series is then named by the tuple of its id values.
    """
    features = numeric_features(frame, options, source, exclude)
    id_columns = as_list(options.series_id) or []
    stamps, zone = utc_stamps(
        frame, as_list(options.timestamp) or [], options.timestamp_format, options.timezone,
        source, id_columns, names,
    )  # fmt: skip
    # One copy of the values, filled column by column (frame[features] would copy the table
    # once more); series are cut from it by row positions, so a single series is never
    # copied again.
    if dtype is None:
        exact = {"f": 4, "i": 2, "u": 2}  # the widest of each kind float32 holds exactly
        narrow = all(frame[c].dtype.itemsize <= exact.get(frame[c].dtype.kind, 0) for c in features)
        dtype = np.float32 if narrow else np.float64
    values = np.empty((len(frame), len(features)), dtype)
    for j, column in enumerate(features):
        values[:, j] = frame[column].to_numpy()
    groups = series_groups(frame, id_columns, source, names)
    checked = check_groups(groups, stamps, values, features, options, source, names)
    freqs = {series.freq for _, _, series in checked}
    if len(freqs) > 1:
        raise ForecastError(f"{source}: series have different frequencies {sorted(freqs)}")
    integer = integer_time(frame, as_list(options.timestamp) or [], options.timestamp_format)
    return stacked(checked, features, freqs.pop(), zone, integer, (stamps, values))


def check_groups(
    groups: list[tuple[Any, Rows]],
    stamps: np.ndarray,
    values: np.ndarray,
    features: list[str],
    options: DataOptions,
    source: str,
    names: RowNames,
) -> list[tuple[Any, Rows, CheckedSeries]]:
    """Each series ``(id, rows)`` under the data's rules. Without data.freq, a series of
    fewer than 3 rows shows no frequency of its own: it is checked at the others', so that
    data.short_series=drop can leave it out rather than the frequency check refuse the file."""

    def check(key: Any, rows: Rows, rules: DataOptions) -> tuple:
        label = source if rows is None else f"{source}, series {key!r}"
        part = rows_part(rows)
        series = check_series(stamps[part], values[part], features, label, rules, rows, names)
        return key, rows, series

    small = {
        k for k, (_, rows) in enumerate(groups)
        if options.freq is None and rows is not None and len(rows) < 3
    }  # fmt: skip
    done = {k: check(*groups[k], options) for k in range(len(groups)) if k not in small}
    freqs = {series.freq for _, _, series in done.values()}
    at_theirs = replace(options, freq=freqs.pop()) if len(freqs) == 1 else options
    done |= {k: check(*groups[k], at_theirs) for k in small}
    return [done[k] for k in range(len(groups))]


def numeric_features(
    frame: pd.DataFrame, options: DataOptions, source: str, exclude: Sequence[str]
) -> list[str]:
    """The feature columns, each present and numeric, or a ForecastError naming the column."""
    required = [*(as_list(options.timestamp) or []), *(as_list(options.series_id) or [])]
    past = options.past_categorical  # read beside the features, as codes
    features = feature_columns(frame.columns, options.features, [*required, *exclude, *past])
    features = [c for c in features if c not in past]
    missing = [c for c in [*required, *features] if c not in frame.columns]
    if missing:
        raise ForecastError(
            f"{source}: column(s) {missing} not found; available: {list(frame.columns)}"
        )
    if not features:
        raise ForecastError(f"{source}: no feature columns besides {required}")
    for column in features:
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].dtype == bool:
            raise ForecastError(
                f"{source}: column {column!r} is not numeric (dtype {frame[column].dtype}); "
                "data.categorical takes it as categories (an input observed with the series; "
                "known ahead or fixed per series, name it in data.future_covariates or "
                "data.static_covariates too), or leave it out of data.features"
            )
    return features


def stacked(
    checked: list[tuple[Any, Rows, CheckedSeries]],
    features: list[str],
    freq: str,
    zone: str | None,
    integer: bool,
    table: tuple[np.ndarray, np.ndarray],
) -> SeriesFrame:
    """Checked series ``(id, the frame's rows, series)`` as one SeriesFrame. Where the series
    are the ``table``'s ``(timestamps, values)`` rows in order, untouched by the rules (a
    file sorted by series, as Spark, DuckDB and most exports write it), the table itself is
    kept: no second copy of a large file."""
    values = [series.values for _, _, series in checked]
    stamps = [series.stamps for _, _, series in checked]
    ends = np.cumsum([len(v) for v in values])
    merged = sum(series.merged for _, _, series in checked)
    inserted = sum(series.inserted for _, _, series in checked)
    kept = [frame_rows(rows, series.kept) for _, rows, series in checked]
    in_order = all(isinstance(rows, range) or rows is None for _, rows, _ in checked) and (
        [k[0] for k in kept[1:]] == [k[-1] + 1 for k in kept[:-1]] and kept[0][0] == 0
    )
    imputed = None
    if any(series.imputed is not None for _, _, series in checked):
        imputed = np.concatenate([
            np.zeros(series.values.shape, bool) if series.imputed is None else series.imputed
            for _, _, series in checked
        ])  # fmt: skip
    return SeriesFrame(
        values=joined(values, table[1]),
        timestamps=joined(stamps, table[0]),
        bounds=[(int(end - len(v)), int(end)) for v, end in zip(values, ends, strict=True)],
        series_ids=[key for key, _, _ in checked],
        features=features,
        freq=freq,
        rows=None if in_order and not (merged or inserted) else np.concatenate(kept),
        timezone=zone,
        merged=merged,
        inserted=inserted,
        filled=sum(series.filled for _, _, series in checked),
        integer_time=integer,
        imputed=imputed,
    )


# A series' rows in the table: a range where they come one after another (no index array of
# 8 bytes a row), else their positions; None: every row of a table without series ids.
Rows = range | np.ndarray | None


def rows_part(rows: Rows) -> slice | np.ndarray:
    """``rows`` as an index that takes a view where it can."""
    if rows is None:
        return slice(None)
    return slice(rows.start, rows.stop) if isinstance(rows, range) else rows


def frame_rows(rows: Rows, kept: range | np.ndarray) -> range | np.ndarray:
    """The table's rows of a checked series' ``kept`` positions among ``rows``."""
    if rows is None:
        return kept
    if isinstance(rows, range):
        return rows[kept.start : kept.stop] if isinstance(kept, range) else kept + rows.start
    return rows[kept]


def joined(parts: list[np.ndarray], whole: np.ndarray) -> np.ndarray:
    """``parts`` as one array: ``whole`` itself where they are its rows in order, each a view
    of it (what a series untouched by the rules is), else a copy."""
    start, step = whole.__array_interface__["data"][0], whole.strides[0]
    offsets = [part.__array_interface__["data"][0] - start for part in parts]
    ends = np.cumsum([len(part) for part in parts]) * step
    if (
        all(part.dtype == whole.dtype and part.strides == whole.strides for part in parts)
        and offsets == [0, *ends[:-1].tolist()]
        and ends[-1] == len(whole) * step
    ):
        return whole
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def series_groups(
    frame: pd.DataFrame, id_columns: list[str], source: str, names: RowNames
) -> list[tuple[Any, Rows]]:
    """Each series' id (a value, or a tuple of values for several id columns) and rows, in
    order of first appearance; one series of every row without id columns."""
    if not id_columns:
        return [("", None)]
    for column in id_columns:
        empty = frame[column].isna().to_numpy()
        if empty.any():  # pandas' groupby would leave these rows out silently
            where = names(int(np.flatnonzero(empty)[0]))
            raise ForecastError(f"{source}: series id column {column!r} is empty at {where}")
    codes = series_codes(frame, id_columns)
    runs = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # the first row of each run
    if len(runs) == len(np.unique(codes[runs])):  # each series one run of rows
        ends = [*runs[1:].tolist(), len(codes)]
        groups: list = [range(a, b) for a, b in zip(runs.tolist(), ends, strict=True)]
    else:
        order = np.argsort(codes, kind="stable")  # each series' rows, in the table's order
        cuts = np.flatnonzero(np.diff(codes[order])) + 1
        groups = sorted(np.split(order, cuts), key=lambda rows: rows[0])
    firsts = [rows[0] for rows in groups]
    if len(id_columns) == 1:  # the ids as pandas gives them, in the order of appearance
        keys = pd.unique(frame[id_columns[0]].iloc[firsts])
    else:
        keys = frame[id_columns].iloc[firsts].itertuples(index=False, name=None)
    return list(zip(keys, groups, strict=True))


def series_codes(frame: pd.DataFrame, id_columns: list[str]) -> np.ndarray:
    """A number per row that is the same for the rows of one series: a categorical id's
    codes as they are (no copy of a column of text), else the ids factorized."""
    if len(id_columns) > 1:
        return frame.groupby(id_columns, sort=False, observed=True).ngroup().to_numpy()
    column = frame[id_columns[0]]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy()
    return pd.factorize(column, sort=False)[0]


@dataclass
class SeriesInput:
    """One series to forecast, as read from a file or a request (values in original units)."""

    label: str  # how messages name it
    stamps: np.ndarray  # (rows,) datetime64[ns], checked
    values: np.ndarray  # (rows, n_features), checked
    covariates: dict[str, np.ndarray] = field(default_factory=dict)  # raw, over the rows
    # The future covariates' rows: (timestamps, {column: values}); None without.
    future: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
    key: Any = None  # the series' id, which finds its statistics (data.scaling=series)
