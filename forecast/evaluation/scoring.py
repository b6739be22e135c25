"""Every test figure, from one implementation: the model and the baselines scored on the same
windows from the same error sums, in scaled and original units.

``forecast-train`` (on the test split, after training) and ``forecast-eval`` (on any split or
backtest span of a saved model) both call ``evaluate_windows``. Under DDP where every rank
holds the table, rank 0 alone scores every window; where each holds its own series, each
scores its windows and every sum is summed across ranks: exact either way. MASE divides a
forecast's MAE by the MAE of the one-season-back forecast over the training split (in-sample,
as Hyndman and Koehler define it), so a MASE below 1 beats what seasonality alone explains.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from forecast.data.datamodule import ForecastDataModule
from forecast.data.windows import Batch, WindowDataset
from forecast.evaluation.intervals import Intervals, interval_baselines
from forecast.evaluation.m4 import naive2_scores
from forecast.evaluation.results import Evaluation
from forecast.evaluation.scores import Scores, Units, seasonal_mae, series_units
from forecast.evaluation.spans import window_origins
from forecast.model.baselines import Baseline, LinearBaseline, reference_baselines
from forecast.model.ensemble import Ensemble
from forecast.model.losses import ForecastLoss, pinball_loss
from forecast.model.net import LSTMNet

log = logging.getLogger(__name__)


def scored_baselines(
    datamodule: ForecastDataModule, season: int, linear: Tensor | None
) -> dict[str, Baseline]:
    """The baselines every evaluation prints, the linear one fitted on the training windows
    (or ``linear``, its map fitted there already)."""
    spec = datamodule.spec
    if season > spec.lookback:
        log.warning("season %d > lookback %d: no seasonal naive", season, spec.lookback)
    if linear is None:
        fitted = LinearBaseline.fit(datamodule.datasets["train"])
    else:
        fitted = LinearBaseline(linear, spec.target_index)
    return reference_baselines(spec.horizon, spec.target_index, spec.lookback, season, fitted)


@torch.no_grad()
def evaluate_windows(
    net: LSTMNet | Ensemble,
    datamodule: ForecastDataModule,
    dataset: WindowDataset,
    season: int | None = None,
    stride: int = 1,
    batch_size: int = 1024,
    loss: ForecastLoss | None = None,
    linear: Tensor | None = None,
) -> Evaluation:
    """Score ``net`` and the baselines on ``dataset``'s windows, every ``stride``-th origin;
    with ``loss``, its mean too (``test_loss``); ``linear``: the linear baseline's map, where
    one is at hand. Under DDP with each rank's series, every rank calls it (sums: all ranks')."""
    spec = datamodule.spec
    season = season or datamodule.season
    baselines = scored_baselines(datamodule, season, linear)
    members = net.candidates[: len(net.members)] if isinstance(net, Ensemble) else []
    names = ["model", *members, *baselines]
    scores = {name: Scores.empty(spec.horizon, spec.n_targets) for name in names}
    levels = list(net.config.quantiles)
    intervals = interval_baselines(datamodule, baselines, levels)
    index = dataset.strided(stride)
    net.eval()
    errors, sums = [], torch.zeros(4, dtype=torch.float64)  # pinball, loss, observed, windows
    units = series_units(datamodule, season)
    for batch in index.split(batch_size):
        window_errors, batch_sums = score_batch(
            net, dataset[batch], scores, members, baselines, levels, loss,
            Units(*(part[dataset.series_of(batch)] for part in units)), intervals,
        )  # fmt: skip
        errors.append(window_errors)
        sums[:3] += batch_sums
    sums[3] = len(index)  # under DDP, each sum over every rank's
    every = [*scores.values(), *(scores for scores, _ in intervals.values())]
    dataset.shard.summed(sums, *(part for each in every for part in each.sums()))
    values = sums[2].item()  # the observed targets
    return Evaluation(
        scores=scores,
        seasonal_mae=seasonal_mae(datamodule, season),
        season=season,
        windows=scored_windows(datamodule, dataset, index, errors),
        quantiles=levels,
        pinball=sums[0].item() / values if levels else float("nan"),
        intervals={name: scores for name, (scores, _) in intervals.items()},
        loss=None if loss is None else sums[1].item() / values,
        skipped=int(sums[3].item() * spec.horizon * spec.n_targets - values),
        naive2=naive2_scores(datamodule, dataset, index, season, units),
        stride=stride,
    )


def scored_windows(
    datamodule: ForecastDataModule, dataset: WindowDataset, index: Tensor, errors: list[Tensor]
) -> pd.DataFrame:
    """Each window's series and origin, and the model's errors ``(3, batch)`` of each batch,
    every rank's under DDP."""
    each = torch.cat(errors, dim=1).numpy() if errors else np.zeros((3, 0))
    own = window_origins(datamodule, dataset, index)
    own = own.assign(mse=each[0], mae=each[1], mae_orig=each[2])
    return pd.concat(dataset.shard.gathered(own), ignore_index=True)


def score_batch(
    net: LSTMNet | Ensemble,
    batch: Batch,
    scores: dict[str, Scores],
    members: list[str],
    baselines: dict[str, Baseline],
    levels: list[float],
    loss: ForecastLoss | None,
    units: Units,
    intervals: Intervals,
) -> tuple[Tensor, Tensor]:
    """Add one batch's errors to ``scores``: the model's, each member's (from the same forward
    passes) and each baseline's, ``units`` taking them to the data's units; and to
    ``intervals``, the model's quantiles and each baseline's interval.
    Returns each window's MSE, MAE and MAE in the data's units ``(3, batch)`` and the batch's
    sums of pinball loss and loss, and its observed targets."""
    x, y, future, static = batch
    if members:
        each = net.member_forecasts(x, future, static)
        forecast = net.combined(x, each)
        for name, point in zip(members, each.point, strict=True):
            scores[name].update(point, y, units)
    else:
        forecast = net.forecast(x, future, static)
    scores["model"].update(forecast.point, y, units)
    for name, baseline in baselines.items():
        point = baseline(x)
        scores[name].update(point, y, units)
        if name in intervals:
            interval, offsets = intervals[name]
            interval.update(point.unsqueeze(-1) + offsets, y, units)
    if "model" in intervals:
        intervals["model"][0].update(forecast.quantiles, y, units)
    observed = torch.isfinite(y)
    count = observed.sum().item()
    sums = torch.zeros(3, dtype=torch.float64)
    sums[2] = count
    if levels:
        sums[0] = pinball_loss(forecast.quantiles, y, levels, observed).item() * count
    if loss is not None:
        sums[1] = loss(forecast, y).item() * count
    error = torch.where(observed, forecast.point - y, 0.0).double()
    per_window = observed.sum((1, 2))  # 0 for a window of made-up targets alone: NaN errors
    in_units = (error.abs() * units.std.unsqueeze(1)).sum((1, 2))
    each = torch.stack([error.square().sum((1, 2)), error.abs().sum((1, 2)), in_units])
    return each / per_window, sums


@torch.no_grad()
def mean_loss(
    net: LSTMNet | Ensemble, dataset: WindowDataset, loss: ForecastLoss, stride: int = 1
) -> float:
    """``loss`` over ``dataset``'s windows (every ``stride``-th origin), as validation
    measures it: an ensemble's ``best_val_loss``, without the baselines and members
    evaluate_windows scores beside it."""
    net.eval()
    sums = torch.zeros(2, dtype=torch.float64)  # the loss's sum, the observed targets
    for index in dataset.strided(stride).split(1024):
        x, y, future, static = dataset[index]
        count = int(torch.isfinite(y).sum())
        total = loss(net.forecast(x, future, static), y).item() * count
        sums += torch.tensor([total, count], dtype=torch.float64)
    dataset.shard.summed(sums)  # under DDP, every rank's windows
    return float(sums[0] / sums[1].clamp_min(1))
