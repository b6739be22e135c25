"""Self-contained model files: weights plus everything needed to read data and forecast.

A file holds only tensors and plain Python values, so it opens with
``torch.load(weights_only=True)``: loading a model never runs code from the file, which
matters for a server that loads files it did not write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from forecast.data.options import counting
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.calibration import Calibration
from forecast.model.config import LSTMConfig, quantile_levels
from forecast.model.ensemble import Ensemble
from forecast.model.net import LSTMNet

FORMAT = "forecast.lstm"
# 3: the data description holds every data option (batch_size, max_rows, categorical too);
# version 2 files, which lack those, are read as they are.
VERSION = 3
ARTIFACT_PATH = "checkpoint/model.pt"  # where training logs the file in an MLflow run
MAX_MEMBERS = 1024  # an ensemble of more is a damaged file, not a model


def save_checkpoint(path: str | Path, net: LSTMNet | Ensemble, spec: DataSpec) -> Path:
    """Write atomically (temp file, then rename) so a crash never leaves half a model behind.

    The network's configuration and the data contract are stored once each: the network's
    sizes (features, targets, lookback, horizon) are read from the spec when it is rebuilt.
    An ensemble adds its size and combination; its members' weights, the combination's
    weights and the linear baseline's map are in the one state dict.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "net": _plain(asdict(net.config)),
        "data": _plain(spec.to_dict()),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    if isinstance(net, Ensemble):
        payload["ensemble"] = net.describe()
    if net.calibration is not None:  # its offsets are in the state dict
        payload["calibration"] = {"levels": net.calibration.levels}
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


def load_checkpoint(uri: str | Path) -> tuple[LSTMNet | Ensemble, DataSpec]:
    """The network (with its weights, in eval mode) and data contract of a model file;
    anything that is not one of ours is a ForecastError."""
    payload = read_payload(uri)
    try:
        spec = DataSpec.from_dict(payload["data"])
        if spec.freq is None:  # every file training writes has one; forecasts need it
            raise ForecastError("data.freq is missing")
        config = LSTMConfig(**payload["net"])
        ensemble = payload.get("ensemble")
        if ensemble is None:
            net = LSTMNet(config, spec)
        else:
            size = ensemble["size"]
            if not counting(size) or size > MAX_MEMBERS:  # before building them
                raise ForecastError(f"ensemble.size={size!r} must be in [1, {MAX_MEMBERS}]")
            members = [LSTMNet(config, spec) for _ in range(size)]
            net = Ensemble(members, spec, ensemble["combine"], ensemble["season"])
        if payload.get("calibration") is not None:  # offsets: zeros until the state dict's
            levels = quantile_levels(payload["calibration"]["levels"], "calibration.levels")
            offsets = torch.zeros(spec.horizon, spec.n_targets, len(levels))
            net.calibration = Calibration(levels, offsets)
    except ForecastError as err:
        raise ForecastError(f"{uri}: the model file's description is invalid: {err}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ForecastError(f"{uri}: the model file's description is incomplete: {err}") from None
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise ForecastError(f"{uri}: the model file's weights are missing or not tensors")
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ForecastError(f"{uri}: weights do not fit its own configuration: {first}") from None
    if not all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point()):
        raise ForecastError(f"{uri}: the model file's weights are not all finite")
    return net.eval(), spec


def read_payload(uri: str | Path) -> dict[str, Any]:
    """The file's contents as the current version writes them; older versions are upgraded."""
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
    if payload.get("version") == 1:
        return _from_version_1(payload)
    if payload.get("version") not in (2, VERSION):
        raise ForecastError(
            f"{path} has checkpoint version {payload.get('version')}, this forecast reads "
            f"versions 1 to {VERSION}"
        )
    return payload


# Version 1 repeated the data's sizes among the network's arguments and kept the heads'
# weights at the top level of the network.
_V1_DATA_SIZES = ("n_features", "n_targets", "lookback", "horizon", "target_index")
_V1_RENAMES = (("decoder_lstm.", "head.lstm."), ("position", "head.position"),
               ("channel", "head.channel"), ("head.", "head.linear."))  # fmt: skip


def _from_version_1(payload: dict[str, Any]) -> dict[str, Any]:
    net = {k: v for k, v in payload["net"].items() if k not in _V1_DATA_SIZES}
    state_dict = {}
    for key, value in payload["state_dict"].items():
        old = next((old for old, _ in _V1_RENAMES if key.startswith(old)), None)
        new = key if old is None else dict(_V1_RENAMES)[old] + key[len(old) :]
        state_dict[new] = value
    return {**payload, "version": 2, "net": net, "state_dict": state_dict}
