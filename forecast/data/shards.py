"""A process's share of the series under DDP, and the sums that make its figures exact.

Started by torchrun (``forecast-train trainer=ddp`` runs it), every rank exists before the
data is read, so rank ``r`` of ``w`` reads only the series whose order of first appearance
``g`` has ``g % w == r``: memory per rank is about ``1/w`` of one process's. Every statistic
(scalers, the linear baseline, the combination's weights, the test scores) is a sum over
windows or rows, so it is summed across ranks (``Shard.summed``) and comes out as one
process computes it, not as an average of averages. ``Shard()`` is the whole table, whose
sums are already whole.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import distributed as dist

from forecast.data.options import DataOptions, as_list
from forecast.data.parquet import column_batches, parquet_dataset
from forecast.data.reading import file_rows, read_table, table_kind
from forecast.data.rules import RowNames
from forecast.data.series import series_codes
from forecast.errors import ForecastError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world`` holds the series ``g`` (in order of first appearance) with
    ``g % world == rank``."""

    rank: int = 0
    world: int = 1

    @classmethod
    def of_process(cls) -> Shard:
        """This process's shard: its rank in the process group, the whole table without one."""
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        return cls(dist.get_rank(), dist.get_world_size())

    def part_of(self, source: str) -> str:
        """How messages name this rank's series of ``source``: all of a rank's may be too
        short where the table's are not."""
        if self.world == 1:
            return source
        return f"{source} (the series of rank {self.rank} of {self.world})"

    def summed(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each tensor summed over every rank (float64 on the CPU, in place)."""
        if self.world > 1:
            with self._together():
                for tensor in tensors:
                    dist.all_reduce(tensor, dist.ReduceOp.SUM, group=_cpu_group())
        return tensors

    def extreme(self, tensor: torch.Tensor, largest: bool) -> torch.Tensor:
        """The element-wise maximum (``largest``) or minimum over every rank."""
        if self.world > 1:
            op = dist.ReduceOp.MAX if largest else dist.ReduceOp.MIN
            with self._together():
                dist.all_reduce(tensor, op, group=_cpu_group())
        return tensor

    def gathered(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order (small Python objects: ids, lengths)."""
        if self.world == 1:
            return [value]
        out: list[Any] = [None] * self.world
        with self._together():
            dist.all_gather_object(out, value, group=_cpu_group())
        return out

    @contextlib.contextmanager
    def _together(self) -> Iterator[None]:
        """A rank whose series hold an error stops with its message; the others, waiting for
        it in a sum, stop with one line rather than gloo's traceback."""
        try:
            yield
        except RuntimeError:
            raise ForecastError(
                f"rank {self.rank} of {self.world}: another rank stopped (its error says why)"
            ) from None

    def interleaved(self, parts: list[list]) -> list:
        """Items ``gathered`` from every rank back in the table's order: rank ``r``'s ``j``-th
        series is the table's ``r + j * world``-th."""
        out = []
        for j in range(max(map(len, parts))):
            out += [part[j] for part in parts if j < len(part)]
        return out


WHOLE = Shard()  # the whole table, in one process


def _cpu_group() -> Any:
    """Sums of statistics are CPU tensors: a gloo group beside NCCL's, the default group where
    that is gloo already."""
    return None if dist.get_backend() == "gloo" else _gloo_beside(dist.group.WORLD)


@cache
def _gloo_beside(world: Any) -> Any:
    """One gloo group per process group joined (a run may join, leave and join again)."""
    return dist.new_group(backend="gloo")


def read_share(path: str, options: DataOptions) -> tuple[pd.DataFrame, RowNames, Shard]:
    """This process's series of the table (``Shard.of_process``), how messages name its rows
    (by their rows in the file), and the shard read: the whole table outside DDP, without a
    series id, or with fewer series than ranks (then every rank holds all of it and splits
    its batches instead, ``forecast.data.windows.ShardedBatches``). A Parquet data set is
    decoded only where the rows are the rank's; a CSV file is read whole, then cut."""
    shard, ids, whole = Shard.of_process(), as_list(options.series_id) or [], Path(path)
    if shard.world == 1 or not ids or not (whole.is_dir() or whole.is_file()):
        frame = read_table(path, options)  # a missing file is refused here, by name
        return frame, file_rows(path, options.header), WHOLE
    names = file_rows(path, options.header)
    if whole.is_dir() or table_kind(whole)[0] == "parquet":
        dataset = parquet_dataset(whole)
        if not set(ids) <= set(dataset.schema.names):  # prepare_series names the column
            return read_table(path, options), names, WHOLE
        keep, count = series_rows(column_batches(dataset, ids), ids, shard)
        pa.default_memory_pool().release_unused()  # the id pages Arrow would keep cached
        if count < shard.world:
            return read_table(path, options), names, WHOLE
        frame = read_table(path, options, keep)
    else:
        frame = read_table(path, options)
        if not set(ids) <= set(frame.columns):
            return frame, names, WHOLE
        keep, count = series_rows([frame[ids]], ids, shard)
        if count < shard.world:
            return frame, names, WHOLE
        frame = frame[keep].reset_index(drop=True)
    mine = len(range(shard.rank, count, shard.world))
    log.info("rank %d of %d: %d of the %d series", shard.rank, shard.world, mine, count)
    return frame, KeptRows(names=names, kept=np.packbits(keep), rows=len(keep)), shard


def series_rows(batches: Any, id_columns: list[str], shard: Shard) -> tuple[np.ndarray, int]:
    """Which rows of a table read as ``batches`` (frames of its id columns, in order) are
    ``shard``'s, a boolean per row, and how many series the table holds."""
    known = pd.Index([], tupleize_cols=False)
    masks = []
    for frame in batches:
        _, firsts, codes = np.unique(
            series_codes(frame, id_columns), return_index=True, return_inverse=True
        )  # codes: 0 .. the batch's series - 1
        if len(id_columns) == 1:
            keys = pd.Index(frame[id_columns[0]].to_numpy()[firsts])
        else:
            rows = frame[id_columns].iloc[firsts].itertuples(index=False, name=None)
            keys = pd.Index(list(rows), tupleize_cols=False)
        new = known.get_indexer(keys) < 0
        if new.any():  # in order of first appearance in this batch
            known = known.append(keys[new][np.argsort(firsts[new], kind="stable")])
        order = known.get_indexer(keys)  # each of the batch's series' order in the table
        masks.append((order % shard.world == shard.rank)[codes])
    return (np.concatenate(masks) if masks else np.zeros(0, bool)), len(known)


@dataclass(frozen=True)
class KeptRows(RowNames):
    """Names the rows of a shard as ``names`` names their rows in the file: ``kept``, a bit
    per row of the file's ``rows`` (np.packbits), is 1 for a row of the shard. Positions are
    counted only for a message: as an array they would take 8 bytes a row of the shard."""

    names: RowNames = RowNames()
    kept: np.ndarray | None = None
    rows: int = 0

    def __call__(self, row: int) -> str:
        positions = np.flatnonzero(np.unpackbits(self.kept, count=self.rows))
        return self.names(int(positions[row]))
