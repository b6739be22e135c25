"""Figures logged with a run: forecasts against actuals, and error by horizon step."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: training runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from forecast.model import LSTMNet
from forecast.windows import ForecastDataModule


@torch.no_grad()
def forecast_figure(net: LSTMNet, datamodule: ForecastDataModule, n_windows: int = 4) -> Figure:
    """History, actual future and forecast of the last target, in original units, with the
    interval between the outermost quantiles if the model has any.

    The last target is plotted because by convention it is the main one (``OT`` in the ETT
    files); windows are spread evenly over the test split.
    """
    dataset = datamodule.datasets["test"]
    index = torch.linspace(0, len(dataset) - 1, n_windows).long()
    x, y = dataset[index]  # (n_windows, lookback, n_features), (n_windows, horizon, n_targets)
    out = net.eval().decode(x)[0][:, :, -1]  # (n_windows, horizon, 1 + n_quantiles)
    column = datamodule.target_index[-1]
    mean, std = datamodule.scaler.mean[column], datamodule.scaler.std[column]
    history = x[..., column].numpy() * std + mean
    actual = y[..., -1].numpy() * std + mean
    first = 1 if net.quantiles else 0  # no quantiles: the band collapses onto the forecast
    predicted, low, high = (out[..., k].numpy() * std + mean for k in (0, first, -1))

    lookback, horizon = history.shape[1], actual.shape[1]
    past, future = np.arange(-lookback, 0), np.arange(horizon)
    fig, axes = plt.subplots(n_windows, 1, figsize=(10, 2.5 * n_windows), squeeze=False)
    for ax, i in zip(axes[:, 0], range(n_windows), strict=True):
        ax.plot(past, history[i], color="0.5", label="history")
        ax.plot(future, actual[i], color="black", label="actual")
        ax.plot(future, predicted[i], color="tab:blue", label="forecast")
        if net.quantiles:
            label = f"q{net.quantiles[0]:g} to q{net.quantiles[-1]:g}"
            ax.fill_between(future, low[i], high[i], color="tab:blue", alpha=0.2, label=label)
        ax.set_title(f"test window {int(index[i])}", fontsize=9)
        ax.set_ylabel(datamodule.targets[-1])
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
