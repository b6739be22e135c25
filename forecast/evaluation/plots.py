"""Figures logged with a run: forecasts against actuals, and error by horizon step."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: training runs on servers and in CI

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from forecast.data.datamodule import ForecastDataModule
from forecast.data.windows import WindowDataset
from forecast.model.ensemble import Ensemble
from forecast.model.net import LSTMNet


def forecast_figure(
    examples: Examples, target: str, quantiles: Sequence[float], titles: Sequence[str]
) -> Figure:
    """History, actual future and forecast of each example window, in original units, with
    the interval between the outermost quantiles if the model has any."""
    n_windows, lookback = examples.history.shape
    past, future = np.arange(-lookback, 0), np.arange(examples.actual.shape[1])
    fig, axes = plt.subplots(n_windows, 1, figsize=(10, 2.5 * n_windows), squeeze=False)
    for ax, i in zip(axes[:, 0], range(n_windows), strict=True):
        ax.plot(past, examples.history[i], color="0.5", label="history")
        ax.plot(future, examples.actual[i], color="black", label="actual")
        ax.plot(future, examples.point[i], color="tab:blue", label="forecast")
        if examples.low is not None:
            label = f"q{quantiles[0]:g} to q{quantiles[-1]:g}"
            band = (examples.low[i], examples.high[i])
            ax.fill_between(future, *band, color="tab:blue", alpha=0.2, label=label)
        ax.set_title(titles[i], fontsize=9)
        ax.set_ylabel(target)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("steps from forecast origin")
    fig.tight_layout()
    return fig


def error_by_step_figure(by_step: pd.DataFrame) -> Figure:
    """MSE per horizon step of the model and each baseline: where in the horizon it wins."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, curve in by_step.items():
        ax.plot(curve.index, curve.to_numpy(), label=name, linewidth=2 if name == "model" else 1)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MSE (standardized)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@dataclass
class Examples:
    """A few windows of the last target in original units, for a figure."""

    index: np.ndarray  # (n_windows,) window numbers in the dataset
    history: np.ndarray  # (n_windows, lookback)
    actual: np.ndarray  # (n_windows, horizon)
    point: np.ndarray  # (n_windows, horizon)
    low: np.ndarray | None  # (n_windows, horizon): the lowest quantile, if any
    high: np.ndarray | None  # the highest


@torch.no_grad()
def forecast_examples(
    net: LSTMNet | Ensemble,
    datamodule: ForecastDataModule,
    dataset: WindowDataset,
    n_windows: int = 4,
) -> Examples:
    """Windows spread evenly over ``dataset``. The last target is the one shown because by
    convention it is the main one (``OT`` in the ETT files)."""
    spec = datamodule.spec
    index = torch.linspace(0, len(dataset) - 1, n_windows).long()
    x, y, future, static = dataset[index]  # x (n_windows, lookback, n_features)
    forecast = net.eval().forecast(x, future, static)
    series = dataset.series_of(index).numpy()
    column = spec.target_index[-1]
    scalers = datamodule.scalers
    mean, std = (stats[series, column][:, None] for stats in (scalers.mean, scalers.std))

    def unscale(values: Tensor) -> np.ndarray:  # (n_windows, steps) of the last target
        return values.double().numpy() * std + mean

    levels = net.config.quantiles
    return Examples(
        index=index.numpy(),
        history=unscale(x[..., spec.target_index[-1]]),
        actual=unscale(y[..., -1]),
        point=unscale(forecast.point[..., -1]),
        low=unscale(forecast.quantiles[..., -1, 0]) if levels else None,
        high=unscale(forecast.quantiles[..., -1, -1]) if levels else None,
    )
