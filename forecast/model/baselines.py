"""Reference forecasts scored by the same code as the model: a model is only as good as the
margin by which it beats these.

Every baseline maps scaled input windows ``x (batch, lookback, n_features)`` to forecasts
``(batch, horizon, n_targets)``, like ``LSTMNet``. The linear one is fitted on training windows
only, in closed form, so it needs no tuning and cannot see validation or test data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from forecast.data.windows import WindowDataset

Baseline = Callable[[Tensor], Tensor]


def repeat_last(horizon: int, target_index: Sequence[int]) -> Baseline:
    """The naive forecast: the last observed value, held for every step."""

    def forecast(x: Tensor) -> Tensor:
        return x[:, -1:, target_index].expand(-1, horizon, -1)

    return forecast


def seasonal_naive(horizon: int, target_index: Sequence[int], period: int) -> Baseline:
    """The last observed season, repeated: step ``h`` takes the value ``period`` steps before."""

    def forecast(x: Tensor) -> Tensor:
        lookback = x.shape[1]
        rows = lookback - period + torch.arange(horizon) % period
        return x[:, rows][..., target_index]

    return forecast


def reference_baselines(
    horizon: int, target_index: Sequence[int], lookback: int, season: int, linear: Baseline
) -> dict[str, Baseline]:
    """The baselines every model is scored against (and an ensemble may weigh), by name:
    naive, seasonal naive where a season fits in the lookback, and ``linear``."""
    baselines = {"naive": repeat_last(horizon, target_index)}
    if season <= lookback:
        baselines["seasonal_naive"] = seasonal_naive(horizon, target_index, season)
    baselines["linear"] = linear
    return baselines


class LinearBaseline:
    """One linear map from a lookback to the horizon, shared by all targets (as in NLinear).

    Inputs and outputs are taken relative to the window's last value, so the map learns
    shape, not level. Fitted by ridge least squares over every training window and target.
    """

    def __init__(self, weight: Tensor, target_index: Sequence[int]) -> None:
        self.weight = weight  # (lookback + 1, horizon): the last row is the bias
        self.target_index = list(target_index)

    @classmethod
    def fit(
        cls, train: WindowDataset, batch_size: int = 4096, ridge: float = 1e-3
    ) -> LinearBaseline:
        """Accumulate the normal equations batch by batch: memory stays O(lookback^2)."""
        lookback, horizon = train.lookback, train.horizon
        gram = torch.zeros(lookback + 1, lookback + 1, dtype=torch.float64)
        cross = torch.zeros(lookback + 1, horizon, dtype=torch.float64)
        for index in torch.arange(len(train)).split(batch_size):
            x, y, _, _ = train[index]
            targets = x[..., train.target_index]
            inputs = _design(targets).double()
            outputs = (y - targets[:, -1:]).transpose(1, 2).reshape(len(inputs), -1).double()
            gram += inputs.T @ inputs
            cross += inputs.T @ outputs
        train.shard.summed(gram, cross)  # under DDP, every rank's windows
        gram += ridge * gram.diagonal().mean() * torch.eye(lookback + 1, dtype=torch.float64)
        return cls(torch.linalg.solve(gram, cross).float(), train.target_index.tolist())

    def __call__(self, x: Tensor) -> Tensor:
        targets = x[..., self.target_index]
        # x.shape[0], not len(x): a traced graph (an exported ensemble) keeps it dynamic
        out = (_design(targets) @ self.weight).view(x.shape[0], len(self.target_index), -1)
        return out.transpose(1, 2) + targets[:, -1:]


def _design(x: Tensor) -> Tensor:
    """``(batch * n_targets, lookback + 1)``: each input less its last value, then a 1."""
    relative = (x - x[:, -1:]).transpose(1, 2).reshape(-1, x.shape[1])
    return torch.cat([relative, relative.new_ones(relative.shape[0], 1)], dim=1)
