"""The table as chunks of whole series, each checked by the data's rules and stacked.

Setup reads the chunks three times (the layout of the series, the training statistics, the
scaled arrays), so a Parquet data set sorted by series is never decoded whole: the float32
arrays the windows view are the only memory the size of the table. Every other table (a
CSV file, a Parquet file whose series interleave, a DDP rank's share, one series without
ids) is a single chunk, read and checked once and handed out on every reading.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from forecast.data.bounds import check_size
from forecast.data.covariates import covariate_columns
from forecast.data.options import DataOptions, as_list
from forecast.data.parquet import parquet_dataset, series_chunks
from forecast.data.reading import file_rows, table_columns, table_kind
from forecast.data.rules import RowNames
from forecast.data.series import SeriesFrame, prepare_series
from forecast.data.shards import WHOLE, Shard, read_share

# Rows read before the whole series among them are cut off as a chunk: a few MB of a
# panel's columns decoded and checked at a time, against a table of 10^8 rows.
CHUNK_ROWS = 1 << 18


@dataclass(frozen=True)
class Chunk:
    """Whole series of the table, checked and stacked (``series.bounds`` count from the
    chunk's first row)."""

    series: SeriesFrame
    raw: dict[str, np.ndarray]  # each covariate's values, stacked; future ones filled
    rows: np.ndarray | None  # the file's row of each stacked row (None: the same row)
    first: int  # the stacked table's row of the chunk's first row
    first_series: int  # the table's position of its first series

    def name(self, k: int, options: DataOptions, source: str) -> str:
        """How messages name the chunk's series ``k``."""
        return f"series {self.series.series_ids[k]!r}" if options.series_id else source


@dataclass(frozen=True)
class ShiftedRows(RowNames):
    """Names a chunk's row ``r`` as ``names`` names the file's row ``r + offset``."""

    names: RowNames = RowNames()
    offset: int = 0

    def __call__(self, row: int) -> str:
        return self.names(row + self.offset)


class TableChunks:
    """The chunks of the table at ``path``, read as ``options`` say, in the file's order of
    series; iterated once per reading. ``streamed``: read from the file on each reading,
    else one chunk held (``shard``, under DDP, the rank's series)."""

    def __init__(self, path: str, options: DataOptions) -> None:
        self.path, self.options = path, options
        self.shard: Shard = WHOLE
        self.streamed = streamable(Path(path), options)
        self._whole: Chunk | None = None

    def read_whole(self) -> None:
        """From now on one chunk of the whole table (a file whose series interleave)."""
        self.streamed = False

    def __iter__(self) -> Iterator[Chunk]:
        if self.streamed:
            yield from self._streamed()
            return
        if self._whole is None:
            frame, names, self.shard = read_share(self.path, self.options)
            self._whole = prepared(frame, self.options, self.path, names, 0, 0)
        yield self._whole

    def release(self) -> None:
        """Drop the chunk held (setup is done with it)."""
        self._whole = None

    def _streamed(self) -> Iterator[Chunk]:
        path, options = Path(self.path), self.options
        dataset = parquet_dataset(path)
        columns = dataset.schema.names
        check_size(path, options, dataset.count_rows(), max(len(columns), 1))
        names, ids = file_rows(path), as_list(options.series_id) or []
        offset = first = first_series = 0
        for frame in series_chunks(path, columns, ids, None, CHUNK_ROWS):
            shifted = ShiftedRows(names=names, offset=offset)
            chunk = prepared(frame, options, self.path, shifted, first, first_series, offset)
            offset += len(frame)
            first += len(chunk.series.values)
            first_series += len(chunk.series.bounds)
            yield chunk
            del chunk, frame
            released()


def streamable(path: Path, options: DataOptions) -> bool:
    """Whether the table can be read in chunks of whole series: a Parquet data set (a file
    or a folder) with series ids and rows, read by one process (a DDP rank reads its share
    whole: ``shards.read_share``)."""
    if not options.series_id or Shard.of_process().world > 1:
        return False
    if not options.header or options.columns is not None:  # refused by read_table, by name
        return False
    if not (path.is_dir() or (path.is_file() and table_kind(path)[0] == "parquet")):
        return False
    dataset = parquet_dataset(path)
    ids = as_list(options.series_id) or []
    return set(ids) <= set(dataset.schema.names) and dataset.count_rows() > 0


def prepared(
    frame: pd.DataFrame,
    options: DataOptions,
    source: str,
    names: RowNames,
    first: int,
    first_series: int,
    offset: int = 0,
) -> Chunk:
    """``frame`` (rows ``offset`` on of the file) checked, stacked and its covariates read."""
    covariates = options.side_columns
    series = prepare_series(
        frame, options, source=source, dtype=None, exclude=covariates, names=names
    )  # fmt: skip
    chunk = Chunk(series, {}, shifted(series.rows, offset, len(series.values)), first,
                  first_series)  # fmt: skip
    raw = table_columns(frame, covariates, source, series.rows)
    chunk.raw.update(
        covariate_columns(raw, options, series.bounds, lambda k: chunk.name(k, options, source))
    )
    return chunk


def shifted(rows: np.ndarray | None, offset: int, count: int) -> np.ndarray | None:
    """The file's row of each of ``count`` stacked rows of a chunk starting at ``offset``."""
    if rows is None:
        return None if offset == 0 else np.arange(offset, offset + count)
    return rows + offset


def released() -> None:
    """Memory freed by a chunk given back to the system (Arrow's pool, and glibc's heap,
    which keeps freed blocks and would hold a chunk's worth of each reading beside the
    arrays)."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
