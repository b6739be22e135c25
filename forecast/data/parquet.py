"""Parquet data sets: a file, or a folder of files as Spark, DuckDB, polars and pandas write
them, read whole (``forecast.data.reading``) or a chunk of whole series at a time."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecast.data.rules import RowNames
from forecast.data.series import series_codes
from forecast.errors import ForecastError

if TYPE_CHECKING:
    import pyarrow.dataset as ds

log = logging.getLogger(__name__)


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of a data set written as a folder (by Spark, DuckDB, polars, pandas;
    hive partitions ``key=value/`` allowed), in the order their rows are read: by name, the
    numbers in names compared as numbers (``month=9`` before ``month=10``, ``part-2`` before
    ``part-10``), so that a folder partitioned by time reads in time order. Names starting
    with ``.`` or ``_`` (``_SUCCESS``, ``.crc``, ``_temporary/``) are bookkeeping, skipped as
    Spark and Arrow skip them."""
    found, other = [], []
    for file in folder.rglob("*"):
        relative = file.relative_to(folder)
        if not file.is_file() or any(part[0] in "._" for part in relative.parts):
            continue
        (found if file.suffix.lower() in (".parquet", ".pq") else other).append(file)
    if other:
        log.warning("%s: skipped %d file(s) that are not .parquet, e.g. %s", folder, len(other),
                    other[0].relative_to(folder))  # fmt: skip
    if not found:
        raise ForecastError(f"{folder} is a folder without .parquet files; give a data file")

    def in_order(file: Path) -> list:
        parts = re.split(r"(\d+)", file.relative_to(folder).as_posix())
        return [int(part) if k % 2 else part for k, part in enumerate(parts)]

    return sorted(found, key=in_order)


def parquet_dataset(path: Path) -> ds.Dataset:
    """A Parquet file, or a folder's files (``parquet_files``) with their hive partition
    values as columns; files whose columns differ are refused, naming one of each."""
    import pyarrow.dataset as ds

    if not path.is_dir():
        return ds.dataset(path, format="parquet")
    files = parquet_files(path)
    dataset = ds.dataset(
        [str(f) for f in files], format="parquet", partitioning="hive", partition_base_dir=str(path)
    )  # fmt: skip
    first = None
    for fragment in dataset.get_fragments():
        names = fragment.physical_schema.names
        first = first or (fragment.path, names)
        if sorted(names) != sorted(first[1]):
            raise ForecastError(
                f"{path}: the files hold different columns: {Path(fragment.path).name} has "
                f"{names}, {Path(first[0]).name} has {first[1]}"
            )
    return dataset


def parquet_frame(dataset: ds.Dataset, keep: np.ndarray | None = None) -> pd.DataFrame:
    """Column by column, file after file: pd.read_parquet decodes the whole table into Arrow
    first and then copies it into pandas, about three times the table's size at its peak.
    ``keep``: the rows to keep, a boolean per row (a DDP rank's series), each file's
    filtered as it is read."""
    import pyarrow as pa

    fragments = list(dataset.get_fragments())
    ends = np.cumsum([f.count_rows() for f in fragments]) if keep is not None else None

    def part(k: int, name: str) -> pa.ChunkedArray:
        values = fragments[k].to_table(columns=[name], schema=dataset.schema).column(0)
        if keep is None:
            return values
        return values.filter(pa.array(keep[ends[k] - len(values) : ends[k]]))

    def column(name: str) -> pd.Series:
        parts = [part(k, name) for k in range(len(fragments))]
        chunks = [chunk for part in parts for chunk in part.chunks]
        values = pa.chunked_array(chunks, dataset.schema.field(name).type).to_pandas()
        del parts, chunks
        pa.default_memory_pool().release_unused()  # the decoded pages Arrow would keep cached
        return values

    return pd.DataFrame({name: column(name) for name in dataset.schema.names}, copy=False)


def folder_rows(folder: Path) -> RowNames:
    """How messages name a folder's rows: by file, as parquet_files orders them."""
    import pyarrow.parquet as pq

    files = parquet_files(folder)
    ends = np.cumsum([pq.ParquetFile(f).metadata.num_rows for f in files])
    starts = [0, *map(int, ends[:-1])]
    names = [f.relative_to(folder).as_posix() for f in files]
    return RowNames(files=tuple(zip(starts, names, strict=True)))


def series_chunks(
    path: str | Path,
    columns: list[str],
    id_columns: list[str],
    series: int | None,
    rows: int | None = None,
) -> Iterator[pd.DataFrame]:
    """A Parquet file or folder (``parquet_files``) as tables of ``series`` whole series each
    (the last may hold fewer), or, with ``series=None``, of the whole series read once
    ``rows`` rows are pending; read a batch of rows at a time and only ``columns``: memory
    bounded by a chunk, not the file. The chunks hold every row, in the file's order. Each
    series' rows must come together (a file sorted or partitioned by series); one that
    comes back after others is refused by name (``ScatteredSeries``)."""
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise ForecastError(f"data file not found: {path}")
    if path.is_file() and path.open("rb").read(4) != b"PAR1":
        raise ForecastError(f"{path}: reading in chunks of series needs a Parquet file")
    dataset = parquet_dataset(path)
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise ForecastError(
            f"{path}: column(s) {missing} not found; available: {dataset.schema.names}"
        )
    chunks = _Chunks(path, id_columns, series)
    parts: list[pd.DataFrame] = []
    runs, last_key = 0, None  # runs of one series' rows in ``parts``, and the last row's id
    pending = 0  # rows in ``parts``
    for frame in column_batches(dataset, columns):
        new, last_key = id_runs(frame, id_columns, last_key)
        runs += new
        parts.append(frame)
        pending += len(frame)
        if runs > series if series else pending >= rows and runs > 1:
            done, rest, runs = chunks.cut(pd.concat(parts, ignore_index=True), last=False)
            yield from done
            parts, pending = [rest], len(rest)
    if parts:
        yield from chunks.cut(pd.concat(parts, ignore_index=True), last=True)[0]


def id_runs(frame: pd.DataFrame, id_columns: list[str], last_key: list | None) -> tuple[int, list]:
    """The runs of one series' rows that ``frame`` (a batch after one whose last row's ids
    were ``last_key``) starts or adds, and its last row's ids."""
    codes = series_codes(frame, id_columns)
    first_key = frame[id_columns].iloc[0].tolist()
    runs = int(np.count_nonzero(codes[1:] != codes[:-1])) + (first_key != last_key)
    return runs, frame[id_columns].iloc[-1].tolist()


def series_count(dataset: ds.Dataset, id_columns: list[str]) -> int:
    """The series of a data set whose series' rows come together (else ``series_chunks``
    refuses it), counted as runs of its id columns, read alone."""
    runs, last_key = 0, None
    for frame in column_batches(dataset, id_columns):
        new, last_key = id_runs(frame, id_columns, last_key)
        runs += new
    return runs


def row_chunks(dataset: ds.Dataset, columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
    """The table's ``columns`` as frames of ``rows`` rows (the last may hold fewer), in the
    file's order."""
    parts: list[pd.DataFrame] = []
    for frame in column_batches(dataset, columns):
        parts.append(frame)
        if sum(map(len, parts)) >= rows:
            pending = pd.concat(parts, ignore_index=True)
            cut = len(pending) // rows * rows
            for start in range(0, cut, rows):
                yield pending.iloc[start : start + rows].reset_index(drop=True)
            parts = [pending.iloc[cut:]]
    if parts and sum(map(len, parts)):
        yield pd.concat(parts, ignore_index=True)


def column_batches(dataset: ds.Dataset, columns: list[str]) -> Iterator[pd.DataFrame]:
    """The rows of ``columns`` (a hive partition's too), file after file in order, a batch
    at a time: one thread, as threads would hand batches out of order; a row group decoded
    at a time, not read ahead (Arrow's default buffers several: a third of a GB for a
    panel's 2-million-row groups)."""
    import pyarrow.dataset as ds

    once = ds.ParquetFragmentScanOptions(pre_buffer=False)
    for fragment in dataset.get_fragments():
        batches = fragment.to_batches(
            schema=dataset.schema, columns=columns, batch_size=1 << 16, use_threads=False,
            batch_readahead=0, fragment_readahead=0, fragment_scan_options=once,
        )  # fmt: skip
        for batch in batches:
            if batch.num_rows:
                yield batch.to_pandas()


class Unstreamable(ForecastError):
    """A table that read a chunk at a time would not come out as read whole (training then
    reads it whole)."""


class ScatteredSeries(Unstreamable):
    """A series whose rows come back after other series' rows: the file cannot be read in
    chunks of whole series."""


class _Chunks:
    """Cuts rows read in order into chunks of ``series`` runs of one series' rows, and
    refuses a series whose rows come back after it was handed out."""

    def __init__(self, path: Path, id_columns: list[str], series: int | None) -> None:
        self.path, self.id_columns, self.series = path, id_columns, series
        self.done: set = set()  # the series handed out

    def cut(self, pending: pd.DataFrame, last: bool) -> tuple[list, pd.DataFrame, int]:
        """Chunks of ``series`` runs; the rest, which keeps the last run unless ``last``
        (the file's end: nothing can continue it), and the runs in it."""
        codes = series_codes(pending, self.id_columns)
        starts = [*np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]).tolist(), len(codes)]
        complete = len(starts) - 1 - (not last)
        size = self.series or max(complete, 1)  # by rows: every complete run at once
        full = complete if last else complete // size * size
        edges = [*range(0, full, size), full]
        chunks = [pending.iloc[starts[a] : starts[b]] for a, b in itertools.pairwise(edges)]
        for chunk in chunks:
            ids = chunk[self.id_columns].drop_duplicates().itertuples(index=False, name=None)
            names = set(ids)
            if again := names & self.done:
                key = sorted(again, key=str)[0]
                key = key[0] if len(key) == 1 else key
                raise ScatteredSeries(
                    f"{self.path}: series {key!r} has rows after other series' rows; reading "
                    "in chunks of series needs each series' rows together (sort the table by "
                    "series, or read it whole: chunk_series=null)"
                )
            self.done |= names
        rest = pending.iloc[starts[full] :]
        return [c.reset_index(drop=True) for c in chunks], rest, len(starts) - 1 - full
