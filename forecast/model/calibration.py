"""Quantiles calibrated on windows the model did not train on (``conformal=true``): split
conformal prediction, level by level. For each level ``q``, horizon step and target, the
offset is the ``q``-quantile of ``y`` minus the forecast's ``q``-quantile over the validation
windows (over every step of the horizon where a step has too few windows); added to the
forecast, the level's share of targets below it there is ``q``. It
widens an interval that was too narrow and narrows one that was too wide (quantile heads,
distributions and ensembles alike), in the scaled space the network forecasts in. A
distribution, which is asked for levels at forecast time, is calibrated on a grid of levels
as well, and a level between two of them is moved by their offsets interpolated.

``residual_quantiles`` is the same computation for any forecast, which gives a point
forecaster (a baseline) an interval from its own errors.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from forecast.data.windows import Batch, WindowDataset
from forecast.model.losses import Forecast

# Scaled units within which a target counts as on a bound: whole counts and a negative
# binomial's whole-count quantile, equal in the data's units, differ by float32 rounding here
TIE = 1e-5
# Levels a distribution is calibrated at besides its own; GAP: calibrated levels at most this
# far apart calibrate a level between them by interpolating their offsets (so every level
# from 0.01 to 0.99 asked of a calibrated distribution is calibrated)
GRID = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)
GAP = 0.1
# Errors expected beyond a bound below which a horizon step's offset is the whole horizon's:
# 8 validation windows would set a 0.1 bound by the smallest of 8 errors, far too wide
POOL_BELOW = 10


class Calibration(nn.Module):
    """Offsets ``(horizon, n_targets, len(levels))`` added to the quantiles at ``levels``. A
    level asked for between two calibrated levels at most ``GAP`` apart takes the offset
    interpolated between theirs; any other level is left as the model gives it."""

    def __init__(self, levels: Sequence[float], offsets: Tensor) -> None:
        super().__init__()
        self.levels = [float(q) for q in levels]
        self.register_buffer("offsets", offsets.float())

    def forward(self, quantiles: Tensor, levels: Sequence[float]) -> Tensor:
        """``quantiles (..., horizon, n_targets, len(levels))`` moved, then sorted so that
        no two levels cross."""
        offsets = [self.offset(q) for q in levels]
        if all(offset is None for offset in offsets):
            return quantiles
        shift = torch.zeros(quantiles.shape[-3:], dtype=quantiles.dtype, device=quantiles.device)
        for k, offset in enumerate(offsets):
            if offset is not None:
                shift[..., k] = offset
        return (quantiles + shift).sort(dim=-1).values

    def offset(self, q: float) -> Tensor | None:
        """Level ``q``'s offsets ``(horizon, n_targets)``: its own, or linear between the
        calibrated levels either side of it where they are close; None where neither."""
        if q in self.levels:
            return self.offsets[..., self.levels.index(q)]
        k = bisect.bisect(self.levels, q)
        if not 0 < k < len(self.levels) or self.levels[k] - self.levels[k - 1] > GAP + 1e-9:
            return None
        low, high = self.levels[k - 1], self.levels[k]
        return torch.lerp(self.offsets[..., k - 1], self.offsets[..., k], (q - low) / (high - low))


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
    """The calibration of ``net``'s quantiles at ``levels`` on the validation windows; a
    distribution's, which answers any level at forecast time, at ``GRID``'s levels too. The
    grid takes windows of its own: in one pass with ``levels`` it would leave them fewer of
    the ``windows`` that bound the errors held in memory."""
    net.eval()
    grid = [q for q in GRID if q not in levels] if net.config.distribution else []
    offsets: dict[float, Tensor] = {}
    for each in filter(None, (list(levels), grid)):

        def quantiles(batch: Batch, each: list[float] = each) -> Tensor:
            return net.forecast(batch.x, batch.future, batch.static, each).quantiles

        found = residual_quantiles(val, quantiles, each, windows)
        offsets |= {q: found[..., k] for k, q in enumerate(each)}
    order = sorted(offsets)
    stacked = torch.stack([offsets[q] for q in order], dim=-1)
    return Calibration(order, stacked.nan_to_num(0.0))  # no target observed: no offset


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
