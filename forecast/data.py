"""Tables in, validated series out: reading, checking, splitting and scaling.

Everything a user can get wrong about their file is caught here, once, with a message that
names the file, column, series or row. What comes out is one contiguous array of all
series stacked in time order, plus the row ranges of each series and split; windows.py
turns those ranges into training examples without copying.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import functools
import gzip
import io
import lzma
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

FILL_METHODS = ("ffill", "interpolate")
# data.duplicates: rows repeating the previous row's timestamp are refused, or merged into one
DUPLICATE_RULES = ("error", "first", "last", "mean")
# data.short_series: a series too short for a split is refused, or left out of every split
SHORT_SERIES_RULES = ("error", "drop")
INFER_ROWS = 1000  # rows a frequency is inferred from


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

    def series_values(self, k: int) -> np.ndarray:
        start, end = self.bounds[k]
        return self.values[start:end]


@dataclass(frozen=True)
class Scaler:
    """Per-column standardization; statistics come from training rows only (ddof=0)."""

    mean: np.ndarray  # (n_features,)
    std: np.ndarray  # (n_features,)

    @classmethod
    def fit(cls, values: np.ndarray, chunk_rows: int = 1 << 20) -> Scaler:
        """Two passes in float64 over chunks of rows: exact whatever the values' dtype, and
        no float64 copy of the whole training split (``values.std`` would make one)."""
        chunks = [values[i : i + chunk_rows] for i in range(0, len(values), chunk_rows)]
        mean = sum(c.sum(axis=0, dtype=np.float64) for c in chunks) / len(values)
        var = sum(np.square(c - mean).sum(axis=0) for c in chunks) / len(values)
        std = np.sqrt(var)
        # A constant training column would divide by zero; leave it centred but unscaled.
        return cls(mean=mean, std=np.where(std > 0, std, 1.0))

    def transform(
        self, values: np.ndarray, dtype: type = np.float64, copy: bool = True
    ) -> np.ndarray:
        """Scaled ``values`` in ``dtype``: a copy, or with ``copy=False`` and a matching dtype
        ``values`` itself, scaled in place (no second copy of a large table). The subtraction
        runs in the wider of the two dtypes, chunk by chunk: ``1e8 + 3 sin(t)`` cast to
        float32 first would lose its variation entirely."""
        if copy or values.dtype != dtype or not values.flags.writeable:  # read-only: pandas 3
            out = np.empty(values.shape, dtype)
        else:
            out = values
        mean, std = self.mean.astype(np.float64), self.std.astype(np.float64)
        per_row = int(np.prod(values.shape[1:], dtype=np.int64)) or 1
        rows = max(1, (1 << 20) // per_row)  # about 8 MB of float64 at a time
        for i in range(0, len(values), rows):
            out[i : i + rows] = (values[i : i + rows] - mean) / std
        return out

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Scaled ``(..., n_columns)`` values back in original units, in float64."""
        return values * self.std + self.mean

    def select(self, columns: Sequence[int]) -> Scaler:
        """The statistics of ``columns`` alone (the targets' among the features)."""
        return Scaler(mean=self.mean[list(columns)], std=self.std[list(columns)])

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, stats: dict[str, list[float]]) -> Scaler:
        return cls(mean=np.asarray(stats["mean"]), std=np.asarray(stats["std"]))


def read_table(path: str | Path, max_rows: int | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file; a missing or unreadable file is a ForecastError.

    ``max_rows`` bounds the work before it is done: a file with more data rows is refused
    after reading at most that many, rather than after exhausting memory.
    """
    path = Path(path)
    if path.is_dir():
        raise ForecastError(f"{path} is a folder; give the data file inside it")
    if not path.is_file():
        raise ForecastError(f"data file not found: {path}")
    kind, compression = table_kind(path)
    if kind == "csv":
        _check_header(path, compression)
    try:
        if kind == "csv":
            # pandas takes the codec from the same suffix
            frame = pd.read_csv(path, nrows=None if max_rows is None else max_rows + 1)
        else:
            frame = _read_parquet(path, max_rows)
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as err:
        raise ForecastError(f"cannot read {path}: {err}") from None
    if frame.empty:
        raise ForecastError(f"{path} has no data rows (columns: {list(frame.columns)})")
    if max_rows is not None and len(frame) > max_rows:
        raise ForecastError(_too_many_rows(path, max_rows))
    return frame


# A header line longer than this is not a table's header: a binary file, or one line of text.
HEADER_BYTES = 1 << 20
# CSV files as they come, compressed: the suffix after .csv names the codec (pandas' own names).
COMPRESSIONS: dict[str, Callable[[Path], AbstractContextManager[IO[bytes]]]] = {
    ".gz": functools.partial(gzip.open, mode="rb"),
    ".bz2": functools.partial(bz2.open, mode="rb"),
    ".xz": functools.partial(lzma.open, mode="rb"),
    ".zip": lambda path: _zip_member(path),  # the archive's one file
}


def table_kind(path: Path) -> tuple[str, str | None]:
    """``("csv" | "parquet", compression)`` from the file's suffixes (``.csv.gz``)."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    compression = suffixes.pop().lstrip(".") if suffixes and suffixes[-1] in COMPRESSIONS else None
    table = suffixes[-1] if suffixes else ""
    if table == ".csv":
        return "csv", compression
    if table in (".parquet", ".pq") and compression is None:
        return "parquet", None
    raise ForecastError(
        f"{path}: unsupported file type {''.join(path.suffixes) or 'without a suffix'!r}, "
        f"expected .csv (also {', '.join('.csv' + c for c in COMPRESSIONS)}) or .parquet"
    )


@contextlib.contextmanager
def _zip_member(path: Path) -> Iterator[IO[bytes]]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) != 1:
            raise ForecastError(f"{path}: a zip archive must hold one file, it holds {names}")
        with archive.open(names[0]) as member:
            yield member


def _check_header(path: Path, compression: str | None = None) -> None:
    """Look at the first line before pandas reads the file: a binary file or one without line
    breaks would otherwise be parsed whole as a single field, at many times its size in
    memory. pandas renames a repeated column name to ``name.1``: refuse it instead, by name."""
    opener = COMPRESSIONS[f".{compression}"] if compression else functools.partial(open, mode="rb")
    try:
        with opener(path) as file:
            start = file.read(HEADER_BYTES + 1)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise ForecastError(f"cannot read {path} as a .{compression} file: {err}") from None
    if (nul := start.find(b"\0")) >= 0:
        raise ForecastError(f"{path} is not a text CSV file: NUL byte at offset {nul}")
    if len(start) > HEADER_BYTES and b"\n" not in start and b"\r" not in start:
        raise ForecastError(
            f"{path}: no line break in the first {HEADER_BYTES} bytes; a CSV file starts with "
            "a header line of column names"
        )
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError as err:  # cut mid-character at the end, or not UTF-8 at all
        if len(start) <= HEADER_BYTES or err.start < len(start) - 4:
            raise ForecastError(f"{path} is not UTF-8 text (byte {err.start})") from None
        text = start[: err.start].decode("utf-8")
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ForecastError(f"{path}: column name(s) {repeated} appear more than once")


def _too_many_rows(path: Path, max_rows: int) -> str:
    return (
        f"{path} has more than data.max_rows={max_rows} rows; raise data.max_rows if memory "
        "allows (about 40 bytes per value at the peak of setup)"
    )


def _read_parquet(path: Path, max_rows: int | None) -> pd.DataFrame:
    """Column by column: pd.read_parquet decodes the whole file into Arrow first and then
    copies it into pandas, about three times the table's size at its peak."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    if max_rows is not None and file.metadata.num_rows > max_rows:
        raise ForecastError(_too_many_rows(path, max_rows))
    columns = {
        name: file.read(columns=[name]).column(0).to_pandas() for name in file.schema_arrow.names
    }
    return pd.DataFrame(columns, copy=False)


def table_columns(
    frame: pd.DataFrame, columns: Sequence[str], source: str, rows: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The named columns' values (in ``rows`` order); a missing column is a ForecastError."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ForecastError(
            f"{source}: column(s) {missing} not found; available: {list(frame.columns)}"
        )
    return {c: frame[c].to_numpy() if rows is None else frame[c].to_numpy()[rows] for c in columns}


def as_list(columns: str | Sequence[str] | None) -> list[str] | None:
    """Accept one column name where a list is expected (``data.targets=OT``)."""
    if columns is None or isinstance(columns, str):
        return None if columns is None else [columns]
    return list(columns)


def prepare_series(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    features: Sequence[str] | None,
    series_id: str | None = None,
    fill_missing: str | None = None,
    freq: str | None = None,
    source: str = "input",
    dtype: type = np.float64,
    exclude: Sequence[str] = (),
    duplicates: str = "error",
    timestamp_format: str | None = None,
) -> SeriesFrame:
    """Check a long-format table and stack its series, values in ``dtype``.

    ``features=None`` takes every column but the timestamp, the series id and ``exclude``
    (the covariates, which are not past inputs unless named as features). Rows of one series
    must be strictly increasing in time at one regular frequency: a gap, a duplicate or an
    out-of-order row would make a window silently span the wrong stretch of time.
    """
    required = [timestamp] + ([series_id] if series_id else [])
    features = as_list(features) or [
        c for c in frame.columns if c not in required and c not in exclude
    ]
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
                "to use it as categories name it in data.static_covariates or "
                "data.future_covariates and in data.categorical, or leave it out of data.features"
            )
    stamps = parse_timestamps(frame[timestamp], timestamp_format, source, timestamp)
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise ForecastError(f"{source}: column {timestamp!r} is empty at row {row}")
    timezone = None
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # kept for the forecasts; UTC inside
        timezone = str(stamps.dt.tz)
        stamps = stamps.dt.tz_convert(None)

    # One copy of the values, filled column by column (frame[features] would copy the table
    # once more); series are cut from it by row positions, so a single series is never
    # copied again.
    all_values = np.empty((len(frame), len(features)), dtype)
    for j, column in enumerate(features):
        all_values[:, j] = frame[column].to_numpy()
    all_stamps = to_nanoseconds(stamps.to_numpy(), source, timestamp)
    if series_id:
        positions = frame.groupby(series_id, sort=False).indices
        groups = [(key, positions[key]) for key in pd.unique(frame[series_id])]
    else:
        groups = [("", slice(None))]
    values, stamp_blocks, bounds, ids, kept_rows, start = [], [], [], [], [], 0
    freqs = set()
    for key, rows in groups:
        label = f"{source}, series {key!r}" if series_id else source
        kept, stamp_block, block, series_freq = check_series(
            all_stamps[rows], all_values[rows], features, fill_missing, duplicates, freq, label
        )
        freqs.add(series_freq)
        positions = rows if series_id else np.arange(len(frame))  # the frame's rows
        values.append(block)
        stamp_blocks.append(stamp_block)
        kept_rows.append(positions[kept])
        bounds.append((start, start + len(block)))
        ids.append(key)
        start += len(block)
    if len(freqs) > 1:
        raise ForecastError(f"{source}: series have different frequencies {sorted(freqs)}")
    return SeriesFrame(
        values=values[0] if len(values) == 1 else np.concatenate(values),
        timestamps=stamp_blocks[0] if len(values) == 1 else np.concatenate(stamp_blocks),
        bounds=bounds,
        series_ids=ids,
        features=features,
        freq=freqs.pop(),
        rows=np.concatenate(kept_rows) if series_id or start < len(frame) else None,
        timezone=timezone,
        merged=len(frame) - start,
    )


def check_series(
    stamps: np.ndarray,
    values: np.ndarray,
    features: list[str],
    fill_missing: str | None,
    duplicates: str,
    freq: str | None,
    label: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """One series under the data's rules, in the order they apply, for training files and for
    the histories of forecasts alike: repeated timestamps merged (``duplicates``), missing
    values filled or refused, timestamps strictly increasing at one frequency. Returns the
    kept rows' positions, their timestamps and values, and the frequency."""
    kept, stamps, values = merge_duplicates(stamps, values, duplicates)
    values = check_values(values, features, fill_missing, label)
    return kept, stamps, values, check_timestamps(stamps, freq, label)


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


def merge_duplicates(
    stamps: np.ndarray, values: np.ndarray, how: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of rows with the same timestamp as one row each, by ``how`` (``first``, ``last``,
    ``mean`` of the values): the kept rows' positions (the first of a run for ``mean``), their
    timestamps and values. ``error`` keeps every row, for check_timestamps to refuse. Only
    repeated neighbours merge: a timestamp that comes back later means unsorted rows, which
    stay an error.
    """
    if how not in DUPLICATE_RULES:
        raise ForecastError(f"duplicates={how!r} is not one of {DUPLICATE_RULES}")
    repeat = np.diff(stamps) == np.timedelta64(0)
    if how == "error" or not repeat.any():
        return np.arange(len(stamps)), stamps, values
    starts = np.flatnonzero(np.r_[True, ~repeat])
    if how == "mean":
        sizes = np.diff(np.r_[starts, len(stamps)])
        merged = np.add.reduceat(values, starts, axis=0) / sizes[:, None]
        return starts, stamps[starts], merged.astype(values.dtype)
    kept = starts if how == "first" else np.r_[starts[1:] - 1, len(stamps) - 1]
    return kept, stamps[kept], values[kept]


# "1998 Q1", "1998Q1", "1998-Q1": quarterly labels, which pandas does not parse as dates
QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)


def parse_timestamps(
    values: pd.Series | np.ndarray, fmt: str | None, source: str, column: str
) -> pd.Series:
    """A timestamp column as datetimes: by ``fmt`` (``data.timestamp_format``, strftime codes)
    when given, else as pandas reads dates; quarterly labels become the quarter's first day."""
    values = pd.Series(values)
    if fmt is None and (values.dtype == object or pd.api.types.is_string_dtype(values)):
        quarters = values.astype(str).str.extract(QUARTER)
        if quarters.notna().all(axis=None):
            months = 3 * quarters[1].astype(int) - 2
            return pd.to_datetime({"year": quarters[0].astype(int), "month": months, "day": 1})
    try:
        return pd.to_datetime(values, format=fmt)
    except (ValueError, TypeError) as err:
        hint = "" if fmt else "; set data.timestamp_format (e.g. %d.%m.%Y %H:%M) to read them"
        reason = str(err).splitlines()[0]  # pandas adds lines of advice for its own API
        raise ForecastError(
            f"{source}: column {column!r} holds non-timestamps: {reason}{hint}"
        ) from None


def check_values(
    values: np.ndarray, columns: list[str], method: str | None, label: str
) -> np.ndarray:
    """One series' ``(rows, columns)`` values; NaN/inf are refused unless ``method`` fills them."""
    if np.isfinite(values).all():
        return values
    bad = ~np.isfinite(values)
    if method is not None and method not in FILL_METHODS:
        raise ForecastError(f"fill_missing={method!r} is not one of {FILL_METHODS}")
    if method is not None:
        filled = pd.DataFrame(np.where(bad, np.nan, values))
        filled = filled.ffill() if method == "ffill" else filled.interpolate(limit_direction="both")
        # an array of our own, in the input's dtype: pandas hands out read-only views
        values = filled.to_numpy(dtype=values.dtype, copy=True)
        bad = ~np.isfinite(values)
        if not bad.any():
            return values
    row, col = (int(i[0]) for i in np.nonzero(bad))
    hint = "" if method else "; set data.fill_missing=ffill or interpolate to fill them"
    raise ForecastError(
        f"{label}: column {columns[col]!r} has {int(bad[:, col].sum())} NaN/inf value(s), "
        f"first at row {row}{hint}"
    )


def check_timestamps(stamps: np.ndarray, freq: str | None, label: str) -> str:
    """One series' frequency; raise on unsorted, duplicated or irregular timestamps."""
    steps = np.diff(stamps)
    if (steps <= np.timedelta64(0)).any():
        row = int(np.flatnonzero(steps <= np.timedelta64(0))[0]) + 1
        kind = "duplicated" if steps[row - 1] == np.timedelta64(0) else "not sorted"
        hint = (
            "; set data.duplicates=first, last or mean to merge them"
            if kind == "duplicated"
            else ""
        )
        raise ForecastError(
            f"{label}: timestamps {kind} at row {row} ({pd.Timestamp(stamps[row])}); "
            f"each series needs strictly increasing timestamps{hint}"
        )
    if freq is None:  # inferred from the first rows; every row is checked against it below
        head = pd.DatetimeIndex(stamps[:INFER_ROWS])
        freq = pd.infer_freq(head) if len(head) >= 3 else None
    if freq is None:
        values, counts = np.unique(steps, return_counts=True)
        usual = values[counts.argmax()] if len(values) else None
        irregular = np.flatnonzero(steps != usual)
        where = ""
        if irregular.size:
            row = int(irregular[0]) + 1
            where = (
                f": row {row} ({pd.Timestamp(stamps[row])}) is {pd.Timedelta(steps[row - 1])} "
                f"after the row before, most rows are {pd.Timedelta(usual)} apart"
            )
        raise ForecastError(
            f"{label}: cannot infer a regular frequency from the timestamps{where}; "
            "fill the gaps or set data.freq (e.g. h, 15min, D)"
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
        raise ForecastError(
            f"{label}: timestamp at row {row} is {pd.Timestamp(stamps[row])}, "
            f"expected {expected} at frequency {offset.freqstr}"
        )
    return offset.freqstr


def split_borders(
    n_rows: int, ratios: Sequence[float] | None, borders: Sequence[int] | None
) -> tuple[int, int, int]:
    """End rows (exclusive) of train, val and test for one series of ``n_rows`` rows.

    Explicit ``borders`` win over ``ratios``; rows after the test border are never used
    (the ETT protocol leaves the last 4 months out).
    """
    if borders is not None:
        train_end, val_end, test_end = (int(b) for b in borders)
        if not 0 < train_end < val_end < test_end <= n_rows:
            raise ForecastError(
                f"split_borders {list(borders)} must be increasing and at most the series "
                f"length {n_rows}; for your own file start from data=csv, which splits by "
                "data.split_ratios"
            )
        return train_end, val_end, test_end
    if ratios is None or len(ratios) != 3 or min(ratios) <= 0 or sum(ratios) > 1 + 1e-9:
        raise ForecastError(f"split_ratios {ratios} must be 3 positive numbers summing to <= 1")
    train_end = int(n_rows * ratios[0])
    val_end = train_end + int(n_rows * ratios[1])
    return train_end, val_end, min(n_rows, val_end + int(n_rows * ratios[2]))
