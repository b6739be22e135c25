"""Per-column standardization with statistics from the training rows only: ``Scaler`` on
arrays (files, tables) and ``Standardize``, the same map inside a torch graph (a count link,
a count loss, an exported model): the one place values are scaled and unscaled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


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

    def module(self) -> Standardize:
        """This scaler as a torch module, in float32."""
        return Standardize(torch.tensor(self.mean).float(), torch.tensor(self.std).float())

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, stats: dict[str, list[float]]) -> Scaler:
        return cls(mean=np.asarray(stats["mean"]), std=np.asarray(stats["std"]))


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
