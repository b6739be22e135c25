"""Timestamps in and out: read from one column or several (formats, quarters, zones) into
UTC nanoseconds, the frequency and season they follow, and written back in the columns, zone
and format the data had them in."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

INFER_ROWS = 1000  # rows a frequency is inferred from


# A composite data.timestamp of these columns is assembled by pandas; others are joined by spaces.
DATE_PARTS = ("year", "month", "day", "hour", "minute", "second")


# "1998 Q1", "1998Q1", "1998-Q1": quarterly labels, which pandas does not parse as dates
QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)


def read_timestamps(
    frame: pd.DataFrame,
    columns: list[str],
    fmt: str | None,
    timezone: str | None,
    source: str,
    id_columns: Sequence[str] = (),
) -> pd.Series:
    """The timestamp of each row, from one column or several: columns named year, month, day,
    hour, minute, second are assembled as numbers, others joined by spaces (``date`` and
    ``time``) and parsed as one text, by ``fmt`` if given. Without columns the rows are steps
    0, 1, ... of each series, held as that many nanoseconds after the epoch (frequency
    ``ns``), so that integer steps go through the same checks and windows as times."""
    if not columns:
        steps = (
            frame.groupby(list(id_columns), sort=False).cumcount().to_numpy()
            if id_columns
            else np.arange(len(frame))
        )
        return pd.Series(steps.astype("datetime64[ns]"))
    if integer_time(frame, columns, fmt):  # t, step, period: the steps themselves
        return pd.Series(frame[columns[0]].to_numpy().astype(np.int64).astype("datetime64[ns]"))
    if len(columns) > 1 and all(c.lower() in DATE_PARTS for c in columns):
        parts = frame[columns].rename(columns=str.lower)
        try:
            stamps = pd.to_datetime(parts)
        except (ValueError, TypeError) as err:
            reason = str(err).splitlines()[0]
            raise ForecastError(f"{source}: columns {columns} are not a date: {reason}") from None
        return in_zone(stamps, timezone, source, columns, frame[list(id_columns)])
    values = frame[columns[0]]
    if len(columns) > 1:
        values = values.astype(str).str.cat([frame[c].astype(str) for c in columns[1:]], sep=" ")
    name = columns[0] if len(columns) == 1 else columns
    stamps = parse_timestamps(values, fmt, source, name, timezone)
    return in_zone(stamps, timezone, source, name, frame[list(id_columns)])


def integer_time(frame: pd.DataFrame, columns: list[str], fmt: str | None) -> bool:
    """Whether the time is one column of integers (``t``, ``step``, ``period``): steps, held
    as that many nanoseconds after the epoch like rows without a time column, and written
    back as integers. pandas would read them as nanoseconds since 1970, every one printing as
    ``1970-01-01 00:00:00``."""
    if len(columns) != 1 or fmt is not None or columns[0] not in frame:
        return False
    return frame[columns[0]].dtype.kind in "iu"


def parse_timestamps(
    values: pd.Series | np.ndarray,
    fmt: str | None,
    source: str,
    column: str | list[str],
    timezone: str | None = None,
) -> pd.Series:
    """A timestamp column as datetimes: by ``fmt`` (``data.timestamp_format``, strftime codes)
    when given, else as pandas reads dates; quarterly labels become the quarter's first day.
    Stamps with different UTC offsets (a daylight-saving change) are read in UTC when
    ``timezone`` is given, else refused; read_timestamps then puts them in that zone."""
    values = pd.Series(values)
    if fmt is None and (values.dtype == object or pd.api.types.is_string_dtype(values)):
        quarters = values.astype(str).str.extract(QUARTER)
        if quarters.notna().all(axis=None):
            months = 3 * quarters[1].astype(int) - 2
            return pd.to_datetime({"year": quarters[0].astype(int), "month": months, "day": 1})
    try:
        with warnings.catch_warnings():  # "could not infer format": our own message says more
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(values, format=fmt)
    except (ValueError, TypeError) as err:
        reason = str(err).splitlines()[0]  # pandas adds lines of advice for its own API
        if "Mixed timezones" in reason and timezone is not None:
            return pd.to_datetime(values, format=fmt, utc=True)
        if "Mixed timezones" in reason:
            raise ForecastError(
                f"{source}: column {column!r} mixes UTC offsets (a daylight-saving change?); "
                "set data.timezone to the zone to hold them in (e.g. Europe/Berlin, or UTC)"
            ) from None
        hint = "" if fmt else "; set data.timestamp_format (e.g. %d.%m.%Y %H:%M) to read them"
        raise ForecastError(
            f"{source}: column {column!r} holds non-timestamps: {reason}{hint}"
        ) from None


def in_zone(
    stamps: pd.Series,
    timezone: str | None,
    source: str,
    column: str | list[str],
    ids: pd.DataFrame | None = None,
) -> pd.Series:
    """``stamps`` in ``timezone`` (data.timezone): aware ones converted, naive ones read as its
    local time. In the hour a daylight-saving change repeats, the first of two equal local
    stamps of a series is the earlier one (summer time), as clocks go."""
    if timezone is None:
        return stamps
    try:
        pd.Timestamp(0, tz=timezone)
    except (KeyError, ValueError):  # zoneinfo's KeyError, or pandas' for a malformed name
        raise ForecastError(
            f"data.timezone={timezone!r} is not a time zone (e.g. Europe/Berlin, UTC)"
        ) from None
    if stamps.dt.tz is not None:
        return stamps.dt.tz_convert(timezone)
    keys = pd.DataFrame({"stamp": stamps.to_numpy()})
    if ids is not None:
        for column in ids.columns:
            keys[column] = ids[column].to_numpy()
    first = ~keys.duplicated().to_numpy()
    try:
        return stamps.dt.tz_localize(timezone, ambiguous=first, nonexistent="raise")
    except ValueError as err:  # a local time the change skips
        raise ForecastError(
            f"{source}: column {column!r}: {str(err).splitlines()[0]} in {timezone}"
        ) from None


# pandas and numpy hold timestamps as int64 nanoseconds: 1677-09-21 to 2262-04-11. Outside
# that range a conversion wraps around silently to a wrong date, so it is refused instead.
_NS_RANGE = (np.datetime64(pd.Timestamp.min, "us") + 1, np.datetime64(pd.Timestamp.max, "us"))


def to_nanoseconds(stamps: np.ndarray, source: str, column: str) -> np.ndarray:
    """Timestamps of any datetime64 unit as ``datetime64[ns]``; out-of-range ones refused."""
    stamps = np.asarray(stamps)
    if stamps.dtype == np.dtype("datetime64[ns]"):
        return stamps
    wide = stamps.astype("datetime64[us]")
    outside = (wide < _NS_RANGE[0]) | (wide > _NS_RANGE[1])
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ForecastError(
            f"{source}: column {column!r} has {wide[row]} at row {row}, outside the range "
            "timestamps can be held in (1677-09-21 to 2262-04-11)"
        )
    return wide.astype("datetime64[ns]")


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


def utc_stamps(
    frame: pd.DataFrame,
    columns: list[str],
    fmt: str | None,
    timezone: str | None,
    source: str,
    id_columns: Sequence[str] = (),
    names: Callable[[int], str] = lambda row: f"data row {row} (0-based)",
) -> tuple[np.ndarray, str | None]:
    """Each row's timestamp as UTC ``datetime64[ns]`` (read_timestamps), and the zone they
    were in, kept for the forecasts (None for naive ones); an empty one is refused."""
    stamps = read_timestamps(frame, columns, fmt, timezone, source, id_columns)
    name = columns[0] if len(columns) == 1 else columns
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise ForecastError(f"{source}: column {name!r} is empty at {names(row)}")
    zone = None
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        zone = str(stamps.dt.tz)
        stamps = stamps.dt.tz_convert(None)
    return to_nanoseconds(stamps.to_numpy(), source, str(name)), zone


def parse_iso(texts: Sequence[str], source: str, column: str) -> np.ndarray | None:
    """ISO 8601 texts without a UTC offset as ``datetime64[ns]``, read by numpy: many times
    faster than pandas for the few rows of a request. None where numpy cannot read them all
    (offsets, other formats): those go to read_timestamps."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns on an offset: pandas handles those
            parsed = np.array(texts, dtype="datetime64[us]")
    except (ValueError, UserWarning):
        return None
    return to_nanoseconds(parsed, source, column)


def local_index(stamps: np.ndarray, timezone: str | None) -> pd.DatetimeIndex:
    """UTC ``stamps`` as forecasts show them: in the data's zone, if it had one."""
    index = pd.DatetimeIndex(stamps)
    return index if timezone is None else index.tz_localize("UTC").tz_convert(timezone)


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
    """Each timestamp as the values of its columns, datetimes as text: what a JSON answer
    holds. The common case, one naive column, is formatted by numpy, many times faster than
    strftime (a serving answer's budget is milliseconds)."""
    if isinstance(timestamp, str) and timezone is None and not integer:
        text = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")
        return [(str(stamp),) for stamp in text]
    columns = stamp_columns(stamps, timestamp, fmt, timezone, integer)
    if isinstance(timestamp, str) and not integer:  # with the UTC offset its rows came in
        return [(str(stamp),) for stamp in columns[timestamp].astype(str)]
    parts = [np.asarray(v).tolist() for v in columns.values()]
    return list(zip(*parts, strict=True))
