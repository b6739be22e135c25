"""Self-contained model files: weights plus everything needed to read data and forecast.

A file holds only tensors and plain Python values, so it opens with
``torch.load(weights_only=True)``: loading a model never runs code from the file, which
matters for a server that loads files it did not write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from forecast.errors import ForecastError
from forecast.model import LSTMNet

FORMAT = "forecast.lstm"
VERSION = 1
ARTIFACT_PATH = "checkpoint/model.pt"  # where training logs the file in an MLflow run


def save_checkpoint(path: str | Path, net_config: dict[str, Any], net: LSTMNet, data: dict) -> Path:
    """Write atomically (temp file, then rename) so a crash never leaves half a model behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "net": _plain(net_config),
        "data": _plain(data),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    """Lists, dicts and scalars only: what ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    return value


def resolve(uri: str | Path) -> Path:
    """A local file or folder, or an MLflow URI, to the ``model.pt`` it holds.

    ``runs:/<run_id>`` is the checkpoint a training run logged; ``runs:/<run_id>/model`` (the
    pyfunc model) and ``models:/<name>/<version>`` are folders with a ``model.pt`` inside.
    """
    uri = str(uri)
    path = Path(uri)
    if uri.startswith(("runs:/", "models:/")):
        if uri.startswith("runs:/") and uri.rstrip("/").count("/") == 1:
            uri = f"{uri.rstrip('/')}/{ARTIFACT_PATH}"
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        except (MlflowException, OSError) as err:
            raise ForecastError(f"cannot fetch {uri} from MLflow: {err}") from None
    if path.is_dir():
        found = sorted(path.rglob("model.pt"))
        if not found:
            raise ForecastError(f"{uri}: no model.pt inside")
        path = found[0]
    return path


def load_checkpoint(uri: str | Path) -> dict[str, Any]:
    """Read and check a model file; anything that is not one of ours is a ForecastError."""
    path = resolve(uri)
    if not path.is_file():
        raise ForecastError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ForecastError(
            f"{path} is not a readable forecast checkpoint (truncated or another format): "
            f"{first_line}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ForecastError(
            f"{path} is not a forecast checkpoint (expected the model.pt that forecast-train "
            "writes; a Lightning .ckpt is for resuming training only)"
        )
    if payload.get("version") != VERSION:
        raise ForecastError(
            f"{path} has checkpoint version {payload.get('version')}, this forecast reads {VERSION}"
        )
    return payload


def build_net(payload: dict[str, Any]) -> LSTMNet:
    """The network of a loaded checkpoint, with its weights, in eval mode."""
    net = LSTMNet(**payload["net"])
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ForecastError(f"checkpoint weights do not fit its own configuration: {err}") from None
    return net.eval()
