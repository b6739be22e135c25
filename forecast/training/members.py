"""Ensemble members: trained one after the other, or several at once in processes of their
own, each in an MLflow run that is a child of the ensemble's."""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import optuna
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

from forecast.console import quiet_libraries
from forecast.data.datamodule import ForecastDataModule
from forecast.errors import ForecastError
from forecast.model.module import LSTMLitModule
from forecast.training.setup import (
    build_logger,
    build_model,
    build_trainer,
    fit,
    flat_params,
    load_best,
)

log = logging.getLogger(__name__)


def fit_members(
    cfg: DictConfig, datamodule: ForecastDataModule, first: LSTMLitModule, parent: Any
) -> list[LSTMLitModule]:
    """``ensemble.size`` members, seeded ``seed, seed + 1, ...``: one after the other, or
    ``ensemble.parallel`` at a time in processes of their own (on 2 cores two at once take
    less time: docs/benchmarks/ensembles.md). Each has its own MLflow run, a child of the
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
