"""Time as the data keeps it: the frequency and season of its steps, its zone's wall time (the
time calendar steps are regular in), and timestamps written back in the columns, zone and
format the data had them in (reading them is ``forecast.data.timestamps``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

INFER_ROWS = 1000  # rows a frequency is inferred from


# A composite data.timestamp of these columns is assembled by pandas; others are joined by spaces.
DATE_PARTS = ("year", "month", "day", "hour", "minute", "second")


def head_frequency(stamps: np.ndarray) -> str | None:
    """The frequency pandas infers from the first ``INFER_ROWS`` timestamps, if it can."""
    head = pd.DatetimeIndex(stamps[:INFER_ROWS])
    return pd.infer_freq(head) if len(head) >= 3 else None


def usual_step(steps: np.ndarray) -> np.timedelta64 | None:
    """The most common of ``steps`` (the first of equals), None without any."""
    values, counts = np.unique(steps, return_counts=True)
    return values[counts.argmax()] if len(values) else None


# Seasonal period of sub-daily data: one day; of (business) days: one week; else one year.
# By the offset's name, longest prefixes first: "BMS" is a business month, not a business day.
_PERIODS = {"SM": 24, "BM": 12, "BQ": 4, "M": 12, "Q": 4, "W": 52, "B": 5, "D": 7}


def season_from_freq(freq: str) -> int:
    """The usual seasonal period in steps of ``freq``: a day of hours is 24, of 15 min 96."""
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):
        step, day = offset.nanos, pd.Timedelta(days=1).value
        if step < pd.Timedelta(seconds=1).value:  # integer steps (data.timestamp=null), ns
            return 1
        if step < day and day % step == 0:
            return day // step
        return 7 if step == day else 1
    name = offset.rule_code
    period = next((p for prefix, p in _PERIODS.items() if name.startswith(prefix)), 1)
    return period // offset.n if period % offset.n == 0 else 1  # 2MS: half a year, 6 steps


def local_index(stamps: np.ndarray, timezone: str | None) -> pd.DatetimeIndex:
    """UTC ``stamps`` as forecasts show them: in the data's zone, if it had one."""
    index = pd.DatetimeIndex(stamps)
    return index if timezone is None else index.tz_localize("UTC").tz_convert(timezone)


def wall_time(stamps: np.ndarray, timezone: str | None, freq: str | None) -> np.ndarray | None:
    """UTC ``stamps`` in ``timezone``'s wall time where their steps are days, weeks or months
    (``freq``, or what the local times show): with daylight saving a day is 23 or 25 hours
    twice a year. None where steps are checked in UTC (no zone; hours, which a change skips
    or repeats in local time)."""
    if timezone is None or len(stamps) == 0:
        return None
    local = local_index(stamps, timezone).tz_localize(None).to_numpy("datetime64[ns]")
    step = freq or head_frequency(local)
    calendar = step is not None and not isinstance(
        pd.tseries.frequencies.to_offset(step), pd.offsets.Tick
    )
    return local if calendar else None


def from_wall_time(local: np.ndarray, timezone: str) -> np.ndarray:
    """Local wall times of ``timezone`` back in UTC (a time a change skips moves forward)."""
    index = pd.DatetimeIndex(local).tz_localize(
        timezone, ambiguous=True, nonexistent="shift_forward"
    )
    return index.tz_convert(None).to_numpy("datetime64[ns]")


def stamp_columns(
    stamps: np.ndarray,
    timestamp: str | list[str] | None,
    fmt: str | None,
    timezone: str | None,
    integer: bool = False,
) -> dict[str, Any]:
    """Timestamps written back in the columns the data had them in: one column of datetimes,
    or of ``integer`` steps; or the parts of a composite timestamp (``year``, ..., ``hour`` as
    numbers; other columns as the text ``fmt`` writes, split at its spaces); or, without
    timestamps, the steps in a ``step`` column."""
    if timestamp is None or integer:
        return {timestamp or "step": np.asarray(stamps).astype(np.int64)}
    index = local_index(stamps, timezone)
    columns = [timestamp] if isinstance(timestamp, str) else timestamp
    if len(columns) == 1:
        return {columns[0]: index}
    if all(c.lower() in DATE_PARTS for c in columns):
        return {c: getattr(index, c.lower()).to_numpy() for c in columns}
    text = index.strftime(fmt or "%Y-%m-%d %H:%M:%S")
    parts = [t.split(" ", len(columns) - 1) for t in text]
    if any(len(p) != len(columns) for p in parts[:1]):
        raise ForecastError(
            f"data.timestamp {columns}: the timestamps written by "
            f"{fmt or '%Y-%m-%d %H:%M:%S'!r} have no {len(columns)} parts "
            "separated by spaces; set data.timestamp_format to one that has"
        )
    return {c: [p[j] for p in parts] for j, c in enumerate(columns)}


def stamp_rows(
    stamps: np.ndarray,
    timestamp: str | list[str] | None,
    fmt: str | None,
    timezone: str | None,
    integer: bool = False,
) -> list[tuple]:
    """Each timestamp as its columns' values, datetimes as text: what a JSON answer holds; one
    naive column by numpy, many times faster than strftime (a serving budget is milliseconds)."""
    if isinstance(timestamp, str) and timezone is None and not integer:
        text = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")
        return [(str(stamp),) for stamp in text]
    columns = stamp_columns(stamps, timestamp, fmt, timezone, integer)
    if isinstance(timestamp, str) and not integer:  # with the UTC offset its rows came in
        return [(str(stamp),) for stamp in columns[timestamp].astype(str)]
    parts = [np.asarray(v).tolist() for v in columns.values()]
    return list(zip(*parts, strict=True))


def steps_after(
    last: np.datetime64, offset: pd.DateOffset, horizon: int, timezone: str | None, label: str
) -> np.ndarray:
    """The ``horizon`` timestamps after ``last`` at the frequency ``offset``; calendar steps
    are steps of the zone's wall time. Past what datetime64[ns] holds: a ForecastError."""
    try:
        if isinstance(offset, pd.offsets.Tick):  # fixed steps: plain arithmetic
            end = int(last.astype(np.int64)) + horizon * offset.nanos
            if end > np.iinfo(np.int64).max:  # numpy would wrap around silently
                raise OverflowError
            return last + np.timedelta64(offset.nanos, "ns") * np.arange(1, horizon + 1)
        start = (
            pd.Timestamp(last, tz="UTC").tz_convert(timezone) if timezone else pd.Timestamp(last)
        )
        steps = pd.date_range(start + offset, periods=horizon, freq=offset)
        return (steps.tz_convert(None) if timezone else steps).to_numpy("datetime64[ns]")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ForecastError(
            f"{label}: {horizon} steps after {pd.Timestamp(last)} reach past 2262-04-11, "
            "the last timestamp that can be held"
        ) from None


class SeriesClock:
    """Every stacked row's timestamp (UTC ``datetime64[ns]``), held as each series' first
    timestamp and step where its steps are even, a series' own array only where they are
    not (months, days across a change of clocks): 8 bytes a row would be two thirds of a
    panel's float32 arrays (one target, two covariates). Indexed like the array it stands
    for, by a slice or by row positions."""

    def __init__(self) -> None:
        self.starts = np.zeros(0, np.int64)  # each series' first row
        self.firsts = np.zeros(0, np.int64)  # its first timestamp, in ns
        self.steps = np.zeros(0, np.int64)
        self.uneven: dict[int, np.ndarray] = {}  # series: its timestamps, in ns
        self.rows = 0

    def extend(self, stamps: np.ndarray, bounds: list[tuple[int, int]]) -> None:
        """Series ``bounds`` of ``stamps`` (a chunk's rows, after those already held)."""
        ticks = stamps.view(np.int64)
        starts = np.array([a for a, _ in bounds], np.int64)
        lengths = np.array([b - a for a, b in bounds], np.int64)
        firsts = ticks[starts]
        steps = np.where(lengths > 1, ticks[np.minimum(starts + 1, len(ticks) - 1)] - firsts, 0)
        series = np.repeat(np.arange(len(bounds)), lengths)
        even = firsts[series] + (np.arange(len(ticks)) - starts[series]) * steps[series]
        for k in np.unique(series[even != ticks]).tolist():
            a, b = bounds[k]
            self.uneven[len(self.starts) + k] = ticks[a:b].copy()
        self.starts = np.concatenate([self.starts, starts + self.rows])
        self.firsts = np.concatenate([self.firsts, firsts])
        self.steps = np.concatenate([self.steps, steps])
        self.rows += len(ticks)

    def join(self, stamps: np.ndarray) -> bool:
        """The last series extended by ``stamps`` where they go on from it at its even step;
        False, changing nothing, where they do not."""
        ticks, k = stamps.view(np.int64), len(self.starts) - 1
        length = self.rows - int(self.starts[k])
        step = self.steps[k] if length > 1 else ticks[0] - self.firsts[k]
        expected = self.firsts[k] + (length + np.arange(len(ticks))) * step
        if k in self.uneven or not np.array_equal(expected, ticks):
            return False
        self.steps[k], self.rows = step, self.rows + len(ticks)
        return True

    def __len__(self) -> int:
        return self.rows

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """Every row's timestamp (a whole array of them: for small tables and tests)."""
        return self[:] if dtype is None else self[:].astype(dtype)

    def __getitem__(self, index: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(index, slice):  # not np.arange(self.rows)[index]: 8 bytes a row
            span = range(self.rows)[index]
            rows = np.arange(span.start, span.stop, span.step)
        elif isinstance(index, int | np.integer):
            return self[np.array([range(self.rows)[index]])][0]  # IndexError past the end
        else:
            rows = np.asarray(index)
        series = np.searchsorted(self.starts, rows, side="right") - 1
        offsets = rows - self.starts[series]
        ticks = self.firsts[series] + offsets * self.steps[series]
        for k in set(np.unique(series).tolist()) & self.uneven.keys():
            at = series == k
            ticks[at] = self.uneven[k][offsets[at]]
        return ticks.view("datetime64[ns]")
