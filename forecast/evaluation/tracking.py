"""What a run leaves in MLflow and its output folder: the per-step error curve, per-window
errors and the figures of an evaluation, and where the run's inputs came from."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import torch
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import Metric
from mlflow.types import ColSpec, Schema
from mlflow.utils.git_utils import get_git_commit
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from forecast.data.datamodule import ForecastDataModule
from forecast.data.spec import DataSpec
from forecast.evaluation.plots import error_by_step_figure, forecast_examples, forecast_figure
from forecast.evaluation.results import Evaluation
from forecast.evaluation.spans import window_origins
from forecast.model.net import LSTMNet


def log_evaluation(
    logger: MLFlowLogger,
    evaluation: Evaluation,
    prefix: str,
    net: LSTMNet,
    datamodule: ForecastDataModule,
    output_dir: Path,
) -> None:
    """The per-step error curve (as metric history and CSV), per-window errors, per-series
    errors of a panel and the two figures, into the run and ``output_dir``; the summary
    metrics are the caller's to log."""
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
    by_series = evaluation.by_series()
    if by_series is not None:
        by_series.to_csv(folder / f"{prefix}_series.csv", index=False)
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


@rank_zero_only  # one run, one input: under DDP the other ranks have no run of their own
def log_provenance(logger: MLFlowLogger, spec: DataSpec) -> None:
    """Where a run's inputs came from: the data file as an MLflow dataset input (its path, a
    fingerprint and its columns), and the git commit of the working folder, as MLflow records
    one for its projects."""
    client, run_id = logger.experiment, logger.run_id
    commit = get_git_commit(os.getcwd())
    if commit:
        client.set_tag(run_id, "mlflow.source.git.commit", commit)
    schema = Schema([ColSpec("double", column) for column in spec.features])
    source = LocalArtifactDatasetSource(str(spec.path))
    dataset = MetaDataset(source, Path(str(spec.path)).name, fingerprint(Path(spec.path)), schema)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(dataset, context="training")


def fingerprint(path: Path, edge: int = 1 << 20) -> str:
    """A digest of a data file from its size and its first and last MiB: it changes when the
    file does, in milliseconds whatever the file's size."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as file:
        digest.update(file.read(edge))
        file.seek(max(0, size - edge))
        digest.update(file.read(edge))
    return digest.hexdigest()[:16]
