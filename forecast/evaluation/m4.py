"""The M4 competition's point scores, as its organizers compute them (Makridakis et al. 2020,
the R code of ``Mcompetitions/M4-methods``): sMAPE, MASE and OWA against Naive2, per series
and then averaged over series, so that a panel scored here reads against M4's published
tables; ``naive2_scores`` gives every evaluation of positive data its OWA (``test_owa``).

Naive2 is the naive forecast of the series with a classical multiplicative seasonality
removed, where a 90% autocorrelation test at the period finds one (period 1, as weekly data
has in M4: the plain naive forecast).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from forecast.data.datamodule import ForecastDataModule
from forecast.data.seasonality import bartlett_limit, mean_autocorrelation
from forecast.data.windows import WindowDataset
from forecast.evaluation.scores import Units


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of ``200 |y - f| / (|y| + |f|)`` over the horizon (in percent, as M4 prints it)."""
    return float(np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, period: int) -> float:
    """Mean absolute error over the in-sample mean absolute difference at ``period``."""
    scale = np.mean(np.abs(insample[period:] - insample[:-period]))
    return float(np.mean(np.abs(actual - forecast)) / scale)


def msis(
    actual: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    insample: np.ndarray,
    period: int,
    alpha: float = 0.05,
) -> float:
    """M4's mean scaled interval score of the ``1 - alpha`` interval: its width plus
    ``2 / alpha`` times each miss, over the horizon, over the in-sample mean absolute
    difference at ``period`` (MASE's scale)."""
    below, above = np.maximum(lower - actual, 0), np.maximum(actual - upper, 0)
    score = np.mean(upper - lower + 2 / alpha * (below + above))
    return float(score / np.mean(np.abs(insample[period:] - insample[:-period])))


def seasonal(insample: np.ndarray, period: int) -> bool:
    """M4's test: the autocorrelation at lag ``period`` beyond its 90% limit (Bartlett's
    variance, from the lower lags' autocorrelations); never for period 1 or under three
    periods of data."""
    if period <= 1 or len(insample) < 3 * period:
        return False
    acf = mean_autocorrelation([insample], period)
    return bool(abs(acf[period]) > bartlett_limit(acf, len(insample))[period])


def seasonal_indices(insample: np.ndarray, period: int) -> np.ndarray:
    """R's ``decompose(type="multiplicative")`` figure: the series over its centred moving
    average (a 2 x period average for an even period), averaged per position in the period,
    normalized to a mean of 1; ``(period,)``, position 0 being the series' first step's."""
    n = len(insample)
    if period % 2:
        weights = np.full(period, 1.0 / period)
    else:
        weights = np.r_[0.5, np.ones(period - 1), 0.5] / period
    half = len(weights) // 2
    trend = np.full(n, np.nan)
    trend[half : n - half] = np.convolve(insample, weights, mode="valid")
    ratio = np.r_[insample / trend, np.full(-n % period, np.nan)]  # whole periods
    figure = np.nanmean(ratio.reshape(-1, period), axis=0)  # per position in the period
    return figure / figure.mean()


def naive2(insample: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The last value, deseasonalized where the series tests seasonal, repeated and
    reseasonalized over the next ``horizon`` steps."""
    if not seasonal(insample, period):
        return np.full(horizon, insample[-1], dtype=float)
    indices = seasonal_indices(insample, period)
    n = len(insample)
    level = insample[-1] / indices[(n - 1) % period]
    return level * indices[(n + np.arange(horizon)) % period]


def score_panel(
    actuals: Sequence[np.ndarray],
    forecasts: Sequence[np.ndarray],
    insamples: Sequence[np.ndarray],
    period: int,
) -> pd.DataFrame:
    """Per series (rows): sMAPE and MASE of the forecast and of Naive2. ``owa`` of the means
    follows with ``owa``."""
    rows = []
    for actual, forecast, insample in zip(actuals, forecasts, insamples, strict=True):
        reference = naive2(insample, len(actual), period)
        rows.append({
            "smape": smape(actual, forecast),
            "mase": mase(actual, forecast, insample, period),
            "smape_naive2": smape(actual, reference),
            "mase_naive2": mase(actual, reference, insample, period),
        })  # fmt: skip
    return pd.DataFrame(rows)


def owa(scores: pd.DataFrame) -> float:
    """M4's overall weighted average: each score averaged over the series first, over
    Naive2's, the two ratios averaged."""
    means = scores.mean()
    return float((means.smape / means.smape_naive2 + means.mase / means.mase_naive2) / 2)


def naive2_scores(
    datamodule: ForecastDataModule, dataset: WindowDataset, index: Tensor, season: int,
    units: Units,
) -> tuple[float, float] | None:  # fmt: skip
    """Naive2's mean sMAPE and MASE over the windows ``index`` of ``dataset``, each forecast
    from all of its series' rows before the window's origin in the data's units, its MASE
    against ``units.scale`` (as the model's ``mase_series``): OWA's denominators. None where
    a target value before an origin is not positive: the decomposition divides by the level,
    as M4's data (all positive) allows."""
    spec = datamodule.spec
    origins = (dataset.starts(index) + spec.lookback).numpy()
    series = dataset.series_of(index).numpy()
    std, mean, scale = (part.double().numpy() for part in units)  # (n_series, n_targets)
    values = datamodule.values[:, spec.target_index].double().numpy()
    truth = datamodule.truth  # NaN where made up: not scored
    actuals = values if truth is None else truth.double().numpy()
    smapes, mases, positive = [], [], True
    for k in dict.fromkeys(series.tolist()):  # each series' history unscaled once
        start, own = datamodule.bounds[k][0], origins[series == k]
        end = int(own.max()) + spec.horizon
        history = values[start:end] * std[k] + mean[k]  # (rows, n_targets)
        actual = actuals[start:end] * std[k] + mean[k]
        positive = history[: end - spec.horizon - start].min() > 0
        if not positive:
            break
        for origin in own - start:
            for t in range(history.shape[1]):
                seen = np.isfinite(actual[origin : origin + spec.horizon, t])
                if seen.any():
                    forecast = naive2(history[:origin, t], spec.horizon, season)[seen]
                    truth_t = actual[origin : origin + spec.horizon, t][seen]
                    smapes.append(smape(truth_t, forecast))
                    mases.append(np.mean(np.abs(truth_t - forecast)) / scale[k, t])
    each = [float(np.sum(smapes)), float(np.sum(mases)), len(smapes), not positive]
    sums = torch.tensor(each, dtype=torch.float64)
    smape_sum, mase_sum, count, refused = dataset.shard.summed(sums)[0].tolist()  # every rank's
    return (smape_sum / count, mase_sum / count) if count and not refused else None
