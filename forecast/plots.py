"""Figures logged with a run: forecasts against actuals on a few test windows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: training runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from forecast.model import LSTMNet
from forecast.windows import ForecastDataModule


@torch.no_grad()
def forecast_figure(net: LSTMNet, datamodule: ForecastDataModule, n_windows: int = 4) -> Figure:
    """History, actual future and forecast of the last target, in original units.

    The last target is plotted because by convention it is the main one (``OT`` in the ETT
    files); windows are spread evenly over the test split.
    """
    dataset = datamodule.datasets["test"]
    index = torch.linspace(0, len(dataset) - 1, n_windows).long()
    x, y = dataset[index]  # (n_windows, lookback, n_features), (n_windows, horizon, n_targets)
    forecast = net.eval()(x)[0]
    column = datamodule.target_index[-1]
    mean, std = datamodule.scaler.mean[column], datamodule.scaler.std[column]
    history = x[..., column].numpy() * std + mean
    actual, predicted = (t[..., -1].numpy() * std + mean for t in (y, forecast))

    lookback, horizon = history.shape[1], actual.shape[1]
    past, future = np.arange(-lookback, 0), np.arange(horizon)
    fig, axes = plt.subplots(n_windows, 1, figsize=(10, 2.5 * n_windows), squeeze=False)
    for ax, i in zip(axes[:, 0], range(n_windows), strict=True):
        ax.plot(past, history[i], color="0.5", label="history")
        ax.plot(future, actual[i], color="black", label="actual")
        ax.plot(future, predicted[i], color="tab:blue", label="forecast")
        ax.set_title(f"test window {int(index[i])}", fontsize=9)
        ax.set_ylabel(datamodule.targets[-1])
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("steps from forecast origin")
    fig.tight_layout()
    return fig
