"""Timestamps in: read from one column or several (formats, quarters, zones, integer steps)
into UTC nanoseconds, for training files, histories and requests alike. Their frequency,
zone and how they are written back: ``forecast.data.clock``."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from forecast.data.clock import DATE_PARTS
from forecast.errors import ForecastError

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
    """Whether the time is one column of integers (``t``, ``step``): steps, held as that many
    nanoseconds after the epoch (pandas would print every one as ``1970-01-01``)."""
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
    if fmt is None and values.dtype.kind == "M" and timezone is None:
        return values  # read as timestamps already (Parquet): no copy of a long column
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
