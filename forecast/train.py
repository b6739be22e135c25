"""``forecast-train``: fit, test and save a model from a Hydra config, tracked in MLflow.

forecast-train                                     # ETTh1, lookback 96, horizon 96
forecast-train model.hidden_size=128 data.horizon=336
forecast-train experiment=etth1_h720
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import hydra
import mlflow
import optuna
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from forecast.config import check_config, exit_on_error, in_multirun, use_threads
from forecast.data.datamodule import ForecastDataModule
from forecast.evaluation.report import RunOutputs, report
from forecast.evaluation.scoring import evaluate_windows, mean_loss
from forecast.evaluation.tracking import log_evaluation, log_provenance
from forecast.model.calibration import conformal, coverage
from forecast.model.ensemble import Ensemble, fit_combination
from forecast.model.module import LSTMLitModule
from forecast.model.net import LSTMNet
from forecast.reference import CONF_DIR
from forecast.serving.checkpoint import ARTIFACT_PATH, save_checkpoint
from forecast.serving.pyfunc import example_input, log_pyfunc
from forecast.training.launch import joined_ranks, run_ranks, torchrun_command
from forecast.training.members import fit_members
from forecast.training.setup import build, fit, flat_params, load_best, refit

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, then score the best weights on the test split; returns every metric."""
    check_config(cfg)
    command = torchrun_command(cfg)
    if command:  # trainer=ddp: its ranks, started before any data is read
        run_ranks(command)
        return {}
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the logged config
    use_threads(cfg)
    with joined_ranks(str(cfg.trainer.get("accelerator"))):  # torchrun's: each its series
        datamodule, model, trainer = build(cfg)
        return run(cfg, datamodule, model, trainer)


def run(
    cfg: DictConfig, datamodule: ForecastDataModule, model: LSTMLitModule, trainer: pl.Trainer
) -> dict[str, float]:
    """Fit and score, every way of stopping recorded in the MLflow run."""
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
    """Fit (one model or the ensemble's members), then on rank 0: save, score the test split
    next to the baselines, log and report."""
    log_config(trainer.logger, cfg, datamodule)
    net, metrics = fit_network(cfg, datamodule, model, trainer)
    ensemble = net if isinstance(net, Ensemble) else None
    own_series = datamodule.shard.world > 1  # each rank scores its own, summed across ranks
    if not (trainer.is_global_zero or own_series):  # one score, checkpoint, set of artifacts
        return metrics
    evaluation = None
    if cfg.test:  # the model and the baselines on every test window
        # a validation ensemble fitted the linear map on these training windows already
        linear = ensemble.linear if ensemble and ensemble.combine == "validation" else None
        evaluation = evaluate_windows(
            net, datamodule, datamodule.datasets["test"], cfg.season, datamodule.stride,
            loss=model.loss, linear=linear,
        )  # fmt: skip
    if not trainer.is_global_zero:
        return metrics
    model_path = save_checkpoint(Path(cfg.paths.output_dir) / "model.pt", net, datamodule.spec)
    outputs = RunOutputs(
        model_path, metrics, data_changes=datamodule.changes(), ensemble=ensemble,
        derived=datamodule.derived, evaluation=evaluation,
    )  # fmt: skip
    if evaluation is not None:
        outputs.metrics |= evaluation.metrics("test")
    run = None
    if isinstance(trainer.logger, MLFlowLogger):
        log_outputs(trainer.logger, cfg, net, datamodule, outputs)
        if ensemble is not None:  # fit() closed the run, unless members had their own
            trainer.logger.finalize("success")
        run = f"{trainer.logger.run_id} in {cfg.logger.tracking_uri}"
    log.info(report(outputs, run, Path(cfg.paths.output_dir) / ".hydra" / "config.yaml"))
    return outputs.metrics


def fit_network(
    cfg: DictConfig, datamodule: ForecastDataModule, model: LSTMLitModule, trainer: pl.Trainer
) -> tuple[LSTMNet | Ensemble, dict[str, float]]:
    """The trained network (the model's, or the ensemble of ``ensemble.size`` members, or
    with ``ensemble.combine=validation`` the model or members combined with the baselines)
    and the sweeper's objective ``best_val_loss``."""
    ensemble = cfg.get("ensemble", {})
    season = cfg.season or datamodule.season
    if ensemble.get("size", 1) == 1:
        fit(trainer, model, datamodule)
        best = load_best(trainer, model)
        members = [model]
    else:
        best = {}
        members = fit_members(cfg, datamodule, model, trainer.logger)
    combined = None
    if len(members) > 1 or ensemble.get("combine", "mean") == "validation":
        val = datamodule.datasets["val"]
        combined = fit_combination(
            [m.net for m in members], datamodule.spec, cfg.ensemble.combine, season,
            datamodule.datasets["train"], val, datamodule.stride,
        )  # fmt: skip
        # the sweeper's objective: the combination's loss on the validation windows
        loss = mean_loss(combined, val, model.loss, datamodule.stride)
        best = best | {"best_val_loss": loss}
    if cfg.get("refit"):  # the weights were chosen on validation: now it trains too
        epochs = int(best.get("best_epoch", cfg.trainer.max_epochs))
        again = refit(cfg, datamodule, epochs, season)
        model.net.load_state_dict(again.net.state_dict())
        log.info("refit on the training and validation rows for %d epoch(s)", epochs)
    net = combined or model.net
    return net, best | check_intervals(net, datamodule, cfg.get("conformal", False))


def check_intervals(
    net: LSTMNet | Ensemble, datamodule: ForecastDataModule, calibrate: bool
) -> dict[str, float]:
    """With quantiles, the interval's coverage on the validation windows (``val_coverage``);
    with ``calibrate`` (``conformal=true``), the quantiles calibrated there and the coverage
    after (``val_coverage_conformal``)."""
    levels, val = net.config.quantiles, datamodule.datasets["val"]
    windows = torch.tensor([float(len(val))], dtype=torch.float64)
    if not levels or not val.shard.summed(windows)[0]:  # every rank's windows
        return {}
    out = {"val_coverage": coverage(net, val, levels, datamodule.stride)}
    if calibrate:
        net.calibration = conformal(net, val, levels)
        out["val_coverage_conformal"] = coverage(net, val, levels, datamodule.stride)
    return out


def log_config(logger: object, cfg: DictConfig, datamodule: ForecastDataModule) -> None:
    """Every key as an MLflow param (a key left null as the value the data chose), the
    resolved config as an artifact, the data file as the run's dataset input and the git
    commit."""
    logger.log_hyperparams(flat_params(cfg) | datamodule.derived)
    if isinstance(logger, MLFlowLogger):
        logger.experiment.log_text(
            logger.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml"
        )
        log_provenance(logger, datamodule.spec)


def log_outputs(
    logger: MLFlowLogger,
    cfg: DictConfig,
    net: LSTMNet | Ensemble,
    datamodule: ForecastDataModule,
    outputs: RunOutputs,
) -> None:
    """The checkpoint, the test evaluation (metrics, curves, plots), an ensemble's weights
    (as params ``ensemble.weight.<candidate>``) and the pyfunc model."""
    client, run_id = logger.experiment, logger.run_id
    client.log_artifact(run_id, str(outputs.model_path), Path(ARTIFACT_PATH).parent.as_posix())
    if outputs.evaluation is not None:
        logger.log_metrics(outputs.evaluation.metrics("test"))
        folder = outputs.model_path.parent
        log_evaluation(logger, outputs.evaluation, "test", net, datamodule, folder)
    if outputs.ensemble is not None and outputs.ensemble.combine == "validation":
        chosen = outputs.ensemble.chosen()
        logger.log_hyperparams({f"ensemble.weight.{c}": w for c, w in chosen.items()})
    changes = {metric: count for metric, count, _ in outputs.data_changes}
    logged = ("best_val_loss", "val_coverage", "val_coverage_conformal")
    logger.log_metrics({k: outputs.metrics[k] for k in logged if k in outputs.metrics} | changes)
    # A sweep registers its best trial alone, at its end (forecast.training.sweep.SweepTracker).
    register = None if in_multirun() else cfg.register_model
    with mlflow.start_run(run_id=run_id):
        log_pyfunc(outputs.model_path, example_input(datamodule), register)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
@exit_on_error
def main(cfg: DictConfig) -> float:
    """Returns the best validation loss, the objective a Hydra sweeper minimizes."""
    return train(cfg).get("best_val_loss", float("nan"))


if __name__ == "__main__":
    main()
