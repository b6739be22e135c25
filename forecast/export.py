"""``forecast-export``: a model for runtimes without the training stack (TorchScript, ONNX).

    forecast-export ckpt_path=logs/runs/<run>/model.pt format=torchscript output=model.ts
    forecast-export ckpt_path=models:/forecast/3 format=onnx output=model.onnx

The exported graph includes the scaler: it takes raw values ``(batch, lookback, n_features)``
in the column order of ``features`` and returns ``(batch, horizon, n_targets)`` in original
units. The checkpoint's data description (columns, targets, frequency, ...) travels with it:
as ``forecast.json`` among a TorchScript file's extra files, as ONNX metadata otherwise.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from forecast.config import SERVING_CONF_DIR, exit_on_error
from forecast.errors import ForecastError
from forecast.predict import Forecaster

log = logging.getLogger(__name__)
FORMATS = ("torchscript", "onnx")


class ScaledForecaster(nn.Module):
    """The network between the training scaler and its inverse, all in one graph."""

    def __init__(self, forecaster: Forecaster) -> None:
        super().__init__()
        self.net = forecaster.net
        spec = forecaster.spec
        as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("mean", as_tensor(spec.scaler.mean))
        self.register_buffer("std", as_tensor(spec.scaler.std))
        self.register_buffer("target_mean", as_tensor(spec.target_scaler.mean))
        self.register_buffer("target_std", as_tensor(spec.target_scaler.std))

    def forward(self, x: Tensor) -> Tensor:
        point = self.net.forecast((x - self.mean) / self.std).point  # (batch, horizon, n_targets)
        return point * self.target_std + self.target_mean


def export(forecaster: Forecaster, fmt: str, output: str | Path) -> Path:
    """Trace the scaled model with an example batch and write it in ``fmt``."""
    if fmt not in FORMATS:
        raise ForecastError(f"format={fmt!r} is not one of {FORMATS}")
    spec = forecaster.spec
    if spec.future_columns or spec.static_columns:
        raise ForecastError(
            "export takes models without covariates for now; this one has "
            f"{spec.future_columns + spec.static_columns}"
        )
    proj_size = forecaster.net.config.proj_size
    if fmt == "onnx" and proj_size:
        raise ForecastError(
            f"ONNX's LSTM has no projection (the model has proj_size={proj_size}); "
            "export it with format=torchscript"
        )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    module = ScaledForecaster(forecaster).eval()
    example = torch.zeros(2, forecaster.spec.lookback, forecaster.spec.n_features)
    spec = json.dumps({k: v for k, v in forecaster.spec.to_dict().items() if k != "path"})
    with warnings.catch_warnings():
        # Our shape checks run once on the example while tracing; the graph keeps batch dynamic.
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            traced = torch.jit.trace(module, example)
            torch.jit.save(traced, str(output), _extra_files={"forecast.json": spec})
        else:
            _export_onnx(module, example, output, spec)
    return output


def _export_onnx(module: nn.Module, example: Tensor, output: Path, spec: str) -> None:
    import onnx

    # The TorchScript-based exporter handles nn.LSTM with a dynamic batch; the dynamo one
    # (torch 2.13) emits a graph that onnxruntime refuses for this model.
    torch.onnx.export(
        module,
        (example,),
        str(output),
        dynamo=False,
        input_names=["history"],
        output_names=["forecast"],
        dynamic_axes={"history": {0: "batch"}, "forecast": {0: "batch"}},
    )
    model = onnx.load(str(output))
    model.metadata_props.add(key="forecast.json", value=spec)
    onnx.save(model, str(output))


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="export")
@exit_on_error
def main(cfg: DictConfig) -> None:
    path = export(Forecaster.load(cfg.ckpt_path), cfg.format, cfg.output)
    log.info("wrote %s (%s)", path, cfg.format)


if __name__ == "__main__":
    main()
