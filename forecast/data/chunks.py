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
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from forecast.data.bounds import check_size
from forecast.data.covariates import covariate_columns
from forecast.data.options import DataOptions, as_list
from forecast.data.parquet import (
    Unstreamable,
    parquet_dataset,
    row_chunks,
    series_chunks,
    series_count,
)
from forecast.data.reading import file_rows, table_columns, table_kind
from forecast.data.rules import RowNames
from forecast.data.series import SeriesFrame, prepare_series, series_codes
from forecast.data.shards import WHOLE, Shard, read_share

if TYPE_CHECKING:
    import pyarrow.dataset as ds

log = logging.getLogger(__name__)

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
    continues: bool = False  # its first series goes on from the last chunk's (no series ids)

    def name(self, k: int, options: DataOptions, source: str) -> str:
        """How messages name the chunk's series ``k``."""
        return series_name(self.series.series_ids[k], options, source)


def series_name(key: object, options: DataOptions, source: str) -> str:
    """How messages name the series ``key`` of ``source``: the file, for one without ids."""
    return f"series {key!r}" if options.series_id else source


@dataclass(frozen=True)
class ChunkRows(RowNames):
    """Names a chunk's row ``r`` as ``names`` names the file's row ``offset + r``, or, for a
    DDP rank's rows of the chunk, ``offset + picked[r]``."""

    names: RowNames = RowNames()
    offset: int = 0
    picked: np.ndarray | None = None

    def __call__(self, row: int) -> str:
        return self.names(int(self.file_rows(np.array([row]))[0]))

    def file_rows(self, rows: np.ndarray | None, count: int = 0) -> np.ndarray | None:
        """The file's row of each chunk row in ``rows`` (None: the ``count`` first; None
        back where they are the file's rows themselves)."""
        if rows is None and self.picked is None and self.offset == 0:
            return None
        rows = np.arange(count) if rows is None else rows
        return self.offset + (rows if self.picked is None else self.picked[rows])


class TableChunks:
    """The chunks of the table at ``path``, read as ``options`` say, in the file's order of
    series; iterated once per reading. ``streamed``: read from the file on each reading,
    else one chunk held. Under DDP, ``shard`` is the rank's part of the series, which alone
    it reads (or the whole table, with fewer series than ranks)."""

    def __init__(self, path: str, options: DataOptions) -> None:
        self.path, self.options = path, options
        self.shard: Shard = WHOLE
        self._dataset = streamable(Path(path), options)  # opened once, read on each reading
        self.streamed = self._dataset is not None
        if self._dataset is not None:  # refused before a column is decoded
            width = max(len(self._dataset.schema.names), 1)
            check_size(Path(path), options, self._dataset.count_rows(), width)
            self._names = file_rows(path)
        self._whole: Chunk | None = None
        self._shared: Shard | None = None

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

    def _share(self, dataset: ds.Dataset, ids: list[str]) -> Shard:
        """This process's part of the series (``Shard.of_process``), counted from the runs
        of the id column: the whole table outside DDP, without ids, or with fewer series than
        ranks (each rank then splits the batches instead)."""
        shard = Shard.of_process()
        if shard.world == 1 or not ids:
            return WHOLE
        count = series_count(dataset, ids)
        if count < shard.world:
            return WHOLE
        mine = len(range(shard.rank, count, shard.world))
        log.info("rank %d of %d: %d of the %d series", shard.rank, shard.world, mine, count)
        return shard

    def _streamed(self) -> Iterator[Chunk]:
        path, options, dataset = Path(self.path), self.options, self._dataset
        columns, names, ids = dataset.schema.names, self._names, as_list(options.series_id) or []
        if self._shared is None:  # the id column read once, not on every reading
            self._shared = self._share(dataset, ids)
        shard = self.shard = self._shared
        offset = first = first_series = seen = 0
        frames = (series_chunks(path, columns, ids, None, CHUNK_ROWS) if ids
                  else row_chunks(dataset, columns, CHUNK_ROWS))  # fmt: skip
        for frame in frames:
            rows = ChunkRows(names=names, offset=offset)
            offset += len(frame)
            if shard.world > 1:  # the rank's series: the table's g-th with g % world == rank
                order = seen - 1 + np.cumsum(np.r_[True, np.diff(series_codes(frame, ids)) != 0])
                seen = int(order[-1]) + 1
                picked = np.flatnonzero(order % shard.world == shard.rank)
                if not len(picked):
                    continue
                frame = frame.iloc[picked].reset_index(drop=True)
                rows = replace(rows, picked=picked)
            if not ids:  # one series, in chunks of rows: a part, checked at the first's step
                chunk = one_series_part(frame, options, self.path, rows, first)
                options = replace(options, freq=chunk.series.freq)
            else:
                chunk = prepared(frame, options, self.path, rows, first, first_series)
                first_series += len(chunk.series.bounds)
            first += len(chunk.series.values)
            yield chunk
            del chunk, frame
            released()


def streamable(path: Path, options: DataOptions) -> ds.Dataset | None:
    """The data set, where the table can be read in chunks: a Parquet file or folder with
    series ids and rows, or without ids (one series, in chunks of rows) with timestamps and
    more rows than a chunk; None where it is read whole."""
    if not options.header or options.columns is not None:  # refused by read_table, by name
        return None
    if not (path.is_dir() or (path.is_file() and table_kind(path)[0] == "parquet")):
        return None
    dataset = parquet_dataset(path)
    ids = as_list(options.series_id) or []
    if not ids:
        one = options.timestamp is not None and options.scaling != "series"
        return dataset if one and dataset.count_rows() > CHUNK_ROWS else None
    found = set(ids) <= set(dataset.schema.names) and dataset.count_rows() > 0
    return dataset if found else None


def one_series_part(
    frame: pd.DataFrame, options: DataOptions, source: str, names: ChunkRows, first: int
) -> Chunk:
    """Rows of the one series of a table without ids: only where no rule changed them (a
    duplicate merged, a gap or a missing value filled would need the rows around them in
    the chunks before and after) and steps are timestamps, not numbers, read whole else."""
    chunk = prepared(frame, options, source, names, first, 0, continues=first > 0)
    series = chunk.series
    if series.merged or series.inserted or series.filled or series.integer_time:
        raise Unstreamable(f"{source}: the data's rules change rows; read whole")
    return chunk


def prepared(
    frame: pd.DataFrame,
    options: DataOptions,
    source: str,
    names: RowNames,
    first: int,
    first_series: int,
    continues: bool = False,
) -> Chunk:
    """``frame`` (rows of the file ``names`` names) checked, stacked and its covariates read."""
    covariates = options.side_columns
    series = prepare_series(
        frame, options, source=source, dtype=None, exclude=covariates, names=names
    )  # fmt: skip
    rows = (
        names.file_rows(series.rows, len(series.values))
        if isinstance(names, ChunkRows)
        else series.rows
    )
    chunk = Chunk(series, {}, rows, first, first_series, continues)
    raw = table_columns(frame, covariates, source, series.rows)
    chunk.raw.update(
        covariate_columns(raw, options, series.bounds, lambda k: chunk.name(k, options, source))
    )
    return chunk


def released() -> None:
    """Memory freed by a chunk given back to the system (Arrow's pool, and glibc's heap,
    which keeps freed blocks and would hold a chunk's worth of each reading beside the
    arrays)."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
