"""Where the Hydra configs live, and how a config becomes MLflow parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

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
