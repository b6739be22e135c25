"""From a config to the objects of a run, and fitting them: the DataModule (read and checked
first), the LightningModule sized from its spec, the logger and the Trainer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger

from forecast.console import progress_bar
from forecast.data.datamodule import ForecastDataModule
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.config import COUNT_LOSSES, derived_segment
from forecast.model.module import LSTMLitModule
from forecast.training.callbacks import GracefulInterrupt
from forecast.training.sweep import PARENT_RUN_ENV, sqlite_lock


def build(cfg: DictConfig) -> tuple[ForecastDataModule, LSTMLitModule, pl.Trainer]:
    """Instantiate data, model and trainer; the data is read and checked before anything else,
    and the model is sized from its DataSpec."""
    try:
        datamodule = build_data(cfg)
        model = build_model(cfg.model, datamodule.spec, cfg.season or datamodule.season)
        if cfg.model.get("segment_len", 1) is None:
            datamodule.derived["model.segment_len"] = model.net.config.segment_len
        parent = os.environ.get(PARENT_RUN_ENV)
        if parent:  # a sweep's trial, named by what it tries rather than alike
            trial = " ".join(HydraConfig.get().overrides.task)
            logger = build_logger(cfg, {"mlflow.parentRunId": parent}, run_name=trial)
        else:
            logger = build_logger(cfg, None)
        trainer = build_trainer(cfg, logger)
    except InstantiationException as err:
        raise ForecastError(str(err).strip()) from None
    return datamodule, model, trainer


def build_data(cfg: DictConfig) -> ForecastDataModule:
    """The DataModule, set up. ``data.scaling`` left null takes one scaler per column for a
    model that works in the data's units (count losses, ``model.nonnegative``): the only
    scaling those take."""
    floored = cfg.model.get("nonnegative") or cfg.model.get("loss") in COUNT_LOSSES
    by_column = floored and cfg.data.get("scaling") is None
    units = {"scaling": "column"} if by_column else {}
    datamodule: ForecastDataModule = instantiate(cfg.data, **units)
    datamodule.setup("fit")
    if by_column and len(datamodule.bounds) > 1:
        datamodule.derived["data.scaling"] = "column"
    return datamodule


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


def build_model(cfg: DictConfig, spec: DataSpec, season: int = 1) -> LSTMLitModule:
    """``conf/model`` completed with the data's spec (and ``model.segment_len=null`` with a
    divisor of the lookback near the ``season``); the network refuses bad sizes here."""
    partial = instantiate(cfg, _convert_="all")  # plain lists in hparams, not ListConfig
    derived = {}
    if cfg.get("segment_len", 1) is None:
        derived["segment_len"] = derived_segment(spec.lookback, season)
    try:
        return partial(spec=spec, **derived)
    except ForecastError:
        raise
    except (TypeError, ValueError) as err:  # nn.LSTM's own checks (dropout, sizes)
        raise ForecastError(f"model: {err}") from None


def fit(trainer: pl.Trainer, model: LSTMLitModule, datamodule: ForecastDataModule) -> None:
    trainer.fit(model, datamodule=datamodule)
    if any(isinstance(c, GracefulInterrupt) and c.interrupted for c in trainer.callbacks):
        raise KeyboardInterrupt("training stopped by Ctrl-C")


def load_best(trainer: pl.Trainer, model: LSTMLitModule) -> dict[str, float]:
    """Put the best epoch's weights (by validation loss) into ``model``; its score and its
    epoch (counted from 1)."""
    checkpoint = trainer.checkpoint_callback
    if not checkpoint:
        return {}
    epochs = trainer.current_epoch
    if checkpoint.best_model_path:
        # Our own Lightning checkpoint from this run, so unpickling it is safe.
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
        model.load_state_dict(best["state_dict"])
        epochs = best["epoch"] + 1
    return {"best_val_loss": float(checkpoint.best_model_score), "best_epoch": float(epochs)}


def refit(
    cfg: DictConfig, datamodule: ForecastDataModule, epochs: int, season: int
) -> LSTMLitModule:
    """``refit=true``: the same configuration trained again, from the same seed, on the
    training and validation rows together for the ``epochs`` the first fit found best
    (AutoGluon's refit_full): the forecast then learns from the steps just before the test,
    which matter most. No checkpoint or early stop (nothing is held out); its epochs are not
    logged again."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule.merge_validation()
    model = build_model(cfg.model, datamodule.spec, season)
    callbacks = {
        name: c for name, c in cfg.get("callbacks", {}).items()
        if not c["_target_"].endswith(("ModelCheckpoint", "EarlyStopping"))
    }  # fmt: skip
    again = OmegaConf.merge(cfg, {"trainer": {"max_epochs": epochs, "min_epochs": epochs}})
    again.callbacks = callbacks  # a merge would keep the ones left out
    fit(build_trainer(again, logger=False), model, datamodule)
    return model


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as MLflow params, keys dotted like overrides: ``model.hidden_size``."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat
