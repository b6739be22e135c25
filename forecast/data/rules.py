"""The data's rules, applied to one series at a time for training files and for the histories
of forecasts alike: repeated timestamps merged (``data.duplicates``), missing timestamps
inserted and filled (``data.fill_gaps``), missing values filled or refused
(``data.fill_missing``), and the timestamps checked strictly increasing at one frequency."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from forecast.data.clock import from_wall_time, head_frequency, usual_step, wall_time
from forecast.errors import ForecastError

if TYPE_CHECKING:
    from forecast.data.options import DataOptions


@dataclass(frozen=True)
class RowNames:
    """How messages name a row so that a user can find it: the line of a CSV file whose first
    data row is line ``first_line``; the file of a folder and its 0-based row (``files``:
    each file's first row and name); else the 0-based data row."""

    first_line: int | None = None
    files: tuple[tuple[int, str], ...] = ()

    def __call__(self, row: int) -> str:
        if self.files:
            start, name = self.files[bisect.bisect_right([s for s, _ in self.files], row) - 1]
            return f"data row {row - start} (0-based) of {name}"
        if self.first_line is None:
            return f"data row {row} (0-based)"
        return f"file line {row + self.first_line}"


class CheckedSeries(NamedTuple):
    """One series after the data's rules, and what each rule changed."""

    kept: range | np.ndarray  # each row's position among those given (a range: none moved)
    stamps: np.ndarray  # (rows,) datetime64[ns]
    values: np.ndarray  # (rows, n_features)
    freq: str
    merged: int  # rows merged into the row before them (duplicates)
    inserted: int  # rows inserted at missing timestamps (fill_gaps)
    filled: int  # missing values filled (fill_missing)
    imputed: np.ndarray | None = None  # (rows, n_features): the values the rules made up


def check_series(
    stamps: np.ndarray,
    values: np.ndarray,
    features: list[str],
    label: str,
    options: DataOptions,
    rows: range | np.ndarray | None = None,
    names: RowNames = RowNames(),
) -> CheckedSeries:
    """One series under ``options``' rules, in the order the module docstring lists them.
    ``rows`` are the given rows' positions in the table, for ``names``."""
    given = len(stamps)
    kept, stamps, values = merge_duplicates(stamps, values, options.duplicates)
    merged = given - len(stamps)

    def name(i: int) -> str:
        position = int(kept[i])
        return names(position if rows is None else int(rows[position]))

    check_order(stamps, label, name)
    local = wall_time(stamps, options.timezone, options.freq)
    steps = stamps if local is None else local  # what the frequency is checked on
    new = None
    freq = options.freq
    if options.fill_gaps is not None:
        offset = gap_frequency(steps, freq, label)
        source, steps, values, new = insert_gaps(steps, values, options.fill_gaps, offset, label)
        kept = np.asarray(kept)[source]
        freq = offset.freqstr
    values, filled = check_values(values, features, options.fill_missing, label, name)
    freq = check_timestamps(steps, freq, label, name)  # in order since check_order
    stamps = steps if local is None else from_wall_time(steps, options.timezone)
    inserted = 0 if new is None else int(new.sum())
    imputed = None  # what scoring must not take for truth
    if inserted or filled is not None:
        imputed = np.zeros(values.shape, dtype=bool) if filled is None else filled
        if new is not None:
            imputed[new] = True
    count = 0 if filled is None else int(filled.sum())
    return CheckedSeries(kept, stamps, values, freq, merged, inserted, count, imputed)


def merge_duplicates(
    stamps: np.ndarray, values: np.ndarray, how: str
) -> tuple[range | np.ndarray, np.ndarray, np.ndarray]:
    """Runs of rows with the same timestamp as one row each, by ``how`` (``first``, ``last``,
    ``mean`` of the values): the kept rows' positions (the first of a run for ``mean``), their
    timestamps and values. ``error`` keeps every row, for check_order to refuse. Only
    repeated neighbours merge: a timestamp that comes back later means unsorted rows, which
    stay an error.
    """
    repeat = np.diff(stamps) == np.timedelta64(0)
    if how == "error" or not repeat.any():
        return range(len(stamps)), stamps, values
    starts = np.flatnonzero(np.r_[True, ~repeat])
    if how == "mean":
        sizes = np.diff(np.r_[starts, len(stamps)])
        merged = np.add.reduceat(values, starts, axis=0) / sizes[:, None]
        return starts, stamps[starts], merged.astype(values.dtype)
    kept = starts if how == "first" else np.r_[starts[1:] - 1, len(stamps) - 1]
    return kept, stamps[kept], values[kept]


# A grid of more rows than this many times the rows given is a wrong timestamp, not gaps.
MAX_GAP_GROWTH = 10


def gap_frequency(stamps: np.ndarray, freq: str | None, label: str) -> pd.DateOffset:
    """The step that missing timestamps are inserted at: ``freq`` (data.freq), else inferred
    from the first rows, else the most common step: whole days as days (``D``, as pandas
    infers them from even rows, not ``24h``); seven days a week anchored on the first row's
    weekday (``W-SUN``); a month or more is refused without data.freq (not a fixed step)."""
    freq = freq or head_frequency(stamps)
    if freq is not None:
        return pd.tseries.frequencies.to_offset(freq)
    step = usual_step(np.diff(stamps))
    if step is None:
        raise ForecastError(f"{label}: one timestamp; data.fill_gaps needs data.freq to fill")
    usual, days = pd.Timedelta(step), pd.Timedelta(step) / pd.Timedelta(days=1)
    if usual == pd.Timedelta(days=7):
        return pd.tseries.frequencies.to_offset(f"W-{pd.Timestamp(stamps[0]):%a}".upper())
    if usual >= pd.Timedelta(days=28):
        raise ForecastError(
            f"{label}: the rows are mostly {usual} apart, which may be months or quarters; "
            "set data.freq (e.g. MS, ME, QS) for data.fill_gaps to fill"
        )
    return pd.tseries.frequencies.to_offset(f"{int(days)}D" if days.is_integer() else usual)


def insert_gaps(
    stamps: np.ndarray, values: np.ndarray, how: str, offset: pd.DateOffset, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows inserted at every step of ``offset`` missing from sorted ``stamps`` and filled by
    ``how``: ``ffill`` repeats the row before, ``interpolate`` draws a straight line between
    the rows either side (by step), ``zero`` inserts zeros (sales that did not happen). Returns
    each row's source (the given row at or before it), the timestamps, values and the rows
    inserted (a mask). Gaps lie between given rows, so the series' edges never need them."""
    steps = grid_size(stamps[0], stamps[-1], offset)  # before the grid is built
    if steps > MAX_GAP_GROWTH * len(stamps) + 1000:
        raise ForecastError(
            f"{label}: filling the steps of {offset.freqstr} from {pd.Timestamp(stamps[0])} "
            f"to {pd.Timestamp(stamps[-1])} would make about {steps} rows out of "
            f"{len(stamps)}; check the timestamps, or data.freq"
        )
    grid = pd.date_range(stamps[0], stamps[-1], freq=offset).to_numpy("datetime64[ns]")
    position = np.searchsorted(grid, stamps)
    off = (position >= len(grid)) | (grid[np.minimum(position, len(grid) - 1)] != stamps)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ForecastError(
            f"{label}: timestamp {pd.Timestamp(stamps[i])} is not on the steps of "
            f"{offset.freqstr} from {pd.Timestamp(stamps[0])}, so data.fill_gaps cannot place "
            "it; set data.freq to the data's frequency"
        )
    if len(grid) == len(stamps):
        return np.arange(len(stamps)), stamps, values, np.zeros(len(stamps), dtype=bool)
    source = np.searchsorted(position, np.arange(len(grid)), side="right") - 1
    new = np.ones(len(grid), dtype=bool)
    new[position] = False
    filled = values[source]  # ffill
    if how == "zero":
        filled[new] = 0
    elif how == "interpolate":
        at = np.flatnonzero(new)
        for j in range(values.shape[1]):
            filled[at, j] = np.interp(at, position, values[:, j])
    return source, grid, filled, new


def grid_size(first: np.datetime64, last: np.datetime64, offset: pd.DateOffset) -> int:
    """About how many steps of ``offset`` lie from ``first`` to ``last``, in Python integers
    (a difference of int64 nanoseconds wraps around past 292 years): exact for fixed steps,
    by the first step's length for calendar ones (days, business days, weeks, months)."""
    start = pd.Timestamp(first)
    step = (start + offset).value - start.value
    return (pd.Timestamp(last).value - start.value) // max(step, 1) + 1


def check_values(
    values: np.ndarray,
    columns: list[str],
    method: str | None,
    label: str,
    name: Callable[[int], str] = RowNames(),
) -> tuple[np.ndarray, np.ndarray | None]:
    """One series' ``(rows, columns)`` values, NaN/inf refused unless ``method`` fills them;
    and which were filled (None: none). ``ffill`` has nothing to carry into the rows before a
    column's first value, so those stay an error; ``interpolate`` extends the nearest value
    there."""
    if np.isfinite(values).all():
        return values, None
    bad = ~np.isfinite(values)
    missing = bad
    if method is not None:
        filled = pd.DataFrame(np.where(bad, np.nan, values))
        filled = filled.ffill() if method == "ffill" else filled.interpolate(limit_direction="both")
        # an array of our own, in the input's dtype: pandas hands out read-only views
        values = filled.to_numpy(dtype=values.dtype, copy=True)
        bad = ~np.isfinite(values)
        if not bad.any():
            return values, missing
    row, col = (int(i[0]) for i in np.nonzero(bad))
    count = int(bad[:, col].sum())
    if method is None:
        hint = "; set data.fill_missing=ffill or interpolate to fill them"
    elif count == len(values):
        hint = "; it has no value to fill from: leave it out of data.features"
    else:  # ffill, at the start of the series
        hint = (
            f"; data.fill_missing=ffill carries values forward and the series' first {count} "
            "row(s) have none before them: data.fill_missing=interpolate fills them with the "
            "first value"
        )
    raise ForecastError(
        f"{label}: column {columns[col]!r} has {count} NaN/inf value(s), first at {name(row)}{hint}"
    )


def check_order(stamps: np.ndarray, label: str, name: Callable[[int], str] = RowNames()) -> None:
    """Raise on timestamps that repeat or go back: each series is in time order. Compared,
    not subtracted: a difference of over 292 years wraps around in int64 nanoseconds."""
    wrong = np.flatnonzero(stamps[1:] <= stamps[:-1])
    if not wrong.size:
        return
    row = int(wrong[0]) + 1
    duplicated = stamps[row] == stamps[row - 1]
    hint = (
        "; set data.duplicates=first, last or mean to merge them (or data.timezone, if these "
        "are local times where the clock went back an hour)"
        if duplicated
        else ""
    )
    raise ForecastError(
        f"{label}: timestamps {'duplicated' if duplicated else 'not sorted'} at {name(row)} "
        f"({pd.Timestamp(stamps[row])}); each series needs strictly increasing timestamps{hint}"
    )


def check_timestamps(
    stamps: np.ndarray, freq: str | None, label: str, name: Callable[[int], str] = RowNames()
) -> str:
    """The frequency of one series in time order (check_order); raise on irregular steps."""
    steps = np.diff(stamps)
    freq = freq or head_frequency(stamps)  # every row is checked against it below
    if freq is None:
        usual = usual_step(steps)
        irregular = np.flatnonzero(steps != usual)
        where = ""
        if irregular.size:
            row = int(irregular[0]) + 1
            where = (
                f": {name(row)} ({pd.Timestamp(stamps[row])}) is {pd.Timedelta(steps[row - 1])} "
                f"after the row before, most rows are {pd.Timedelta(usual)} apart"
            )
        raise ForecastError(
            f"{label}: cannot infer a regular frequency from the timestamps{where}; "
            "set data.fill_gaps=ffill, interpolate or zero to fill the gaps, or data.freq "
            "(e.g. h, 15min, D)"
        )
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):  # fixed steps: the differences say it all
        wrong = np.flatnonzero(steps != np.timedelta64(offset.nanos, "ns"))
        row = int(wrong[0]) + 1 if wrong.size else None
        expected = None if row is None else pd.Timestamp(stamps[row - 1]) + offset
    else:  # calendar steps (months, business days): compare with the calendar
        calendar = pd.date_range(stamps[0], periods=len(stamps), freq=offset)
        wrong = np.flatnonzero(calendar.to_numpy("datetime64[ns]") != stamps)
        row = int(wrong[0]) if wrong.size else None
        expected = None if row is None else calendar[row]
    if row is not None:
        gap = stamps[row] > np.datetime64(expected) if expected is not None else False
        hint = "; data.fill_gaps=ffill, interpolate or zero fills missing steps" if gap else ""
        raise ForecastError(
            f"{label}: timestamp at {name(row)} is {pd.Timestamp(stamps[row])}, "
            f"expected {expected} at frequency {offset.freqstr}{hint}"
        )
    return offset.freqstr


def fill_numeric(values: np.ndarray, method: str | None, column: str, where: str) -> np.ndarray:
    """One series' numeric covariate with NaN/inf filled by ``data.fill_missing`` (as the
    features are; prices are often missing before an item is first sold). Text and
    categorical columns pass as they are."""
    if method is None or values.dtype.kind not in "iuf":
        return values
    filled, _ = check_values(values.astype(np.float64)[:, None], [column], method, where)
    return filled[:, 0]
