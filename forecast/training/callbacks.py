"""Lightning callbacks of our own, declared in ``conf/`` like Lightning's: a clean stop on
Ctrl-C and a line per epoch for every run (``conf/callbacks/default.yaml``), and Optuna pruning
for the trials of an Optuna search (``conf/hparams_search/lstm_optuna.yaml``)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import optuna
import pytorch_lightning as pl

log = logging.getLogger(__name__)


class GracefulInterrupt(pl.Callback):
    """The first Ctrl-C stops training after the current batch; a second one stops at once.

    Lightning's own handling raises wherever the signal lands, often inside an MLflow write
    to SQLite, which can leave the database locked and the run RUNNING for good. Stopping
    between batches lets the run be closed as KILLED cleanly.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self.previous: Any = None

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # A process that ignores Ctrl-C (an ensemble member, which its parent stops) keeps
        # ignoring it.
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.signal(signal.SIGINT, self.previous)  # the next Ctrl-C is Lightning's again
        log.warning("Ctrl-C: stopping after this batch (press again to stop at once)")

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.interrupted:
            trainer.should_stop = True

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.previous is not None and not self.interrupted:
            signal.signal(signal.SIGINT, self.previous)


class OptunaPruning(pl.Callback):
    """Report ``monitor`` after each validation epoch; raise TrialPruned when Optuna says so."""

    def __init__(self, storage: str, study_name: str, trial_id: int, monitor: str = "val_loss"):
        study = optuna.load_study(study_name=study_name, storage=storage)
        self.trial = optuna.trial.Trial(study, trial_id)
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: {self.monitor}={value:.5f}")


class EpochLog(pl.Callback):
    """What training is doing, in plain log lines: the model's size at the start, then one
    line per epoch with its losses when no progress bar is drawn (output to a file or pipe);
    under DDP from rank 0, where every rank holds the same figures."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        parameters = sum(p.numel() for p in module.parameters())
        log.info("training %s, %s parameters", type(module.net).__name__, f"{parameters:,}")

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.progress_bar_callback is not None or not trainer.is_global_zero:
            return
        losses = "  ".join(
            f"{name} {float(trainer.callback_metrics[name]):.4f}"
            for name in ("train_loss", "val_loss")
            if name in trainer.callback_metrics
        )
        elapsed = time.perf_counter() - self.start
        log.info("epoch %d/%d  %s  (%.1f s)", trainer.current_epoch + 1, trainer.max_epochs,
                 losses, elapsed)  # fmt: skip
