"""Where the Hydra configs live, the checks a config passes before any work starts, and the
CLI boundary that turns a ForecastError into one line and an exit code."""

from __future__ import annotations

import functools
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from forecast.console import quiet_libraries
from forecast.data.options import DataOptions, counting
from forecast.errors import ForecastError
from forecast.model.ensemble import COMBINES

# ${stem:path}: a file's name without folder and suffix, for run names
OmegaConf.register_new_resolver("stem", lambda path: Path(str(path)).stem, replace=True)


def exit_on_error(func: Callable[..., Any]) -> Callable[..., Any]:
    """The CLI boundary: third-party noise silenced (forecast.console), a ForecastError reported
    as one line on stderr and exit 1 instead of a traceback (and Ctrl-C as one line and exit
    130).

    In a multirun the error is re-raised instead: Hydra records the job as failed and the
    sweep goes on with the next trial, where exiting would end the whole sweep.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        quiet_libraries()
        try:
            return func(*args, **kwargs)
        except ForecastError as err:
            if in_multirun():
                raise
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        except MissingMandatoryValue as err:  # a ??? key left unset, or what points at one
            if in_multirun():
                raise
            print(f"error: {err.full_key}=... is required (--help lists the keys)", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt as err:  # the run is closed as KILLED already; no traceback
            if in_multirun():
                raise
            print(f"stopped: {str(err) or 'Ctrl-C'}", file=sys.stderr)
            raise SystemExit(128 + signal.SIGINT) from None

    return wrapper


def model_uri(cfg: DictConfig) -> str:
    """The model a serving command loads: ``ckpt_path``, or ``model`` (its earlier name)."""
    uri = cfg.get("ckpt_path") or cfg.get("model")
    if not uri:
        raise ForecastError(
            "ckpt_path=... is required: a model.pt path, runs:/<run_id>[/model] or "
            "models:/<name>/<version>"
        )
    return str(uri)


def use_threads(cfg: DictConfig) -> None:
    """``threads``: torch's intra-op threads, where the command sets them (null: per core)."""
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(cfg.threads)


def in_multirun() -> bool:
    """Whether this is a trial of a sweep (``-m``) rather than a run of its own."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class OutputDir(Callback):
    """Hydra makes the run's directory before any code of ours runs, so a folder that cannot be
    made or written (``paths.log_dir`` read-only, or below a file) was a traceback from Hydra's
    internals. Made here first, it is one line and exit status 1."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        make_output_dir(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        make_output_dir(config.hydra.sweep.dir)


def make_output_dir(folder: str) -> None:
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        print(
            f"error: cannot write the run's folder {folder} ({err.strerror}); "
            "set paths.log_dir to a writable folder",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def check_conformal(cfg: DictConfig) -> None:
    """``conformal=true`` needs quantiles to move and validation windows no model trained on."""
    if cfg.get("conformal", False) not in (True, False):
        raise ForecastError(f"conformal={cfg.conformal!r} must be true or false")
    if not cfg.get("conformal"):
        return
    model = cfg.get("model") or {}
    if not (model.get("quantiles") or model.get("distribution")):
        raise ForecastError(
            "conformal=true calibrates quantiles: set model.quantiles (e.g. [0.1,0.9]) or "
            "model.distribution"
        )
    if cfg.get("refit"):
        raise ForecastError(
            "conformal=true calibrates on the validation windows, which refit=true trains on: "
            "set one of them"
        )


def check_config(cfg: DictConfig) -> None:
    """One pass over the values Hydra lets through that would fail late or as a traceback:
    before any data is read, so a bad key costs seconds, not a training run. The data keys are
    DataOptions' to check."""
    if cfg.get("data") is not None:
        data = OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=False)
        DataOptions(**{k: v for k, v in data.items() if k != "_target_"})
    for key, null in (("threads", "for one per core"), ("season", "to infer it")):
        value = cfg.get(key)
        if value is not None and not counting(value):
            raise ForecastError(f"{key}={value!r} must be an integer >= 1, or null {null}")
    ensemble = cfg.get("ensemble") or {}
    for key in ("size", "parallel"):
        if not counting(ensemble.get(key, 1)):
            raise ForecastError(f"ensemble.{key}={ensemble.get(key)!r} must be an integer >= 1")
    if ensemble.get("combine", "mean") not in COMBINES:
        raise ForecastError(f"ensemble.combine={ensemble.combine!r} must be one of {COMBINES}")
    if cfg.get("refit", False) not in (True, False):
        raise ForecastError(f"refit={cfg.refit!r} must be true or false")
    if cfg.get("refit") and ensemble.get("size", 1) > 1:
        raise ForecastError("refit=true retrains one model: set ensemble.size=1")
    check_conformal(cfg)
    lr = OmegaConf.select(cfg, "model.optimizer.lr")
    if lr is not None and (not isinstance(lr, int | float) or lr < 0):
        raise ForecastError(f"model.optimizer.lr={lr!r} must be a number >= 0")
