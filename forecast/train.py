"""``forecast-train``: fit, test and save a model from a Hydra config, tracked in MLflow.

forecast-train                                     # ETTh1, lookback 96, horizon 96
forecast-train model.hidden_size=128 data.horizon=336
forecast-train experiment=etth1_h720
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import mlflow
import optuna
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from forecast.callbacks import GracefulInterrupt
from forecast.checkpoint import ARTIFACT_PATH, save_checkpoint
from forecast.config import CONF_DIR, check_config, exit_on_error, flat_params, in_multirun
from forecast.console import progress_bar, quiet_libraries
from forecast.data import season_from_freq
from forecast.ensemble import Ensemble, fit_combination
from forecast.errors import ForecastError
from forecast.evaluate import log_evaluation
from forecast.mlflow_model import log_pyfunc
from forecast.model import LSTMLitModule, LSTMNet
from forecast.scoring import Evaluation, evaluate_windows, mean_loss
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
    ensemble: Ensemble | None = None


def build(cfg: DictConfig) -> tuple[ForecastDataModule, LSTMLitModule, pl.Trainer]:
    """Instantiate data, model and trainer; the data is read and checked before anything else,
    and the model is sized from its DataSpec."""
    try:
        datamodule: ForecastDataModule = instantiate(cfg.data)
        datamodule.setup("fit")
        model = build_model(cfg.model, datamodule.spec)
        parent = os.environ.get(PARENT_RUN_ENV)
        logger = build_logger(cfg, {"mlflow.parentRunId": parent} if parent else None)
        trainer = build_trainer(cfg, logger)
    except InstantiationException as err:
        raise ForecastError(str(err).strip()) from None
    return datamodule, model, trainer


def build_logger(cfg: DictConfig, tags: dict[str, str] | None, **overrides: Any) -> Any:
    """The run's logger. Runs started together on a new SQLite store would race through its
    schema migrations and all but one fail: the first to get here creates the store, the
    experiment and its run while the others wait."""
    with sqlite_lock(str(cfg.logger.get("tracking_uri") or "")):
        logger = instantiate(cfg.logger, tags=tags, **overrides)
        if isinstance(logger, MLFlowLogger):
            logger.run_id  # noqa: B018
    return logger


def build_trainer(cfg: DictConfig, logger: Any, checkpoints: Path | None = None) -> pl.Trainer:
    """A Trainer with the configured callbacks; ``checkpoints`` moves the best-epoch
    checkpoint's folder (each ensemble member keeps its own)."""
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    for callback in callbacks:
        if checkpoints is not None and isinstance(callback, ModelCheckpoint):
            callback.dirpath = str(checkpoints)
    return instantiate(
        cfg.trainer,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=progress_bar(cfg.trainer.get("enable_progress_bar")),
    )


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
    size = cfg.get("ensemble", {}).get("size", 1)
    if size == 1:
        fit(trainer, model, datamodule)
        metrics, net, ensemble = load_best(trainer, model), model.net, None
    else:
        members = fit_members(cfg, datamodule, model, trainer.logger)
        net = ensemble = fit_combination(
            [m.net for m in members],
            datamodule.spec,
            cfg.ensemble.combine,
            cfg.season or season_from_freq(datamodule.spec.freq),
            datamodule.datasets["train"],
            datamodule.datasets["val"],
        )
        # the sweeper's objective: the combination's loss on the validation windows
        metrics = {"best_val_loss": mean_loss(ensemble, datamodule.datasets["val"], model.loss)}
    if not trainer.is_global_zero:  # one checkpoint, one score, one set of artifacts
        return metrics
    model_path = save_checkpoint(Path(cfg.paths.output_dir) / "model.pt", net, datamodule.spec)
    outputs = RunOutputs(model_path, metrics, data_changes=datamodule.changes(), ensemble=ensemble)
    if cfg.test:  # the model and the baselines on every test window
        test = datamodule.datasets["test"]
        linear = None  # a validation ensemble fitted the linear map on these windows already
        if ensemble is not None and ensemble.combine == "validation":
            linear = ensemble.linear
        outputs.evaluation = evaluate_windows(
            net, datamodule, test, cfg.season, loss=model.loss, linear=linear
        )
        outputs.metrics |= outputs.evaluation.metrics("test")
    if isinstance(trainer.logger, MLFlowLogger):
        log_outputs(trainer.logger, cfg, net, datamodule, outputs)
        if ensemble is not None:  # no fit() closed the ensemble's own run
            trainer.logger.finalize("success")
    report(cfg, trainer.logger, outputs)
    return outputs.metrics


def fit(trainer: pl.Trainer, model: LSTMLitModule, datamodule: ForecastDataModule) -> None:
    trainer.fit(model, datamodule=datamodule)
    if any(isinstance(c, GracefulInterrupt) and c.interrupted for c in trainer.callbacks):
        raise KeyboardInterrupt("training stopped by Ctrl-C")


def fit_members(
    cfg: DictConfig, datamodule: ForecastDataModule, first: LSTMLitModule, parent: Any
) -> list[LSTMLitModule]:
    """``ensemble.size`` members, seeded ``seed, seed + 1, ...``: one after the other, or
    ``ensemble.parallel`` at a time in processes of their own (on 2 cores two at once take
    less time: README, "Ensembles"). Each has its own MLflow run, a child of the
    ensemble's, and its own best-epoch checkpoint; a member that fails is reported and left
    out, the others go on. The first member is the model a plain run trains."""
    run = parent_run(parent)
    parallel = min(cfg.ensemble.get("parallel", 1), cfg.ensemble.size)
    weights = fit_at_once(cfg, run, parallel) if parallel > 1 else {}
    members = []
    for k in range(cfg.ensemble.size):
        try:
            if k and not weights:
                pl.seed_everything(cfg.seed + k, workers=True, verbose=False)
            model = first if k == 0 else build_model(cfg.model, datamodule.spec)
            if weights:
                model.net.load_state_dict(torch.load(weights[k].result(), weights_only=True))
            else:
                fit_member(cfg, datamodule, model, run, k)
        except optuna.TrialPruned:
            raise
        except Exception as err:  # any failure of one member spares the others
            log.error("ensemble member %d (seed %d) failed, the others go on: %s",
                      k, cfg.seed + k, err)  # fmt: skip
            continue
        members.append(model)
    if not members:
        raise ForecastError("every ensemble member failed (see the errors above)")
    return members


def fit_member(
    cfg: DictConfig,
    datamodule: ForecastDataModule,
    model: LSTMLitModule,
    run: tuple[str, str] | None,
    k: int,
) -> None:
    """Train member ``k`` in its own run (a child of ``run``: id and name), its best epoch's
    weights loaded into ``model``; a failure marks its run FAILED and is raised."""
    logger: Any = False
    if run is not None:
        logger = build_logger(cfg, {"mlflow.parentRunId": run[0]}, run_name=f"{run[1]}_member{k}")
        logger.log_hyperparams(flat_params(cfg) | {"seed": cfg.seed + k, "ensemble.member": k})
    folder = Path(cfg.paths.output_dir) / "checkpoints" / f"member_{k}"
    try:
        trainer = build_trainer(cfg, logger, folder)
        fit(trainer, model, datamodule)
        load_best(trainer, model)
    except BaseException:
        if isinstance(logger, MLFlowLogger):
            logger.experiment.set_terminated(logger.run_id, "FAILED")
        raise


def parent_run(logger: Any) -> tuple[str, str] | None:
    """The ensemble's MLflow run, as its members need it: id and name."""
    if not isinstance(logger, MLFlowLogger):
        return None
    return logger.run_id, logger.experiment.get_run(logger.run_id).info.run_name


def fit_at_once(cfg: DictConfig, run: tuple[str, str] | None, parallel: int) -> dict[int, Future]:
    """Every member in a process of its own, ``parallel`` at a time, each with its share of
    the cores' threads; returns, per member, the future of its weights file."""
    threads = max(1, (cfg.get("threads") or os.cpu_count() or 1) // parallel)
    text = OmegaConf.to_yaml(cfg, resolve=True)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    # spawn: a fresh interpreter per member, never a fork of this one's threads and locks
    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        return {
            k: pool.submit(member_process, text, k, run, threads, folder / f"member_{k}")
            for k in range(cfg.ensemble.size)
        }


def member_process(
    text: str, k: int, run: tuple[str, str] | None, threads: int, folder: Path
) -> Path:
    """Member ``k`` trained in a process of its own (``fit_at_once``); its weights' file."""
    # force: a worker process trains one member after another, each under its own name
    logging.basicConfig(level=logging.INFO, format=f"[member {k}] %(message)s", force=True)
    quiet_libraries()
    cfg = OmegaConf.create(text)
    torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed + k, workers=True, verbose=False)
    datamodule: ForecastDataModule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = build_model(cfg.model, datamodule.spec)
    fit_member(cfg, datamodule, model, run, k)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.net.state_dict(), folder / "weights.pt")
    return folder / "weights.pt"


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
    if outputs.ensemble is not None:
        ensemble = outputs.ensemble
        lines.append(
            f"ensemble of {len(ensemble.members)} members, ensemble.combine={ensemble.combine}"
        )
        if ensemble.combine == "validation":
            chosen = [f"{c} {w:.2f}" for c, w in ensemble.chosen().items() if w]
            lines.append(f"weights chosen on the validation split: {', '.join(chosen)}")
        lines.append(f"the combination's val_loss {metrics['best_val_loss']:.4f}")
    elif "best_val_loss" in metrics:
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
