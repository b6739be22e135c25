"""Standardization with statistics from the training rows only: ``Scaler`` per column on
arrays (files, tables), ``SeriesScaler`` per series and column (``data.scaling=series``), and
``Standardize``, the same map inside a torch graph (a count link, a count loss, an exported
model): the one place values are scaled and unscaled."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from forecast.data.shards import WHOLE, Shard
from forecast.errors import ForecastError


@dataclass(frozen=True)
class Scaler:
    """Per-column standardization; statistics come from training rows only (ddof=0)."""

    mean: np.ndarray  # (n_features,)
    std: np.ndarray  # (n_features,)

    @classmethod
    def fit(
        cls,
        values: np.ndarray | Sequence[np.ndarray],
        constant_std: np.ndarray | float = 1.0,
        shard: Shard = WHOLE,
    ) -> Scaler:
        """In float64 over chunks of rows of ``values``, an array or its parts (each series'
        training rows, views that are never concatenated): exact whatever the values' dtype,
        and no float64 copy of the training split (``values.std`` would make one). A
        constant column would divide by zero: it takes ``constant_std`` (centred, unscaled by
        default). Under DDP the statistics are every rank's rows'."""
        parts = [values] if isinstance(values, np.ndarray) else values
        moments = Moments.empty(parts[0].shape[1:] if parts else ())
        for part in parts:
            moments.add(part)
        return moments.across(shard).scaler(constant_std)

    def transform(
        self,
        values: np.ndarray,
        dtype: type = np.float64,
        copy: bool = True,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Scaled ``values`` in ``dtype``: a copy, or with ``copy=False`` and a matching dtype
        ``values`` itself, scaled in place (no second copy of a large table), or written into
        ``out`` (columns of a larger table). The subtraction runs in the wider of the two
        dtypes, chunk by chunk: ``1e8 + 3 sin(t)`` cast to float32 first would lose its
        variation entirely."""
        if out is None and (copy or values.dtype != dtype or not values.flags.writeable):
            out = np.empty(values.shape, dtype)  # (read-only: pandas 3 hands out views)
        elif out is None:
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

    def module(self) -> Standardize:
        """This scaler as a torch module, in float32."""
        return Standardize(torch.tensor(self.mean).float(), torch.tensor(self.std).float())

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, stats: dict[str, list[float]]) -> Scaler:
        return cls(mean=np.asarray(stats["mean"]), std=np.asarray(stats["std"]))


@dataclass
class Moments:
    """The row count, mean and sum of squared deviations of columns, added a part at a time
    and merged (Chan, Golub and LeVeque): the statistics of a table read a chunk at a time,
    or of every rank's rows, in float64 without a sum of squared raw values (which cancels
    catastrophically for ``1e8 + 3 sin(t)``)."""

    count: float
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, width: tuple[int, ...] | int) -> Moments:
        return cls(0.0, np.zeros(width), np.zeros(width))

    def add(self, values: np.ndarray, chunk_rows: int = 1 << 20) -> Moments:
        """``values (rows, ...)`` added, a chunk of rows at a time (no float64 copy of
        them), each chunk's deviations taken from its own mean."""
        for i in range(0, len(values), chunk_rows):
            part = values[i : i + chunk_rows]
            mean = part.sum(axis=0, dtype=np.float64) / len(part)
            self.merge(Moments(float(len(part)), mean, np.square(part - mean).sum(axis=0)))
        return self

    def merge(self, other: Moments) -> Moments:
        """``other``'s rows added to these."""
        count = self.count + other.count
        if other.count:
            delta = other.mean - self.mean
            self.m2 = self.m2 + other.m2 + np.square(delta) * self.count * other.count / count
            self.mean = self.mean + delta * other.count / count
            self.count = count
        return self

    def across(self, shard: Shard) -> Moments:
        """Every rank's rows together, merged in rank order (the same on every rank)."""
        if shard.world == 1:
            return self
        every = shard.gathered((self.count, self.mean, self.m2))
        return functools.reduce(Moments.merge, [Moments(*each) for each in every])

    def scaler(self, constant_std: np.ndarray | float = 1.0) -> Scaler:
        """Standardization by these statistics (ddof=0); a constant column (std 0) takes
        ``constant_std``, a column without rows a NaN mean."""
        mean = self.mean if self.count else np.full_like(self.mean, np.nan)
        std = np.sqrt(self.m2 / self.count) if self.count else np.zeros_like(self.m2)
        return Scaler(mean=mean, std=np.where(std > 0, std, constant_std))


def plain_key(key: Any) -> Any:
    """A series id as a model file holds it: numpy scalars as Python's, several id columns'
    tuple as a list, anything else (a date) as its text."""
    if isinstance(key, tuple | list):
        return [plain_key(k) for k in key]
    key = key.item() if isinstance(key, np.generic) else key
    return key if key is None or isinstance(key, str | int | float | bool) else str(key)


@dataclass(frozen=True)
class SeriesScaler:
    """One ``Scaler`` per series, from that series' own training rows: in a panel whose
    series differ in level by orders of magnitude, one scaler per column leaves the small
    series near-constant in scaled units, and they weigh nothing in the loss. A series with
    a constant column over its training rows takes the whole column's spread there."""

    keys: list  # each series' id, as the data's rows name it
    mean: np.ndarray  # (n_series, n_features)
    std: np.ndarray  # (n_series, n_features)

    @classmethod
    def stack(cls, keys: list, scalers: Sequence[Scaler]) -> SeriesScaler:
        """One table of ``scalers``, the ``k``-th that of series ``keys[k]``."""
        mean, std = (np.stack([getattr(s, part) for s in scalers]) for part in ("mean", "std"))
        return cls(list(keys), mean, std)

    def check(self, n_features: int) -> None:
        """Statistics a model file may hold: one finite mean and positive std per series and
        column."""
        shape = (len(self.keys), n_features)
        if self.mean.shape != shape or self.std.shape != shape:
            raise ForecastError(
                f"series_scaler holds {self.mean.shape} means and {self.std.shape} standard "
                f"deviations for {shape[0]} series of {shape[1]} columns"
            )
        if not (np.isfinite(self.mean).all() and (self.std > 0).all()):
            raise ForecastError("series_scaler statistics are not all finite and positive")

    @cached_property
    def _index(self) -> dict[Any, int]:
        return {_hashable(key): k for k, key in enumerate(self.keys)}

    def of(self, k: int) -> Scaler:
        """Series ``k``'s statistics."""
        return Scaler(mean=self.mean[k], std=self.std[k])

    def part(self, series: slice) -> SeriesScaler:
        """The statistics of ``series`` (a chunk's) alone."""
        return SeriesScaler(self.keys[series], self.mean[series], self.std[series])

    def find(self, key: Any) -> Scaler | None:
        """The statistics of the series named ``key``, None for a series it never saw."""
        k = self._index.get(_hashable(key))
        return None if k is None else self.of(k)

    def transform(
        self,
        values: np.ndarray,
        bounds: Sequence[tuple[int, int]],
        by_series: bool = True,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``values (n_rows, n_features)``, the rows ``bounds[k]`` of series ``k`` scaled by
        its own statistics, in float32: into ``out`` (rows of a larger table), else in
        place where ``values`` are writeable float32 already (without ``by_series``, every
        series has the first's: one pass over the table)."""
        if out is None:
            writeable = values.dtype == np.float32 and values.flags.writeable
            out = values if writeable else np.empty(values.shape, np.float32)
        if not by_series:
            return self.of(0).transform(values, np.float32, out=out)
        for k, (a, b) in enumerate(bounds):
            self.of(k).transform(values[a:b], np.float32, out=out[a:b])
        return out

    def every_rank(self, shard: Shard) -> SeriesScaler:
        """The statistics of every rank's series (these, this rank's), in the table's order:
        what a model file keeps."""
        if shard.world == 1:
            return self
        parts = shard.gathered([(k, self.mean[i], self.std[i]) for i, k in enumerate(self.keys)])
        keys, mean, std = zip(*shard.interleaved(parts), strict=True)
        return SeriesScaler(list(keys), np.stack(mean), np.stack(std))

    def to_dict(self) -> dict[str, list]:
        keys = [plain_key(key) for key in self.keys]
        return {"keys": keys, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, stats: dict[str, list]) -> SeriesScaler:
        return cls(
            keys=[tuple(k) if isinstance(k, list) else k for k in stats["keys"]],
            mean=np.asarray(stats["mean"], dtype=np.float64),
            std=np.asarray(stats["std"], dtype=np.float64),
        )


def refuse_overflow(table: torch.Tensor, columns: list[str], where: str) -> None:
    """Values finite in the file but past float32's range once scaled (1e40) would train as
    infinities: refused, naming the column."""
    rows = 1 << 20  # a block at a time: a mask of the whole table would be a byte a value
    blocks = (~torch.isfinite(table[i : i + rows]) for i in range(0, len(table), rows))
    bad = next((block for block in blocks if block.any()), None)
    if bad is not None:
        column = int(torch.nonzero(bad)[0, -1])
        raise ForecastError(
            f"{where}: column {columns[column]!r} holds values too large for the model once "
            "scaled (past float32's range); check the file for values of extreme size"
        )


def _hashable(key: Any) -> Any:
    """A key that finds a series whether its id came as a list (JSON) or a tuple (a table),
    as numpy's or Python's number."""
    return tuple(_hashable(k) for k in key) if isinstance(key, tuple | list) else plain_key(key)


class Standardize(nn.Module):
    """``(values - mean) / std`` over the last axis, and back. The buffers are not saved in a
    state dict: a model file keeps them in its data spec."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean, persistent=False)  # (n_columns,)
        self.register_buffer("std", std, persistent=False)

    def forward(self, values: Tensor) -> Tensor:
        return (values - self.mean) / self.std

    def inverse(self, values: Tensor) -> Tensor:
        return values * self.std + self.mean
