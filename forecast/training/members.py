"""Ensemble members: trained one after the other, or several at once in processes of their
own, each in an MLflow run that is a child of the ensemble's."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import optuna
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from forecast.console import quiet_libraries
from forecast.data.datamodule import ForecastDataModule
from forecast.errors import ForecastError
from forecast.model.module import LSTMLitModule
from forecast.training.setup import (
    build_data,
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
    ensemble's, and its own best-epoch checkpoint; a member that fails (or whose process is
    killed) is reported and left out, the others go on. The first member is the model a
    plain run trains."""
    run = parent_run(parent)
    parallel = min(cfg.ensemble.get("parallel", 1), cfg.ensemble.size)
    if parallel > 1:
        trained = fit_at_once(cfg, run, parallel)
        members = []
        for k, weights in sorted(trained.items()):
            model = first if k == 0 else member_model(cfg, datamodule)
            model.net.load_state_dict(torch.load(weights, weights_only=True))
            members.append(model)
    else:
        each = (fit_in_turn(cfg, datamodule, first, run, k) for k in range(cfg.ensemble.size))
        members = [member for member in each if member is not None]
    if not members:
        raise ForecastError("every ensemble member failed (see the errors above)")
    return members


def member_model(cfg: DictConfig, datamodule: ForecastDataModule) -> LSTMLitModule:
    """A member's model, sized as the first."""
    return build_model(cfg.model, datamodule.spec, cfg.season or datamodule.season)


def fit_in_turn(
    cfg: DictConfig,
    datamodule: ForecastDataModule,
    first: LSTMLitModule,
    run: tuple[str, str] | None,
    k: int,
) -> LSTMLitModule | None:
    """Member ``k`` trained in this process; None, with the error logged, if it failed."""
    try:
        if k:
            pl.seed_everything(cfg.seed + k, workers=True, verbose=False)
        model = first if k == 0 else member_model(cfg, datamodule)
        fit_member(cfg, datamodule, model, run, k)
        return model
    except optuna.TrialPruned:
        raise
    except Exception as err:  # any failure of one member spares the others
        log.error("ensemble member %d (seed %d) failed, the others go on: %s",
                  k, cfg.seed + k, err)  # fmt: skip
        return None


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
    except BaseException as err:
        if isinstance(logger, MLFlowLogger):
            stopped = isinstance(err, KeyboardInterrupt | SystemExit)  # a signal, not a fault
            logger.experiment.set_terminated(logger.run_id, "KILLED" if stopped else "FAILED")
        raise


def parent_run(logger: Any) -> tuple[str, str] | None:
    """The ensemble's MLflow run, as its members need it: id and name; None on a DDP rank
    other than 0, which logs nothing."""
    if not isinstance(logger, MLFlowLogger) or rank_zero_only.rank != 0:
        return None
    return logger.run_id, logger.experiment.get_run(logger.run_id).info.run_name


def fit_at_once(cfg: DictConfig, run: tuple[str, str] | None, parallel: int) -> dict[int, Path]:
    """Every member in a process of its own, ``parallel`` at a time, each with its share of
    the cores' threads; returns the weights file of each member that finished. A member
    whose process fails or is killed (the OOM killer's SIGKILL) is logged and left out, its
    run closed FAILED. Ctrl-C or SIGTERM here stops every member (SIGTERM, then SIGKILL
    after ``STOP_S``), closes their runs KILLED and is raised on: nothing is left running."""
    threads = max(1, (cfg.get("threads") or os.cpu_count() or 1) // parallel)
    text = OmegaConf.to_yaml(cfg, resolve=True)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    # spawn: a fresh interpreter per member, never a fork of this one's threads and locks
    context = multiprocessing.get_context("spawn")
    waiting, running, trained = list(range(cfg.ensemble.size)), {}, {}
    main = threading.current_thread() is threading.main_thread()  # where handlers can be set
    previous = signal.signal(signal.SIGTERM, _raise_sigterm) if main else None
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                k = waiting.pop(0)
                args = (text, k, run, threads, folder / f"member_{k}")
                running[k] = context.Process(target=member_process, args=args, name=f"member {k}")
                running[k].start()
            wait([process.sentinel for process in running.values()])
            for k, process in [(k, p) for k, p in running.items() if p.exitcode is not None]:
                del running[k]
                weights = folder / f"member_{k}" / "weights.pt"
                if process.exitcode == 0 and weights.is_file():
                    trained[k] = weights
                    continue
                log.error("ensemble member %d (seed %d) %s; the others go on",
                          k, cfg.seed + k, _ended(process.exitcode))  # fmt: skip
                close_member_run(cfg, run, k, "FAILED")
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        stop(running.values())
        for k in running:
            close_member_run(cfg, run, k, "KILLED")
    return trained


STOP_S = 10  # how long a member has to stop on SIGTERM (its current batch) before SIGKILL


def _raise_sigterm(signum: int, frame: Any) -> None:
    raise SIGTERMException  # forecast.train closes the run KILLED and exits 143


def _ended(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name} (out of memory, or stopped)"
    return f"failed (exit status {exitcode}; its error is above)"


def stop(processes: Iterable[BaseProcess]) -> None:
    """Members stopped: SIGTERM (Lightning ends the batch and closes the run), then SIGKILL
    for any that outlast ``STOP_S``."""
    processes = [p for p in processes if p.is_alive()]
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def close_member_run(cfg: DictConfig, run: tuple[str, str] | None, k: int, status: str) -> None:
    """Member ``k``'s MLflow run, if its process left it RUNNING, closed with ``status``."""
    if run is None:
        return
    client = MlflowClient(cfg.logger.tracking_uri)
    parent = client.get_run(run[0])
    names = f"tags.mlflow.runName = '{run[1]}_member{k}'"
    found = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{run[0]}' and {names} and attributes.status = 'RUNNING'",
    )
    for child in found:
        client.set_terminated(child.info.run_id, status)


def member_process(
    text: str, k: int, run: tuple[str, str] | None, threads: int, folder: Path
) -> None:
    """Member ``k`` trained in a process of its own (``fit_at_once``), its weights written to
    ``folder/weights.pt``. It ignores Ctrl-C (its parent stops it) and, on Linux, is sent
    SIGTERM if its parent dies, whatever killed the parent: never an orphan."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _follow_parent()
    # force: the member's lines are prefixed with its number
    logging.basicConfig(level=logging.INFO, format=f"[member {k}] %(message)s", force=True)
    quiet_libraries()
    cfg = OmegaConf.create(text)
    torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed + k, workers=True, verbose=False)
    datamodule = build_data(cfg)
    model = member_model(cfg, datamodule)
    fit_member(cfg, datamodule, model, run, k)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.net.state_dict(), folder / "weights.pt")


def _follow_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(1)


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
