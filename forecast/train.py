"""``forecast-train``: fit, test and save a model from a Hydra config, tracked in MLflow.

forecast-train                                     # ETTh1, lookback 96, horizon 96
forecast-train model.hidden_size=128 data.horizon=336
forecast-train experiment=etth1_h720
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import mlflow
import optuna
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from forecast.callbacks import GracefulInterrupt
from forecast.checkpoint import ARTIFACT_PATH, save_checkpoint
from forecast.config import CONF_DIR, check_config, exit_on_error, flat_params, in_multirun
from forecast.console import progress_bar
from forecast.errors import ForecastError
from forecast.evaluate import log_evaluation
from forecast.mlflow_model import log_pyfunc
from forecast.model import LSTMLitModule
from forecast.scoring import Evaluation, evaluate_windows
from forecast.spec import DataSpec
from forecast.sweep import PARENT_RUN_ENV, sqlite_lock
from forecast.windows import ForecastDataModule

log = logging.getLogger(__name__)


@dataclass
class RunOutputs:
    """What a finished run produced, for logging and the report."""

    model_path: Path
    metrics: dict[str, float]
    evaluation: Evaluation | None = None
    data_changes: list[tuple[str, int, str]] = field(default_factory=list)


def build(cfg: DictConfig) -> tuple[ForecastDataModule, LSTMLitModule, pl.Trainer]:
    """Instantiate data, model and trainer; the data is read and checked before anything else,
    and the model is sized from its DataSpec."""
    try:
        datamodule: ForecastDataModule = instantiate(cfg.data)
        datamodule.setup("fit")
        model = build_model(cfg.model, datamodule.spec)
        callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
        parent = os.environ.get(PARENT_RUN_ENV)
        # Runs started together on a new SQLite store would race through its schema
        # migrations and all but one fail: the first to get here creates the store, the
        # experiment and its run while the others wait.
        with sqlite_lock(str(cfg.logger.get("tracking_uri") or "")):
            tags = {"mlflow.parentRunId": parent} if parent else None
            logger = instantiate(cfg.logger, tags=tags)
            if isinstance(logger, MLFlowLogger):
                logger.run_id  # noqa: B018
        trainer: pl.Trainer = instantiate(
            cfg.trainer,
            logger=logger,
            callbacks=callbacks,
            enable_progress_bar=progress_bar(cfg.trainer.get("enable_progress_bar")),
        )
    except InstantiationException as err:
        raise ForecastError(str(err).strip()) from None
    return datamodule, model, trainer


def build_model(cfg: DictConfig, spec: DataSpec) -> LSTMLitModule:
    """``conf/model`` completed with the data's spec; the network refuses bad sizes here."""
    partial = instantiate(cfg, _convert_="all")  # plain lists in hparams, not ListConfig
    try:
        return partial(spec=spec)
    except ForecastError:
        raise
    except (TypeError, ValueError) as err:  # nn.LSTM's own checks (dropout, sizes)
        raise ForecastError(f"model: {err}") from None


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, then score the best weights on the test split; returns every metric."""
    check_config(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the logged config
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    datamodule, model, trainer = build(cfg)
    try:
        return fit_and_score(cfg, datamodule, model, trainer)
    except BaseException as err:
        # Lightning marks a crash FAILED, but Ctrl-C or pruning must not read as a plain failure
        # and nothing may stay RUNNING: the run's final status says what happened.
        if trainer.is_global_zero and isinstance(trainer.logger, MLFlowLogger):
            stopped = isinstance(err, KeyboardInterrupt | SystemExit | optuna.TrialPruned)
            status = "KILLED" if stopped else "FAILED"
            trainer.logger.experiment.set_terminated(trainer.logger.run_id, status)
        if isinstance(err, SIGTERMException):  # Lightning's is a SystemExit with status 0
            raise SystemExit(128 + signal.SIGTERM) from None  # 143: what schedulers expect
        raise


def fit_and_score(
    cfg: DictConfig, datamodule: ForecastDataModule, model: LSTMLitModule, trainer: pl.Trainer
) -> dict[str, float]:
    log_config(trainer.logger, cfg)
    trainer.fit(model, datamodule=datamodule)
    if any(isinstance(c, GracefulInterrupt) and c.interrupted for c in trainer.callbacks):
        raise KeyboardInterrupt("training stopped by Ctrl-C")
    metrics = load_best(trainer, model)
    if not trainer.is_global_zero:  # one checkpoint, one score, one set of artifacts
        return metrics
    model_path = save_checkpoint(
        Path(cfg.paths.output_dir) / "model.pt", model.net, datamodule.spec
    )
    outputs = RunOutputs(
        model_path,
        metrics,
        data_changes=datamodule.changes(),
    )
    if cfg.test:  # the model and the baselines on every test window
        test = datamodule.datasets["test"]
        outputs.evaluation = evaluate_windows(
            model.net, datamodule, test, cfg.season, loss=model.loss
        )
        outputs.metrics |= outputs.evaluation.metrics("test")
    if isinstance(trainer.logger, MLFlowLogger):
        log_outputs(trainer.logger, cfg, model, datamodule, outputs)
    report(cfg, trainer.logger, outputs)
    return outputs.metrics


def log_config(logger: object, cfg: DictConfig) -> None:
    """Every key as an MLflow param, and the resolved config as an artifact."""
    logger.log_hyperparams(flat_params(cfg))
    if isinstance(logger, MLFlowLogger):
        logger.experiment.log_text(
            logger.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml"
        )


def load_best(trainer: pl.Trainer, model: LSTMLitModule) -> dict[str, float]:
    """Put the best epoch's weights (by validation loss) into ``model``; its score."""
    checkpoint = trainer.checkpoint_callback
    if not checkpoint:
        return {}
    if checkpoint.best_model_path:
        # Our own Lightning checkpoint from this run, so unpickling it is safe.
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        model.load_state_dict(best["state_dict"])
    return {"best_val_loss": float(checkpoint.best_model_score)}


def log_outputs(
    logger: MLFlowLogger,
    cfg: DictConfig,
    model: LSTMLitModule,
    datamodule: ForecastDataModule,
    outputs: RunOutputs,
) -> None:
    """The checkpoint, the test evaluation (metrics, curves, plots) and the pyfunc model."""
    client, run_id = logger.experiment, logger.run_id
    client.log_artifact(run_id, str(outputs.model_path), Path(ARTIFACT_PATH).parent.as_posix())
    if outputs.evaluation is not None:
        logger.log_metrics(outputs.evaluation.metrics("test"))
        folder = outputs.model_path.parent
        log_evaluation(logger, outputs.evaluation, "test", model.net, datamodule, folder)
    changes = {metric: count for metric, count, _ in outputs.data_changes}
    logger.log_metrics({"best_val_loss": outputs.metrics["best_val_loss"], **changes})
    # A sweep registers its best trial alone, at its end (forecast.sweep.SweepTracker).
    register = None if in_multirun() else cfg.register_model
    with mlflow.start_run(run_id=run_id):
        log_pyfunc(outputs.model_path, datamodule.example_input(), register)


def report(cfg: DictConfig, logger: object, outputs: RunOutputs) -> None:
    """The model next to the baselines, and where the run, checkpoint and config went; every
    metric is in the MLflow run, so the console shows the ones a reader compares."""
    metrics = outputs.metrics
    lines = [""]
    lines += [f"data: {count} {line}" for _, count, line in outputs.data_changes if count]
    if "best_val_loss" in metrics:
        lines.append(f"best val_loss {metrics['best_val_loss']:.4f}")
    if outputs.evaluation is not None:
        evaluation = outputs.evaluation
        lines += [f"test split, season {evaluation.season}:", evaluation.table()]
        if "test_mae_orig" in metrics:
            lines.append(
                f"model in the data's units: MAE {metrics['test_mae_orig']:.4g}, "
                f"RMSE {metrics['test_rmse_orig']:.4g}"
            )
    lines.append("")
    if isinstance(logger, MLFlowLogger):
        lines.append(f"MLflow run   {logger.run_id} in {cfg.logger.tracking_uri}")
    config_path = Path(cfg.paths.output_dir) / ".hydra" / "config.yaml"
    lines += [f"checkpoint   {outputs.model_path}", f"config       {config_path}"]
    log.info("\n".join(lines))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@exit_on_error
def main(cfg: DictConfig) -> float:
    """Returns the best validation loss, the objective a Hydra sweeper minimizes."""
    return train(cfg).get("best_val_loss", float("nan"))


if __name__ == "__main__":
    main()
