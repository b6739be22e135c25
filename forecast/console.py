"""What a command prints, decided in one place: the progress bar and our report stay;
third-party lines that tell the user of a command nothing are silenced here."""

from __future__ import annotations

import logging
import os
import sys
import warnings


def quiet_libraries() -> None:
    """Silence what a run would otherwise print around its own output: Lightning's hardware
    lines and its LitLogger advert, MLflow's store migrations, signature checks and artifact
    download bar, and warnings about library internals. Real warnings and errors still show."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # "GPU available: ...", "TPU available: ...", "Tip: ... litlogger": rank_zero_info
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # We log our own pyfunc class on purpose, and a new store has no experiment yet.
    drop("mlflow.pyfunc", "Passing a Python object as `python_model`")
    drop("pytorch_lightning.loggers.mlflow", "not found. Creating it")
    for message in (
        r".*isinstance\(treespec, LeafSpec\)",  # inside Lightning's own pytree helpers
        r"The number of training batches .* is smaller than the logging interval",
        r".*does not have many workers",  # the loaders gather windows in the main process
        # a composite timestamp's parts (year, ..., hour) are integers and never missing
        r"Hint: Inferred schema contains integer column",
    ):
        warnings.filterwarnings("ignore", message=message)


def drop(logger: str, text: str) -> None:
    logging.getLogger(logger).addFilter(lambda record: text not in record.getMessage())


def progress_bar(setting: bool | None) -> bool:
    """``trainer.enable_progress_bar: null`` draws the bar on a terminal only: redrawn into a
    file or a pipe it is hundreds of kilobytes of carriage returns (a line per epoch is logged
    instead, forecast.training.callbacks.EpochLog)."""
    return sys.stderr.isatty() if setting is None else setting
