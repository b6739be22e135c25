"""What an evaluation leaves in its MLflow run and output folder: the per-step error curve,
per-window errors and the figures."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from mlflow.entities import Metric
from pytorch_lightning.loggers import MLFlowLogger

from forecast.data.datamodule import ForecastDataModule
from forecast.evaluation.plots import error_by_step_figure, forecast_examples, forecast_figure
from forecast.evaluation.scoring import Evaluation, window_origins
from forecast.model.net import LSTMNet


def log_evaluation(
    logger: MLFlowLogger,
    evaluation: Evaluation,
    prefix: str,
    net: LSTMNet,
    datamodule: ForecastDataModule,
    output_dir: Path,
) -> None:
    """The per-step error curve (as metric history and CSV), per-window errors and the two
    figures, into the run and ``output_dir``; the summary metrics are the caller's to log."""
    client, run_id = logger.experiment, logger.run_id
    by_step = evaluation.by_step()
    now = int(time.time() * 1000)
    curves = [  # MLflow's metric history, one point per horizon step, sent in one call
        Metric(f"{prefix}_mse_by_step_{name}", float(value), now, int(step))
        for name, curve in by_step.items()
        for step, value in curve.items()
    ]
    client.log_batch(run_id, metrics=curves)
    folder = output_dir / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    by_step.to_csv(folder / f"{prefix}_mse_by_step.csv")
    evaluation.windows.to_csv(folder / f"{prefix}_windows.csv", index=False)
    client.log_artifacts(run_id, str(folder), "evaluation")
    test = datamodule.datasets["test"]
    examples = forecast_examples(net, datamodule, test)
    titles = window_titles(window_origins(datamodule, test, torch.as_tensor(examples.index)))
    figures = {
        f"plots/{prefix}_forecasts.png": forecast_figure(
            examples, datamodule.spec.targets[-1], net.config.quantiles, titles
        ),
        f"plots/{prefix}_mse_by_step.png": error_by_step_figure(by_step),
    }
    for name, figure in figures.items():
        client.log_figure(run_id, figure, name)
        plt.close(figure)


def window_titles(origins: pd.DataFrame) -> list[str]:
    """A figure's title per window: its series (if the data has several) and the time of its
    first forecast step, from ``window_origins``."""
    ids = origins.drop(columns="origin")
    return [
        ", ".join([*(str(v) for v in ids.iloc[k]), f"forecast from {origins.origin.iloc[k]}"])
        for k in range(len(origins))
    ]
