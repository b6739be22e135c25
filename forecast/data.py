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
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

FILL_METHODS = ("ffill", "interpolate")
# data.fill_gaps: missing timestamps are refused (null), or inserted and filled by one of these
GAP_METHODS = ("ffill", "interpolate", "zero")
# A composite data.timestamp of these columns is assembled by pandas; others are joined by spaces.
DATE_PARTS = ("year", "month", "day", "hour", "minute", "second")
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
    inserted: int = 0  # rows inserted at missing timestamps by data.fill_gaps
    filled: int = 0  # missing values filled by data.fill_missing

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


def read_table(
    path: str | Path,
    max_rows: int | None = None,
    header: bool = True,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV or Parquet file; a missing or unreadable file is a ForecastError.

    ``max_rows`` bounds the work before it is done: a file with more data rows is refused
    after reading at most that many, rather than after exhausting memory. A CSV file without
    a header line (``header=False``) is read with ``columns`` as its names; with a header,
    ``columns`` replace the names it has.
    """
    path = Path(path)
    if path.is_dir():
        raise ForecastError(f"{path} is a folder; give the data file inside it")
    if not path.is_file():
        raise ForecastError(f"data file not found: {path}")
    kind, compression = table_kind(path)
    names = None if columns is None else [str(c) for c in columns]
    if kind == "parquet" and (names is not None or not header):
        raise ForecastError(f"{path}: data.header and data.columns are for CSV files only")
    if not header and names is None:
        raise ForecastError(f"{path}: data.header=false needs data.columns, a name per column")
    if kind == "csv":
        _check_header(path, compression, names)
    try:
        if kind == "csv":
            # pandas takes the codec from the same suffix
            frame = pd.read_csv(
                path,
                nrows=None if max_rows is None else max_rows + 1,
                header=0 if header else None,
                names=names,
            )
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


def _check_header(
    path: Path, compression: str | None = None, names: list[str] | None = None
) -> None:
    """Look at the first line before pandas reads the file: a binary file or one without line
    breaks would otherwise be parsed whole as a single field, at many times its size in
    memory. pandas renames a repeated column name to ``name.1``: refuse it instead, by name.
    Given ``names`` (data.columns), there must be one per field of the first line: pandas
    would make the extra fields an index, silently."""
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
    if names is not None and len(names) != len(header):
        raise ForecastError(
            f"{path}: data.columns names {len(names)} columns, the file's first line has "
            f"{len(header)} fields"
        )
    header = header if names is None else names
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


def feature_columns(
    columns: Sequence[str], features: str | Sequence[str] | None, excluded: Sequence[str]
) -> list[str]:
    """The input columns: ``features`` (data.features) if named, else every column but the
    ``excluded`` ones (timestamp, series id, covariates)."""
    return as_list(features) or [c for c in columns if c not in excluded]


@dataclass(frozen=True)
class RowNames:
    """How messages name a row so that a user can find it: the line of a CSV file whose first
    data row is line ``first_line``, else the 0-based data row (Parquet, tables in memory)."""

    first_line: int | None = None

    def __call__(self, row: int) -> str:
        if self.first_line is None:
            return f"data row {row} (0-based)"
        return f"file line {row + self.first_line}"


def file_rows(path: str | Path, header: bool = True) -> RowNames:
    """Rows of ``path`` as read_table reads it: data row 0 is line 2 of a CSV with a header."""
    kind, _ = table_kind(Path(path))
    return RowNames(first_line=(2 if header else 1) if kind == "csv" else None)


def prepare_series(
    frame: pd.DataFrame,
    *,
    timestamp: str | Sequence[str],
    features: Sequence[str] | None,
    series_id: str | Sequence[str] | None = None,
    fill_missing: str | None = None,
    fill_gaps: str | None = None,
    freq: str | None = None,
    source: str = "input",
    dtype: type = np.float64,
    exclude: Sequence[str] = (),
    duplicates: str = "error",
    timestamp_format: str | None = None,
    timezone: str | None = None,
    names: RowNames = RowNames(),
) -> SeriesFrame:
    """Check a long-format table and stack its series, values in ``dtype``.

    ``features=None`` takes every column but the timestamp, the series id and ``exclude``
    (the covariates, which are not past inputs unless named as features). Rows of one series
    must be strictly increasing in time at one regular frequency: a gap, a duplicate or an
    out-of-order row would make a window silently span the wrong stretch of time. The
    timestamp and the series id may each be several columns (``[year, month, day, hour]``,
    ``[Region, State]``); a series is then named by the tuple of its id values.
    """
    stamp_columns, id_columns = as_list(timestamp) or [], as_list(series_id) or []
    required = [*stamp_columns, *id_columns]
    features = feature_columns(frame.columns, features, [*required, *exclude])
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
    stamps = read_timestamps(frame, stamp_columns, timestamp_format, timezone, source, id_columns)
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise ForecastError(f"{source}: column {timestamp!r} is empty at {names(row)}")
    zone = None
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # kept for the forecasts; UTC inside
        zone = str(stamps.dt.tz)
        stamps = stamps.dt.tz_convert(None)

    # One copy of the values, filled column by column (frame[features] would copy the table
    # once more); series are cut from it by row positions, so a single series is never
    # copied again.
    all_values = np.empty((len(frame), len(features)), dtype)
    for j, column in enumerate(features):
        all_values[:, j] = frame[column].to_numpy()
    all_stamps = to_nanoseconds(stamps.to_numpy(), source, str(timestamp))
    values, stamp_blocks, bounds, ids, kept_rows, start = [], [], [], [], [], 0
    freqs, merged, inserted, filled = set(), 0, 0, 0
    for key, rows in series_groups(frame, id_columns, source, names):
        label = f"{source}, series {key!r}" if id_columns else source
        positions = rows if id_columns else None  # the frame's rows; None: all, in order
        checked = check_series(
            all_stamps[rows],
            all_values[rows],
            features,
            label,
            fill_missing=fill_missing,
            fill_gaps=fill_gaps,
            duplicates=duplicates,
            freq=freq,
            rows=positions,
            names=names,
        )
        freqs.add(checked.freq)
        merged, inserted = merged + checked.merged, inserted + checked.inserted
        filled += checked.filled
        values.append(checked.values)
        stamp_blocks.append(checked.stamps)
        kept_rows.append(checked.kept if positions is None else positions[checked.kept])
        bounds.append((start, start + len(checked.values)))
        ids.append(key)
        start += len(checked.values)
    if len(freqs) > 1:
        raise ForecastError(f"{source}: series have different frequencies {sorted(freqs)}")
    return SeriesFrame(
        values=values[0] if len(values) == 1 else np.concatenate(values),
        timestamps=stamp_blocks[0] if len(values) == 1 else np.concatenate(stamp_blocks),
        bounds=bounds,
        series_ids=ids,
        features=features,
        freq=freqs.pop(),
        rows=np.concatenate(kept_rows) if id_columns or merged or inserted else None,
        timezone=zone,
        merged=merged,
        inserted=inserted,
        filled=filled,
    )


def series_groups(
    frame: pd.DataFrame, id_columns: list[str], source: str, names: RowNames
) -> list[tuple[Any, np.ndarray | slice]]:
    """Each series' id (a value, or a tuple of values for several id columns) and rows, in
    order of first appearance; one series of every row without id columns."""
    if not id_columns:
        return [("", slice(None))]
    for column in id_columns:
        empty = frame[column].isna().to_numpy()
        if empty.any():  # pandas' groupby would leave these rows out silently
            where = names(int(np.flatnonzero(empty)[0]))
            raise ForecastError(f"{source}: series id column {column!r} is empty at {where}")
    if len(id_columns) == 1:
        positions = frame.groupby(id_columns[0], sort=False).indices
        return [(key, positions[key]) for key in pd.unique(frame[id_columns[0]])]
    positions = frame.groupby(id_columns, sort=False).indices
    order = frame[id_columns].drop_duplicates().itertuples(index=False, name=None)
    return [(key, positions[key]) for key in order]


class CheckedSeries(NamedTuple):
    """One series after the data's rules, and what each rule changed."""

    kept: np.ndarray  # each row's position among the rows given (an inserted row: the one before)
    stamps: np.ndarray  # (rows,) datetime64[ns]
    values: np.ndarray  # (rows, n_features)
    freq: str
    merged: int  # rows merged into the row before them (duplicates)
    inserted: int  # rows inserted at missing timestamps (fill_gaps)
    filled: int  # missing values filled (fill_missing)


def check_series(
    stamps: np.ndarray,
    values: np.ndarray,
    features: list[str],
    label: str,
    *,
    fill_missing: str | None = None,
    fill_gaps: str | None = None,
    duplicates: str = "error",
    freq: str | None = None,
    rows: np.ndarray | None = None,
    names: RowNames = RowNames(),
) -> CheckedSeries:
    """One series under the data's rules, in the order they apply, for training files and for
    the histories of forecasts alike: repeated timestamps merged (``duplicates``), then
    missing timestamps inserted and filled (``fill_gaps``), then missing values filled or
    refused (``fill_missing``), and last the timestamps checked strictly increasing at one
    frequency. ``rows`` are the given rows' positions in the table, for ``names``."""
    given = len(stamps)
    kept, stamps, values = merge_duplicates(stamps, values, duplicates)
    merged = given - len(stamps)

    def name(i: int) -> str:
        position = int(kept[i])
        return names(position if rows is None else int(rows[position]))

    check_order(stamps, label, name)
    inserted = 0
    if fill_gaps is not None:
        offset = gap_frequency(stamps, freq, label)
        source, stamps, values, inserted = insert_gaps(stamps, values, fill_gaps, offset, label)
        kept = kept[source]
        freq = offset.freqstr
    values, filled = check_values(values, features, fill_missing, label, name)
    freq = check_timestamps(stamps, freq, label, name)  # in order since check_order
    return CheckedSeries(kept, stamps, values, freq, merged, inserted, filled)


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
    timestamps and values. ``error`` keeps every row, for check_order to refuse. Only
    repeated neighbours merge: a timestamp that comes back later means unsorted rows, which
    stay an error.
    """
    if how not in DUPLICATE_RULES:
        raise ForecastError(f"data.duplicates={how!r} is not one of {DUPLICATE_RULES}")
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


def gap_frequency(stamps: np.ndarray, freq: str | None, label: str) -> pd.DateOffset:
    """The step that missing timestamps are inserted at: ``freq`` (data.freq), else inferred
    from the first rows, else the most common step. Seven days is a week anchored on the
    first row's weekday (``W-SUN``); a step of a month or more is refused without data.freq,
    because months and quarters are not a fixed number of days."""
    freq = freq or head_frequency(stamps)
    if freq is not None:
        return pd.tseries.frequencies.to_offset(freq)
    step = usual_step(np.diff(stamps))
    if step is None:
        raise ForecastError(f"{label}: one timestamp; data.fill_gaps needs data.freq to fill")
    usual = pd.Timedelta(step)
    if usual == pd.Timedelta(days=7):
        return pd.tseries.frequencies.to_offset(f"W-{pd.Timestamp(stamps[0]):%a}".upper())
    if usual >= pd.Timedelta(days=28):
        raise ForecastError(
            f"{label}: the rows are mostly {usual} apart, which may be months or quarters; "
            "set data.freq (e.g. MS, ME, QS) for data.fill_gaps to fill"
        )
    return pd.tseries.frequencies.to_offset(usual)


# A grid of more rows than this many times the rows given is a wrong timestamp, not gaps.
MAX_GAP_GROWTH = 10


def insert_gaps(
    stamps: np.ndarray, values: np.ndarray, how: str, offset: pd.DateOffset, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rows inserted at every step of ``offset`` missing from sorted ``stamps`` and filled by
    ``how``: ``ffill`` repeats the row before, ``interpolate`` draws a straight line between
    the rows either side (by step), ``zero`` inserts zeros (sales that did not happen). Returns
    each row's source (the given row at or before it), the timestamps, values and the number
    of rows inserted. Gaps lie between given rows, so the series' edges never need them."""
    if how not in GAP_METHODS:
        raise ForecastError(f"data.fill_gaps={how!r} is not one of {GAP_METHODS} (or null)")
    if isinstance(offset, pd.offsets.Tick):  # the grid's size before it is built
        steps = int((stamps[-1] - stamps[0]).astype(np.int64)) // offset.nanos + 1
        if steps > MAX_GAP_GROWTH * len(stamps) + 1000:
            raise ForecastError(
                f"{label}: filling the steps of {offset.freqstr} from {pd.Timestamp(stamps[0])} "
                f"to {pd.Timestamp(stamps[-1])} would make {steps} rows out of {len(stamps)}; "
                "check the timestamps, or data.freq"
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
        return np.arange(len(stamps)), stamps, values, 0
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
    return source, grid, filled, int(new.sum())


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


def check_values(
    values: np.ndarray,
    columns: list[str],
    method: str | None,
    label: str,
    name: Callable[[int], str] = RowNames(),
) -> tuple[np.ndarray, int]:
    """One series' ``(rows, columns)`` values, NaN/inf refused unless ``method`` fills them;
    and how many were filled. ``ffill`` has nothing to carry into the rows before a column's
    first value, so those stay an error; ``interpolate`` extends the nearest value there."""
    if np.isfinite(values).all():
        return values, 0
    bad = ~np.isfinite(values)
    if method is not None and method not in FILL_METHODS:
        raise ForecastError(f"data.fill_missing={method!r} is not one of {FILL_METHODS}")
    missing = int(bad.sum())
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
    """Raise on timestamps that repeat or go back: each series is in time order."""
    steps = np.diff(stamps)
    wrong = np.flatnonzero(steps <= np.timedelta64(0))
    if not wrong.size:
        return
    row = int(wrong[0]) + 1
    duplicated = steps[row - 1] == np.timedelta64(0)
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


def head_frequency(stamps: np.ndarray) -> str | None:
    """The frequency pandas infers from the first ``INFER_ROWS`` timestamps, if it can."""
    head = pd.DatetimeIndex(stamps[:INFER_ROWS])
    return pd.infer_freq(head) if len(head) >= 3 else None


def usual_step(steps: np.ndarray) -> np.timedelta64 | None:
    """The most common of ``steps`` (the first of equals), None without any."""
    values, counts = np.unique(steps, return_counts=True)
    return values[counts.argmax()] if len(values) else None


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
