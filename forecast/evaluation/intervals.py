"""Quantile forecasts scored as the field ranks them, in the data's units: the weighted
quantile loss (CRPS in its quantile form, GIFT-Eval's headline), the outer interval's
coverage and width, and M4's mean scaled interval score (MSIS); and the interval a
baseline gets from its own errors, so that a model's interval reads against one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from forecast.evaluation.scores import Units
from forecast.model.baselines import Baseline
from forecast.model.calibration import TIE, residual_quantiles

if TYPE_CHECKING:
    from forecast.data.datamodule import ForecastDataModule


@dataclass
class IntervalScores:
    """Sums over the observed targets of quantile forecasts at ``levels`` (increasing), in
    the data's units: each level's pinball loss and the targets' absolute values (the
    weighted quantile loss), the outer interval's hits and width, and per window its
    interval score over the series' in-sample seasonal MAE (MSIS, at ``alpha`` = 1 - the
    interval's nominal coverage)."""

    levels: list[float]
    pinball: Tensor  # (n_levels,)
    absolute: Tensor  # () the sum of |y|
    hits: Tensor
    width: Tensor
    count: Tensor  # observed targets
    msis: Tensor  # each window's mean scaled interval score, summed
    windows: Tensor

    @classmethod
    def empty(cls, levels: Sequence[float]) -> IntervalScores:
        zero = [torch.zeros((), dtype=torch.float64) for _ in range(6)]
        return cls(list(levels), torch.zeros(len(levels), dtype=torch.float64), *zero)

    @property
    def alpha(self) -> float:
        return 1 - (self.levels[-1] - self.levels[0])

    def update(self, quantiles: Tensor, y: Tensor, units: Units) -> None:
        """Add a batch: ``quantiles (batch, horizon, n_targets, n_levels)`` and ``y (batch,
        horizon, n_targets)``, scaled; ``units`` take each window's series to the data's."""
        observed = torch.isfinite(y)
        std, mean = (part.unsqueeze(1) for part in units[:2])  # (batch, 1, n_targets)
        actual = torch.where(observed, y.double() * std + mean, 0.0)
        q = quantiles.double() * std.unsqueeze(-1) + mean.unsqueeze(-1)
        error = actual.unsqueeze(-1) - q
        levels = q.new_tensor(self.levels)
        pinball = torch.maximum(levels * error, (levels - 1) * error)
        self.pinball += torch.where(observed.unsqueeze(-1), pinball, 0.0).sum((0, 1, 2))
        self.absolute += actual.abs().sum()
        low, high = q[..., 0], q[..., -1]
        slack = TIE * std  # a count on a whole-count bound is inside, float32 or not
        self.hits += (observed & (actual >= low - slack) & (actual <= high + slack)).sum()
        self.width += torch.where(observed, high - low, 0.0).sum()
        self.count += observed.sum()
        penalty = (2 / self.alpha) * ((low - actual).clamp_min(0) + (actual - high).clamp_min(0))
        score = torch.where(observed, high - low + penalty, 0.0)
        steps = observed.sum(1)  # (batch, n_targets)
        seen = steps > 0
        per_window = score.sum(1) / steps.clamp_min(1) / units.scale.clamp_min(1e-12)
        self.msis += torch.where(seen, per_window, 0.0).sum()
        self.windows += seen.sum()

    def sums(self) -> list[Tensor]:
        """Every sum it holds, to be summed across DDP ranks."""
        return [getattr(self, f.name) for f in fields(self) if f.name != "levels"]

    def metrics(self) -> dict[str, float]:
        """``wql``: the mean over levels of 2 x pinball / sum |y| (CRPS from the quantiles);
        ``coverage`` and ``interval_width`` of the outer interval; ``msis``."""
        absolute = self.absolute.clamp_min(1e-12)
        return {
            "wql": (2 * self.pinball / absolute).mean().item(),
            "coverage": (self.hits / self.count.clamp_min(1)).item(),
            "interval_width": (self.width / self.count.clamp_min(1)).item(),
            "msis": (self.msis / self.windows.clamp_min(1)).item(),
        }


Intervals = dict[str, tuple[IntervalScores, Tensor | None]]  # scores, a baseline's offsets


def interval_baselines(
    datamodule: ForecastDataModule, baselines: dict[str, Baseline], levels: list[float]
) -> Intervals:
    """With quantiles, the model's interval scores and seasonal naive's (or naive's, without
    a season), its interval from the quantiles of its errors on the training windows."""
    if not levels:
        return {}
    name = "seasonal_naive" if "seasonal_naive" in baselines else "naive"
    baseline = baselines[name]
    offsets = residual_quantiles(datamodule.datasets["train"], lambda b: baseline(b.x), levels)
    return {"model": (IntervalScores.empty(levels), None),
            name: (IntervalScores.empty(levels), offsets.float())}  # fmt: skip
