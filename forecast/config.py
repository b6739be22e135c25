"""Where the Hydra configs live, how a config becomes MLflow parameters, and the CLI boundary
that turns a ForecastError into one line and an exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from forecast.errors import ForecastError

_HERE = Path(__file__).resolve().parent
# conf/ of a source checkout (editable install), else the copy a wheel packs into forecast/.
# A copy of the code without configs (inside a logged MLflow model) must still import.
CONF_DIR = str(next((p for p in (_HERE.parent / "conf", _HERE / "conf") if p.is_dir()), _HERE))
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
    """Report a ForecastError as one line on stderr and exit 1 instead of a traceback.

    In a multirun the error is re-raised instead: Hydra records the job as failed and the
    sweep goes on with the next trial, where exiting would end the whole sweep.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ForecastError as err:
            if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                raise
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
