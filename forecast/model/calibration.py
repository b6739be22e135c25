"""Quantiles calibrated on windows the model did not train on (``conformal=true``): split
conformal prediction, level by level. For each level ``q``, horizon step and target, the
offset is the ``q``-quantile of ``y`` minus the forecast's ``q``-quantile over the validation
windows (over every step of the horizon where a step has too few windows); added to the
forecast, the level's share of targets below it there is ``q``. It
widens an interval that was too narrow and narrows one that was too wide (quantile heads,
distributions and ensembles alike), in the scaled space the network forecasts in.

``residual_quantiles`` is the same computation for any forecast, which gives a point
forecaster (a baseline) an interval from its own errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from forecast.data.windows import Batch, WindowDataset
from forecast.model.losses import Forecast

# Scaled units within which a target counts as on a bound: whole counts and a negative
# binomial's whole-count quantile, equal in the data's units, differ by float32 rounding here
TIE = 1e-5
# Errors expected beyond a bound below which a horizon step's offset is the whole horizon's:
# 8 validation windows would set a 0.1 bound by the smallest of 8 errors, far too wide
POOL_BELOW = 10


class Calibration(nn.Module):
    """Offsets ``(horizon, n_targets, len(levels))`` added to the quantiles at ``levels``;
    a level asked for that was not calibrated is left as the model gives it."""

    def __init__(self, levels: Sequence[float], offsets: Tensor) -> None:
        super().__init__()
        self.levels = [float(q) for q in levels]
        self.register_buffer("offsets", offsets.float())

    def forward(self, quantiles: Tensor, levels: Sequence[float]) -> Tensor:
        """``quantiles (..., horizon, n_targets, len(levels))`` moved, then sorted so that
        no two levels cross."""
        known = [k for k, q in enumerate(levels) if q in self.levels]
        if not known:
            return quantiles
        shift = torch.zeros(quantiles.shape[-3:], dtype=quantiles.dtype, device=quantiles.device)
        for k in known:
            shift[..., k] = self.offsets[..., self.levels.index(levels[k])]
        return (quantiles + shift).sort(dim=-1).values


def calibrated(
    calibration: Calibration | None, forecast: Forecast, levels: Sequence[float]
) -> Forecast:
    """``forecast`` (quantiles at ``levels``) with ``calibration``'s offsets, if any."""
    if calibration is None or not levels:
        return forecast
    return forecast._replace(quantiles=calibration(forecast.quantiles, levels))


@torch.no_grad()
def residual_quantiles(
    dataset: WindowDataset,
    forecast: Callable[[Batch], Tensor],
    levels: Sequence[float],
    windows: int = 20_000,
) -> Tensor:
    """``(horizon, n_targets, n_levels)``: level ``k``'s quantile of ``y`` minus
    ``forecast``'s ``k``-th value (``(batch, horizon, n_targets, n_levels)``, or a point
    ``(batch, horizon, n_targets)`` for every level) over about ``windows`` of ``dataset``'s
    windows evenly spread (under DDP, the ranks' together), observed targets only: per
    horizon step where a step has ``POOL_BELOW`` errors expected beyond the level (100 for
    0.1, 400 for 0.025), else over the whole horizon's."""
    shard, targets = dataset.shard, len(dataset.target_index)
    width = dataset.horizon * targets * len(levels)
    windows = min(windows, (1 << 24) // width)  # what torch.quantile takes
    step = max(1, len(dataset) * shard.world // max(windows, 1))
    errors = []
    for index in dataset.strided(1)[::step].split(4096):
        batch = dataset[index]
        predicted = forecast(batch)
        if predicted.dim() == 3:
            predicted = predicted.unsqueeze(-1).expand(*predicted.shape, len(levels))
        errors.append((batch.y.unsqueeze(-1) - predicted).double())
    own = torch.cat(errors) if errors else torch.zeros(0, dataset.horizon, targets, len(levels))
    every = torch.cat(shard.gathered(own))  # (windows, horizon, n_targets, n_levels)
    per_step = conformal_quantiles(every, levels)
    # pooled over the horizon where a step has too few errors beyond a bound to place it
    pooled = conformal_quantiles(every.transpose(0, 1).flatten(0, 1), levels)
    q = every.new_tensor(list(levels))
    enough = torch.isfinite(every).sum(0) >= POOL_BELOW / torch.minimum(q, 1 - q)
    return torch.where(enough, per_step, pooled)


def conformal_quantiles(errors: Tensor, levels: Sequence[float]) -> Tensor:
    """``errors (n, ..., n_levels)``, NaN where not observed: level ``k``'s order statistic
    of column ``k`` over the first axis, the finite-sample one of split conformal
    prediction. With ``m`` observed errors, level ``q`` takes the ``ceil((m + 1) q)``-th
    smallest above the median and the ``floor((m + 1) q)``-th below (the extreme one where
    ``m`` is too small for that), so that a bound moved by it holds at least its share of
    new errors, however few windows there were: a plain quantile of 8 errors puts 1/8
    outside a 0.1 bound."""
    ordered = errors.sort(dim=0).values  # NaN last
    m = torch.isfinite(errors).sum(0)  # (..., n_levels)
    q = errors.new_tensor(list(levels))
    rank = torch.where(q >= 0.5, torch.ceil((m + 1) * q), torch.floor((m + 1) * q))
    index = (rank.long() - 1).clamp(min=0).minimum((m - 1).clamp(min=0))
    return ordered.gather(0, index.unsqueeze(0))[0].where(m > 0, torch.nan)


def conformal(
    net: nn.Module, val: WindowDataset, levels: Sequence[float], windows: int = 20_000
) -> Calibration:
    """The calibration of ``net``'s quantiles at ``levels`` on the validation windows."""
    net.eval()

    def quantiles(batch: Batch) -> Tensor:
        return net.forecast(batch.x, batch.future, batch.static, levels).quantiles

    offsets = residual_quantiles(val, quantiles, levels, windows)
    return Calibration(levels, offsets.nan_to_num(0.0))  # no target observed: no offset


@torch.no_grad()
def coverage(net: nn.Module, dataset: WindowDataset, levels: Sequence[float], stride: int) -> float:
    """The share of ``dataset``'s observed targets (every ``stride``-th origin; under DDP,
    every rank's) inside ``net``'s interval from the first level's quantile to the last's."""
    net.eval()
    sums = torch.zeros(2, dtype=torch.float64)  # inside, observed
    for index in dataset.strided(stride).split(1024):
        x, y, future, static = dataset[index]
        quantiles = net.forecast(x, future, static, levels).quantiles
        low, high = quantiles[..., 0] - TIE, quantiles[..., -1] + TIE
        inside = (low <= y) & (y <= high)  # False where y is NaN
        sums += torch.tensor([inside.sum().item(), torch.isfinite(y).sum().item()])
    dataset.shard.summed(sums)
    return (sums[0] / sums[1].clamp_min(1)).item()
