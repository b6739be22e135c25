"""Error sums, from which every figure of an evaluation is computed: per horizon step and
target in scaled units and in the data's, and per window the scores of M4 (sMAPE, and MASE
against each series' own in-sample seasonal error), so that batching cannot change a figure
and a panel reads against published tables."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from forecast.errors import ForecastError

if TYPE_CHECKING:
    from forecast.data.datamodule import ForecastDataModule


class Units(NamedTuple):
    """What takes a batch of windows' scaled targets to the data's units, per window and
    target ``(batch, n_targets)``: the window's series' ``std`` and ``mean``, and ``scale``,
    that series' in-sample seasonal MAE in the data's units (M4's MASE denominator)."""

    std: Tensor
    mean: Tensor
    scale: Tensor


@dataclass
class Scores:
    """Squared and absolute errors summed per horizon step and target, over the targets that
    are observed (a value the data's rules made up is NaN in ``y`` and not scored), in scaled
    units and in the data's; and sMAPE and MASE summed over windows per target."""

    squared: Tensor  # (horizon, n_targets), float64
    absolute: Tensor
    counts: Tensor  # observed targets summed, (horizon, n_targets)
    squared_units: Tensor  # the same sums in the data's units
    absolute_units: Tensor
    smape: Tensor  # (n_targets,): each window's sMAPE, summed
    mase: Tensor  # each window's MAE over its series' in-sample seasonal MAE, summed
    windows: Tensor  # windows with an observed target, (n_targets,)

    @classmethod
    def empty(cls, horizon: int, n_targets: int) -> Scores:
        steps = [torch.zeros(horizon, n_targets, dtype=torch.float64) for _ in range(5)]
        return cls(*steps, *(torch.zeros(n_targets, dtype=torch.float64) for _ in range(3)))

    def update(self, forecast: Tensor, y: Tensor, units: Units | None = None) -> None:
        """Add a batch: ``forecast`` and ``y (batch, horizon, n_targets)``, scaled; ``units``
        takes them to the data's units (none: the scaled units are the data's)."""
        observed = torch.isfinite(y)
        error = torch.where(observed, forecast.double() - y.double(), 0.0)
        self.squared += error.square().sum(0)
        self.absolute += error.abs().sum(0)
        self.counts += observed.sum(0)
        if units is None:
            ones = torch.ones(len(y), y.shape[-1], dtype=torch.float64)
            units = Units(ones, torch.zeros_like(ones), ones)
        std, mean = (part.unsqueeze(1) for part in units[:2])  # (batch, 1, n_targets)
        error = error * std
        self.squared_units += error.square().sum(0)
        self.absolute_units += error.abs().sum(0)
        actual = torch.where(observed, y.double() * std + mean, 0.0)
        level = actual.abs() + (forecast.double() * std + mean).abs()
        # 0/0 (a forecast of exactly 0 for a 0): no error
        ratio = torch.where(level > 0, 200 * error.abs() / level, 0.0)
        steps = observed.sum(1)  # (batch, n_targets)
        seen = steps > 0
        self.smape += torch.where(seen, ratio.sum(1) / steps.clamp_min(1), 0.0).sum(0)
        mae = error.abs().sum(1) / steps.clamp_min(1)
        self.mase += torch.where(seen, mae / units.scale.clamp_min(1e-12), 0.0).sum(0)
        self.windows += seen.sum(0)

    def sums(self) -> list[Tensor]:
        """Every sum it holds, to be summed across DDP ranks: the scores of every window."""
        return [getattr(self, f.name) for f in fields(self)]

    def metrics(self, seasonal_mae: Tensor) -> dict[str, float]:
        counts = self.counts.sum(0)
        mse_by_target, mae_by_target = self.squared.sum(0) / counts, self.absolute.sum(0) / counts
        windows = self.windows.clamp_min(1)
        return {
            "mse": mse_by_target.mean().item(),
            "mae": mae_by_target.mean().item(),
            "rmse": mse_by_target.mean().sqrt().item(),
            "mae_orig": (self.absolute_units.sum(0) / counts).mean().item(),
            "rmse_orig": (self.squared_units.sum(0) / counts).mean().sqrt().item(),
            "mase": (mae_by_target / seasonal_mae).mean().item(),
            "smape": (self.smape / windows).mean().item(),
            "mase_series": (self.mase / windows).mean().item(),
        }

    def mse_by_step(self) -> Tensor:
        return (self.squared / self.counts).mean(1)


def seasonal_mae(datamodule: ForecastDataModule, season: int) -> Tensor:
    """Per target: mean |y_t - y_{t-season}| over the training rows of every series (the
    in-sample error of the seasonal naive forecast, MASE's denominator)."""
    values = datamodule.values[:, datamodule.spec.target_index].double()
    total = torch.zeros(values.shape[1] + 1, dtype=torch.float64)  # the sums, and the count
    for a, b in datamodule.segments["train"]:
        if b - a > season:
            total[:-1] += (values[a + season : b] - values[a : b - season]).abs().sum(0)
            total[-1] += b - a - season
    datamodule.shard.summed(total)  # under DDP, every rank's series
    if total[-1] == 0:
        raise ForecastError(f"no training series is longer than the season ({season} steps)")
    return (total[:-1] / total[-1]).clamp_min(1e-8)


def series_units(datamodule: ForecastDataModule, season: int) -> Units:
    """``Units`` of every series ``(n_series, n_targets)``: its targets' statistics, and its
    in-sample seasonal MAE over its training rows in the data's units (NaN for a series left
    out of training, or one not longer than the season: its windows are none or unscored)."""
    target = datamodule.spec.target_index
    std, mean = (torch.from_numpy(s[:, target]) for s in (datamodule.scalers.std,
                                                          datamodule.scalers.mean))  # fmt: skip
    values = datamodule.values[:, target].double()
    scale = torch.full_like(std, float("nan"))
    for k, (a, b) in zip(datamodule.kept_series, datamodule.segments["train"], strict=True):
        if b - a > season:
            scale[k] = (values[a + season : b] - values[a : b - season]).abs().mean(0)
    return Units(std, mean, scale * std)
