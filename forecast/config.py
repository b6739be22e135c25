"""Where the Hydra configs live, how a config becomes MLflow parameters, and the CLI boundary
that turns a ForecastError into one line and an exit code."""

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

from forecast.console import quiet_libraries
from forecast.errors import ForecastError

_HERE = Path(__file__).resolve().parent
# conf/ of a source checkout (editable install), else the copy a wheel packs into forecast/.
# A copy of the code without configs (inside a logged MLflow model) must still import.
CONF_DIR = str(next((p for p in (_HERE.parent / "conf", _HERE / "conf") if p.is_dir()), _HERE))
# ${stem:path}: a file's name without folder and suffix, for run names
OmegaConf.register_new_resolver("stem", lambda path: Path(str(path)).stem, replace=True)
# Using a model has its own configs: there `model=` names a model file, not the config group.
SERVING_CONF_DIR = str(Path(CONF_DIR) / "serving")


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
        except KeyboardInterrupt as err:  # the run is closed as KILLED already; no traceback
            if in_multirun():
                raise
            print(f"stopped: {err or 'Ctrl-C'}", file=sys.stderr)
            raise SystemExit(128 + signal.SIGINT) from None

    return wrapper


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


def check_config(cfg: DictConfig) -> None:
    """One pass over the values Hydra lets through that would fail late or as a traceback:
    before any data is read, so a bad key costs seconds, not a training run."""
    data = cfg.get("data") or {}
    for key in ("lookback", "horizon", "batch_size"):
        if key in data and not counting(data.get(key)):
            raise ForecastError(f"data.{key}={data.get(key)!r} must be an integer >= 1")
    optional = {  # null means something: what, in the message
        "threads": (cfg.get("threads"), "for one per core"),
        "data.max_rows": (data.get("max_rows"), "for no limit"),
        "season": (cfg.get("season"), "to infer it"),
    }
    for key, (value, null) in optional.items():
        if value is not None and not counting(value):
            raise ForecastError(f"{key}={value!r} must be an integer >= 1, or null {null}")
    from forecast.data import DUPLICATE_RULES, FILL_METHODS, GAP_METHODS, SHORT_SERIES_RULES

    if data.get("duplicates", "error") not in DUPLICATE_RULES:
        raise ForecastError(f"data.duplicates={data.duplicates!r} must be one of {DUPLICATE_RULES}")
    if data.get("short_series", "error") not in SHORT_SERIES_RULES:
        rules = " or ".join(SHORT_SERIES_RULES)
        raise ForecastError(f"data.short_series={data.short_series!r} must be {rules}")
    for key, methods in (("fill_gaps", GAP_METHODS), ("fill_missing", FILL_METHODS)):
        if data.get(key) is not None and data.get(key) not in methods:
            raise ForecastError(f"data.{key}={data.get(key)!r} must be one of {methods}, or null")
    if data.get("freq") is not None:
        import pandas as pd

        try:
            pd.tseries.frequencies.to_offset(data.freq)
        except ValueError:
            raise ForecastError(
                f"data.freq={data.freq!r} is not a pandas frequency (e.g. h, 15min, D, W-SUN, MS)"
            ) from None
    ensemble = cfg.get("ensemble") or {}
    for key in ("size", "parallel"):
        if not counting(ensemble.get(key, 1)):
            raise ForecastError(f"ensemble.{key}={ensemble.get(key)!r} must be an integer >= 1")
    from forecast.ensemble import COMBINES

    if ensemble.get("combine", "mean") not in COMBINES:
        raise ForecastError(f"ensemble.combine={ensemble.combine!r} must be one of {COMBINES}")
    lr = OmegaConf.select(cfg, "model.optimizer.lr")
    if lr is not None and (not isinstance(lr, int | float) or lr < 0):
        raise ForecastError(f"model.optimizer.lr={lr!r} must be a number >= 0")


def counting(value: Any) -> bool:
    """An integer >= 1 (YAML's true is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
