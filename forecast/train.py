"""``forecast-train``: fit, test and save a model from a Hydra config, tracked in MLflow.

forecast-train                                     # ETTh1, lookback 96, horizon 96
forecast-train model.hidden_size=128 data.horizon=336
forecast-train experiment=etth1_h720
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
import mlflow
import optuna
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

from forecast.checkpoint import ARTIFACT_PATH, save_checkpoint
from forecast.config import CONF_DIR, flat_params
from forecast.errors import ForecastError, exit_on_error
from forecast.evaluate import Evaluation, evaluate_windows, log_evaluation
from forecast.mlflow_model import log_pyfunc
from forecast.model import LSTMForecaster
from forecast.sweep import PARENT_RUN_ENV, GracefulInterrupt, OptunaPruning
from forecast.windows import ForecastDataModule

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[ForecastDataModule, LSTMForecaster, pl.Trainer]:
    """Instantiate data, model and trainer; the data is read and checked before anything else."""
    try:
        datamodule: ForecastDataModule = instantiate(cfg.data)
        datamodule.setup("fit")
        model: LSTMForecaster = instantiate(
            cfg.model,
            n_features=datamodule.n_features,
            n_targets=datamodule.n_targets,
            target_index=datamodule.target_index,
            target_std=datamodule.target_std,
            _convert_="all",  # plain lists in hparams, not ListConfig
        )
        callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
        callbacks.append(GracefulInterrupt())
        if "optuna" in cfg:  # a trial of the Optuna sweeper: report each epoch, maybe pruned
            sweeper = HydraConfig.get().sweeper
            callbacks.append(
                OptunaPruning(sweeper.storage, sweeper.study_name, cfg.optuna.trial_id)
            )
        parent = os.environ.get(PARENT_RUN_ENV)
        logger = instantiate(cfg.logger, tags={"mlflow.parentRunId": parent} if parent else None)
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
    except InstantiationException as err:
        raise ForecastError(str(err).strip()) from None
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, then score the best checkpoint on the test split; returns all logged metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    try:
        return fit_and_save(cfg, datamodule, model, trainer)
    except BaseException as err:
        # Lightning marks a crash FAILED, but Ctrl-C or pruning must not read as a plain failure
        # and nothing may stay RUNNING: the run's final status says what happened.
        if trainer.is_global_zero and isinstance(trainer.logger, MLFlowLogger):
            stopped = isinstance(err, KeyboardInterrupt | SystemExit | optuna.TrialPruned)
            status = "KILLED" if stopped else "FAILED"
            trainer.logger.experiment.set_terminated(trainer.logger.run_id, status)
        raise


def fit_and_save(
    cfg: DictConfig, datamodule: ForecastDataModule, model: LSTMForecaster, trainer: pl.Trainer
) -> dict[str, float]:
    output_dir = Path(cfg.paths.output_dir)
    logger = trainer.logger
    logger.log_hyperparams(flat_params(cfg))
    if isinstance(logger, MLFlowLogger):
        logger.experiment.log_text(
            logger.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml"
        )

    trainer.fit(model, datamodule=datamodule)
    if any(isinstance(c, GracefulInterrupt) and c.interrupted for c in trainer.callbacks):
        raise KeyboardInterrupt("training stopped by Ctrl-C")
    checkpoint = trainer.checkpoint_callback
    metrics = {"best_val_loss": float(checkpoint.best_model_score)} if checkpoint else {}
    if checkpoint and checkpoint.best_model_path:
        # Our own Lightning checkpoint from this run, so unpickling it is safe.
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        model.load_state_dict(best["state_dict"])
    if cfg.test:  # under DDP every rank scores its share; the metrics are gathered exactly
        metrics |= trainer.test(model, datamodule=datamodule, verbose=False)[0]
    if not trainer.is_global_zero:  # one checkpoint, one set of artifacts
        return metrics
    model_path = save_checkpoint(
        output_dir / "model.pt", model.net_config, model.net, datamodule.spec()
    )
    evaluation, added = None, {}
    if cfg.test:  # the baselines, MASE and error curve on the same test windows
        evaluation = evaluate_windows(
            model.net, datamodule, datamodule.datasets["test"], cfg.season
        )
        # Lightning's figures where both have one: those are logged already
        added = {k: v for k, v in evaluation.metrics("test").items() if k not in metrics}
        metrics |= added
    if isinstance(logger, MLFlowLogger):
        log_outputs(logger, cfg, model, datamodule, model_path, evaluation, added)
    report(metrics, cfg, logger, model_path, evaluation)
    return metrics


def log_outputs(
    logger: MLFlowLogger,
    cfg: DictConfig,
    model: LSTMForecaster,
    datamodule: ForecastDataModule,
    model_path: Path,
    evaluation: Evaluation | None,
    evaluation_metrics: dict[str, float],
) -> None:
    """The checkpoint, the test evaluation (its metrics Lightning did not log, curves, plots)
    and the pyfunc model."""
    client, run_id = logger.experiment, logger.run_id
    client.log_artifact(run_id, str(model_path), Path(ARTIFACT_PATH).parent.as_posix())
    if evaluation is not None:
        logger.log_metrics(evaluation_metrics)
        log_evaluation(logger, evaluation, "test", model.net, datamodule, model_path.parent)
    with mlflow.start_run(run_id=run_id):
        log_pyfunc(model_path, datamodule.example_history(), cfg.register_model)


def report(
    metrics: dict[str, float],
    cfg: DictConfig,
    logger: object,
    model_path: Path,
    evaluation: Evaluation | None,
) -> None:
    """Metrics, the model next to the baselines, and where the run, checkpoint and config went."""
    lines = ["", *(f"  {k:<24}{v:>10.4f}" for k, v in sorted(metrics.items()))]
    if evaluation is not None:
        lines += ["", f"test split, season {evaluation.season}:", evaluation.table(), ""]
    if isinstance(logger, MLFlowLogger):
        lines.append(f"MLflow run   {logger.run_id} in {cfg.logger.tracking_uri}")
    config_path = Path(cfg.paths.output_dir) / ".hydra" / "config.yaml"
    lines += [f"checkpoint   {model_path}", f"config       {config_path}"]
    log.info("\n".join(lines))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@exit_on_error
def main(cfg: DictConfig) -> float:
    """Returns the best validation loss, the objective a Hydra sweeper minimizes."""
    return train(cfg).get("best_val_loss", float("nan"))


if __name__ == "__main__":
    main()
