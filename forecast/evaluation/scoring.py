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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from forecast.data.datamodule import ForecastDataModule
from forecast.data.windows import Batch, WindowDataset
from forecast.evaluation.m4 import naive2_scores
from forecast.evaluation.scores import Scores, Units, seasonal_mae, series_units
from forecast.evaluation.spans import window_origins
from forecast.model.baselines import Baseline, LinearBaseline, reference_baselines
from forecast.model.ensemble import Ensemble
from forecast.model.losses import ForecastLoss, interval_hits, pinball_loss
from forecast.model.net import LSTMNet

log = logging.getLogger(__name__)

WINDOW_COLUMNS = ("origin", "mse", "mae", "mae_orig")  # Evaluation.windows' own, beside the ids


@dataclass
class Evaluation:
    """The model's and each baseline's scores on one set of windows, plus per-window errors."""

    scores: dict[str, Scores]
    seasonal_mae: Tensor
    season: int
    windows: pd.DataFrame  # one row per window: [series,] origin, mse, mae, mae_orig of the model
    quantiles: list[float] = field(default_factory=list)
    pinball: float = float("nan")
    coverage: float = float("nan")
    loss: float | None = None  # the training loss on these windows, when it was given
    skipped: int = 0  # target values the data's rules made up, left out of every score
    naive2: tuple[float, float] | None = None  # Naive2's sMAPE and MASE: OWA's denominators
    stride: int = 1  # every stride-th origin of each series was scored

    def metrics(self, prefix: str) -> dict[str, float]:
        """``<prefix>_mse`` ... for the model, ``<prefix>_mse_<baseline>`` for baselines."""
        out = {}
        for name, scores in self.scores.items():
            keep = scores.metrics(self.seasonal_mae)
            if name == "model":
                out |= {f"{prefix}_{k}": v for k, v in keep.items()}
            else:
                shown = ("mse", "mae", "mase", "mae_orig", "rmse_orig", "smape", "mase_series")
                out |= {f"{prefix}_{k}_{name}": keep[k] for k in shown}
        members = [name for name in self.scores if name.startswith("member_")]
        for metric in ("mse", "mae") if members else ():  # an ensemble's members on average
            each = [out[f"{prefix}_{metric}_{name}"] for name in members]
            out[f"{prefix}_{metric}_members_mean"] = sum(each) / len(each)
        if self.quantiles:
            out |= {f"{prefix}_pinball": self.pinball, f"{prefix}_coverage": self.coverage}
        if self.loss is not None:
            out[f"{prefix}_loss"] = self.loss
        out[f"{prefix}_targets_skipped"] = float(self.skipped)
        owa = {f"{prefix}_owa" if n == "model" else f"{prefix}_owa_{n}": v
               for n, v in self.owa().items()}  # fmt: skip
        return out | owa

    def owa(self) -> dict[str, float]:
        """M4's OWA of the model and each baseline against Naive2 (none where not scored)."""
        if self.naive2 is None:
            return {}
        smape, mase = self.naive2
        each = {name: scores.metrics(self.seasonal_mae) for name, scores in self.scores.items()}
        return {n: (m["smape"] / smape + m["mase_series"] / mase) / 2 for n, m in each.items()}

    def table(self) -> str:
        every = f", every {self.stride}-th origin" if self.stride > 1 else ""
        lines = [
            f"{'':<16}{'MSE':>9}{'MAE':>9}{'MASE':>9}{'MAE':>12}{'RMSE':>12}{'sMAPE':>9}   "
            f"({len(self.windows)} windows{every}; the last three in the data's units)"
        ]
        for name, scores in self.scores.items():
            m = scores.metrics(self.seasonal_mae)
            lines.append(
                f"{name:<16}{m['mse']:>9.4f}{m['mae']:>9.4f}{m['mase']:>9.4f}"
                f"{m['mae_orig']:>12.4g}{m['rmse_orig']:>12.4g}{m['smape']:>9.3f}"
            )
        if self.quantiles:
            nominal = self.quantiles[-1] - self.quantiles[0]
            lines.append(
                f"quantiles {self.quantiles}: pinball {self.pinball:.4f}, coverage "
                f"{self.coverage:.3f} of a nominal {nominal:.2f}"
            )
        lines += self.series_lines()
        if self.naive2 is not None:
            owa = ", ".join(f"{name} {value:.3f}" for name, value in self.owa().items())
            lines.append(f"OWA against Naive2 (M4's): {owa}")
        if self.skipped:
            scored = int(next(iter(self.scores.values())).counts.sum())
            lines.append(
                f"{self.skipped} target value(s) filled by data.fill_gaps or data.fill_missing "
                f"not scored ({scored} scored)"
            )
        return "\n".join(lines)

    def by_series(self) -> pd.DataFrame | None:
        """The model's errors per series (the mean over its windows), worst MSE first; None
        for one series."""
        ids = [c for c in self.windows.columns if c not in WINDOW_COLUMNS]
        if not ids:
            return None
        grouped = self.windows.groupby(ids, sort=False)
        table = grouped[["mse", "mae", "mae_orig"]].mean()
        table.insert(0, "windows", grouped.size())
        return table.sort_values("mse", ascending=False).reset_index()

    def series_lines(self) -> list[str]:
        """The worst and the best series, for a panel."""
        table = self.by_series()
        if table is None or len(table) < 2:
            return []
        ids = [c for c in table.columns if c not in ("windows", "mse", "mae", "mae_orig")]

        def named(row: pd.Series) -> str:
            return ", ".join(str(row[c]) for c in ids) + f" (MSE {row.mse:.4f})"

        return [
            f"per series ({len(table)}): worst {named(table.iloc[0])}, best {named(table.iloc[-1])}"
        ]

    def by_step(self) -> pd.DataFrame:
        """MSE per horizon step (rows) for the model and each baseline (columns)."""
        curves = {name: s.mse_by_step().numpy() for name, s in self.scores.items()}
        frame = pd.DataFrame(curves)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="step")
        return frame


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
    with ``loss``, its mean over the windows too (``test_loss``), and ``linear`` the linear
    baseline's map where one is at hand. Under DDP with each rank's own series, every rank
    calls it and each sum runs over every rank's windows."""
    spec = datamodule.spec
    season = season or datamodule.season
    baselines = scored_baselines(datamodule, season, linear)
    members = net.candidates[: len(net.members)] if isinstance(net, Ensemble) else []
    scores = {
        name: Scores.empty(spec.horizon, spec.n_targets) for name in ["model", *members, *baselines]
    }
    levels = list(net.config.quantiles)
    index = dataset.strided(stride)
    net.eval()
    errors, sums = [], torch.zeros(5, dtype=torch.float64)  # pinball, hits, loss, observed
    units = series_units(datamodule, season)
    for batch in index.split(batch_size):
        window_errors, batch_sums = score_batch(
            net, dataset[batch], scores, members, baselines, levels, loss,
            Units(*(part[dataset.series_of(batch)] for part in units)),
        )  # fmt: skip
        errors.append(window_errors)
        sums[:4] += batch_sums
    sums[4] = len(index)  # the windows scored; under DDP, each sum over every rank's
    for tensor in [sums, *(part for name in scores for part in scores[name].sums())]:
        dataset.shard.summed(tensor)
    values = sums[3].item()  # the observed targets
    return Evaluation(
        scores=scores,
        seasonal_mae=seasonal_mae(datamodule, season),
        season=season,
        windows=scored_windows(datamodule, dataset, index, errors),
        quantiles=levels,
        pinball=sums[0].item() / values if levels else float("nan"),
        coverage=sums[1].item() / values if levels else float("nan"),
        loss=None if loss is None else sums[2].item() / values,
        skipped=int(sums[4].item() * spec.horizon * spec.n_targets - values),
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
) -> tuple[Tensor, Tensor]:
    """Add one batch's errors to ``scores``: the model's, each member's (from the same forward
    passes) and each baseline's, ``units`` taking them to the data's units.
    Returns each window's MSE, MAE and MAE in the data's units ``(3, batch)`` and the batch's
    sums of pinball loss, interval hits and loss."""
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
        scores[name].update(baseline(x), y, units)
    observed = torch.isfinite(y)
    count = observed.sum().item()
    sums = torch.zeros(4, dtype=torch.float64)
    sums[3] = count
    if levels:
        sums[0] = pinball_loss(forecast.quantiles, y, levels, observed).item() * count
        sums[1] = (interval_hits(forecast.quantiles, y) & observed).sum().item()
    if loss is not None:
        sums[2] = loss(forecast, y).item() * count
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
