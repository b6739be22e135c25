"""Sliding windows as index arithmetic over one array, and the batches that gather them.

A window starting at row ``s`` is input rows ``[s, s + lookback)`` and target rows
``[s + lookback, s + lookback + horizon)``. ``Tensor.unfold`` exposes every such window as a
view of the scaled array, so the dataset holds O(rows) memory, never O(rows x lookback); a
batch is gathered from that view in one indexing operation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from forecast.data.options import DataOptions
from forecast.data.shards import WHOLE, Shard
from forecast.errors import ForecastError


def window_count(n_rows: int, lookback: int, horizon: int) -> int:
    return max(0, n_rows - lookback - horizon + 1)


class Batch(NamedTuple):
    """Windows of the data: what a model reads and what it must forecast. Without
    covariates, ``future`` and ``static`` have a last axis of 0."""

    x: torch.Tensor  # (batch, lookback, n_features): past inputs, scaled
    y: torch.Tensor  # (batch, horizon, n_targets); NaN: a made-up value, not scored
    future: torch.Tensor  # (batch, lookback + horizon, n_future): known in advance
    static: torch.Tensor  # (batch, n_static)


class WindowDataset(Dataset):
    """Windows inside row segments of ``values``; no window crosses a segment's end.

    ``values`` is ``(n_rows, n_features)`` and ``future`` ``(n_rows, n_future)``, row for row;
    ``targets (n_rows, n_targets)``, if given, are what ``y`` holds instead of the target
    columns of ``values`` (the same, NaN where a value is not to be scored);
    ``segments`` are ``(start, end)`` row ranges, one per series and split, and ``series``
    the row of ``static (n_series, n_static)`` of each (segment ``k`` is series ``k`` by
    default). Indexing with an int gives one window, unbatched; with a 1-D tensor of indices
    a ``Batch`` of them, gathered from views in one operation per array. ``shard``: the part
    of the table's series these windows are (under DDP, a rank's), whose sums are summed
    across ranks.
    """

    def __init__(
        self,
        values: torch.Tensor,
        segments: Sequence[tuple[int, int]],
        lookback: int,
        horizon: int,
        target_index: Sequence[int],
        future: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
        series: Sequence[int] | None = None,
        targets: torch.Tensor | None = None,
        shard: Shard = WHOLE,
    ) -> None:
        self.lookback, self.horizon, self.shard = lookback, horizon, shard
        self.target_index = torch.as_tensor(list(target_index))
        # (n_rows - lookback - horizon + 1, lookback + horizon, n_features), a view
        self.windows = values.unfold(0, lookback + horizon, 1).transpose(1, 2)
        # (n_rows, n_targets), NaN where a value is not to be scored: y comes from here
        self.target_windows = (
            None if targets is None else targets.unfold(0, lookback + horizon, 1).transpose(1, 2)
        )
        future = values.new_zeros(len(values), 0) if future is None else future
        self.future_windows = future.unfold(0, lookback + horizon, 1).transpose(1, 2)
        counts = [window_count(end - start, lookback, horizon) for start, end in segments]
        if min(counts, default=0) < 1:
            raise ValueError(f"every segment needs lookback + horizon rows; window counts {counts}")
        self.first_row = torch.as_tensor([start for start, _ in segments])
        self.ends = torch.as_tensor(np.cumsum(counts))  # window index where each segment ends
        self.series = torch.as_tensor(range(len(segments)) if series is None else list(series))
        n_series = int(self.series.max()) + 1
        self.static = values.new_zeros(n_series, 0) if static is None else static

    def __len__(self) -> int:
        return int(self.ends[-1])

    def _locate(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment of each window and its offset inside that segment."""
        segment = torch.searchsorted(self.ends, index, right=True)
        before = torch.where(segment > 0, self.ends[segment - 1], 0)
        return segment, index - before

    def starts(self, index: torch.Tensor) -> torch.Tensor:
        """First row of each window: segment start plus offset inside the segment."""
        segment, offset = self._locate(index)
        return self.first_row[segment] + offset

    def series_of(self, index: torch.Tensor) -> torch.Tensor:
        """The series (row of ``static``) of each window."""
        return self.series[self._locate(index)[0]]

    def strided(self, stride: int) -> torch.Tensor:
        """Indices of every ``stride``-th window of each segment, counting from its first."""
        if stride < 1:
            raise ForecastError(f"stride must be >= 1, got {stride}")
        index = torch.arange(len(self))
        return index if stride == 1 else index[self._locate(index)[1] % stride == 0]

    def __getitem__(self, index: int | torch.Tensor) -> Batch:
        index = torch.as_tensor(index)
        if index.ndim == 0 and not -len(self) <= int(index) < len(self):
            raise IndexError(f"window {int(index)} out of range for {len(self)} windows")
        segment, offset = self._locate(index % len(self))
        start = self.first_row[segment] + offset
        window = self.windows[start]
        if self.target_windows is None:
            y = window[..., self.lookback :, self.target_index]
        else:
            y = self.target_windows[start][..., self.lookback :, :]
        return Batch(
            x=window[..., : self.lookback, :],
            y=y,
            future=self.future_windows[start],
            static=self.static[self.series[segment]],
        )


# Below these counts every window is used, as on every shipped data set; above them an epoch
# would take hours on a laptop's cores (2,000 training windows/s on 2 cores: 10^6 windows are
# 8 minutes) and a validation pass minutes, at no gain in what the figures say.
EPOCH_WINDOWS = 1_000_000
EVAL_WINDOWS = 100_000


def budget(
    datasets: dict[str, WindowDataset], options: DataOptions, shard: Shard = WHOLE
) -> tuple[int | None, int, dict[str, int]]:
    """Training windows drawn per epoch (None: every window) and the stride of scored
    origins, from ``options.windows_per_epoch`` and ``options.eval_stride``; a key left null
    takes every window up to ``EPOCH_WINDOWS`` training windows and ``EVAL_WINDOWS`` in the
    larger scored split, else about that many (counted over every rank's ``shard``). The
    third value: what was derived, by key."""
    draws, stride, derived = options.windows_per_epoch, options.eval_stride, {}
    counts = torch.tensor([len(datasets[s]) for s in ("train", "val", "test")], dtype=torch.float64)
    train, val, test = (int(c) for c in shard.summed(counts)[0])
    if draws is None and train > EPOCH_WINDOWS:
        draws = derived["data.windows_per_epoch"] = EPOCH_WINDOWS
    if stride is None:
        stride = -(-max(val, test) // EVAL_WINDOWS)
        if stride > 1:
            derived["data.eval_stride"] = stride
    return draws, stride, derived


class ShardedBatches(Sampler[torch.Tensor]):
    """Index batches of ``windows`` (a count, or the window indices to use), split across DDP
    ranks.

    Where every rank holds the whole table (``shard`` whole: one series, or fewer series than
    ranks), training: rank ``r`` of ``w`` takes shuffled batches ``r, r + w, ...``, all ranks
    the same number (gradient all-reduce needs it), dropping at most ``w - 1`` batches of an
    epoch; the shuffle is seeded by seed and epoch, so ranks agree on it. With ``draws`` an
    epoch is that many windows drawn uniformly (with replacement: O(draws) memory, where a
    permutation of 10^8 windows is 800 MB), a new draw each epoch. Evaluation: rank ``r``
    takes the ``r``-th of ``w`` contiguous slices of the windows, so every window is scored
    exactly once (no padding, unlike DistributedSampler: distributed test scores are exact)
    and every rank has at least one batch.

    Where each rank holds its own series (``shard``), it shuffles its own windows (seeded by
    seed, epoch and rank) and takes as many batches as the rank with fewest has, or
    ``draws / w`` draws of its own; it scores every window it holds.
    """

    def __init__(
        self,
        windows: int | torch.Tensor,
        batch_size: int,
        shuffle: bool,
        draws: int | None = None,
        shard: Shard = WHOLE,
    ) -> None:
        # a count stands for the indices 0 .. count - 1, which are never built for it
        self.index = None if isinstance(windows, int) else windows
        self.n_windows = windows if isinstance(windows, int) else len(windows)
        self.batch_size, self.shuffle, self.draws = batch_size, shuffle, draws
        self.seed, self.epoch = torch.initial_seed(), 0
        self.own = shard.world > 1  # the windows are this rank's alone
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if distributed else 0
        self.world = dist.get_world_size() if distributed else 1
        self.steps = None  # with own windows: the batches every rank takes
        if self.own and shuffle:
            if draws is not None:
                self.draws = -(-draws // self.world)
            else:
                mine = torch.tensor([float(-(-self.n_windows // batch_size))], dtype=torch.float64)
                self.steps = int(shard.extreme(mine, largest=False))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[torch.Tensor]:
        n = self.n_windows
        if not self.shuffle:
            world, rank = (1, 0) if self.own else (self.world, self.rank)  # own: all scored
            start, end = (n * k // world for k in (rank, rank + 1))
            return list(self._windows(torch.arange(start, end)).split(self.batch_size))
        seed = self.seed + self.epoch + (104_729 * self.rank if self.own else 0)
        generator = torch.Generator().manual_seed(seed)
        if self.draws is None:
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.randint(n, (self.draws,), generator=generator)
        batches = list(self._windows(order).split(self.batch_size))
        if self.own:
            return batches[: self.steps]
        return batches[self.rank :: self.world][: len(batches) // self.world]

    def _windows(self, positions: torch.Tensor) -> torch.Tensor:
        return positions if self.index is None else self.index[positions]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def batch_loader(
    dataset: WindowDataset,
    batch_size: int,
    shuffle: bool,
    draws: int | None = None,
    stride: int = 1,
) -> DataLoader:
    """Hand whole index batches to the dataset so a batch is one gather, not ``batch`` copies.

    Every window is used (every ``stride``-th origin of each series), or with ``draws`` that
    many drawn each epoch: the last, smaller batch is kept (dropping it skews test scores).
    """
    windows = len(dataset) if stride == 1 else dataset.strided(stride)
    sampler = ShardedBatches(windows, batch_size, shuffle, draws, dataset.shard)
    return DataLoader(dataset, sampler=sampler, batch_size=None)
