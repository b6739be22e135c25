"""A model for runtimes without the training stack (TorchScript, ONNX), as
``forecast-export`` writes it.

The exported graph includes the scaler: it takes raw values ``(batch, lookback, n_features)``
in the column order of ``features`` and returns ``(batch, horizon, n_targets)`` in original
units. A model with covariates takes them as further inputs, encoded as
``DataSpec.encode_future`` and ``encode_static`` encode them (numeric ones standardized,
categories as codes, the calendar's sines and cosines): ``future (batch, lookback + horizon,
n_future)`` and ``static (batch, n_static)``; a categorical past input's codes past the
lookback are ignored (any code will do there). The checkpoint's data description (columns,
targets, frequency, covariates, vocabularies, scalers) travels with it: as ``forecast.json``
among a TorchScript file's extra files, as ONNX metadata otherwise.

A model scaled per series (``data.scaling=series``) takes two more inputs, last: each
series' statistics ``mean`` and ``std (batch, n_features)``, from that description's
``series_scaler`` (``keys``, ``mean``, ``std``), or for a series the model never saw, the mean
and standard deviation (ddof 0) of its own history, as ``Forecaster`` takes them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.serving.forecaster import Forecaster

FORMATS = ("torchscript", "onnx")
SUFFIXES = {"torchscript": ".ts", "onnx": ".onnx"}  # of the file written without a name


class ScaledForecaster(nn.Module):
    """The network between the training scaler and its inverse, all in one graph."""

    def __init__(self, forecaster: Forecaster) -> None:
        super().__init__()
        self.net = forecaster.net
        spec = forecaster.spec
        self.inputs = spec.scaler.module()
        self.targets = spec.target_scaler.module()
        self.covariates = [bool(spec.future_columns), bool(spec.static_columns)]
        self.per_series = spec.series_scaler is not None
        self.register_buffer("target_index", torch.tensor(spec.target_index), persistent=False)

    def forward(self, x: Tensor, *inputs: Tensor) -> Tensor:
        """``x`` raw; ``inputs``: ``future`` and/or ``static``, those the model has, then
        per series ``mean`` and ``std``."""
        given = iter(inputs)
        future, static = (next(given) if has else None for has in self.covariates)
        if not self.per_series:
            point = self.net.forecast(self.inputs(x), future, static, levels=()).point
            return self.targets.inverse(point)  # (batch, horizon, n_targets)
        mean, std = (next(given).unsqueeze(1) for _ in range(2))  # (batch, 1, n_features)
        point = self.net.forecast((x - mean) / std, future, static, levels=()).point
        return point * std[..., self.target_index] + mean[..., self.target_index]


def example_inputs(spec: DataSpec, batch: int = 2) -> tuple[Tensor, ...]:
    """Zeros shaped as the exported graph's inputs: history, then the covariates it takes."""
    inputs = [torch.zeros(batch, spec.lookback, spec.n_features)]
    if spec.future_columns:
        inputs.append(torch.zeros(batch, spec.lookback + spec.horizon, len(spec.future_columns)))
    if spec.static_columns:
        inputs.append(torch.zeros(batch, len(spec.static_columns)))
    if spec.series_scaler is not None:
        inputs += [torch.zeros(batch, spec.n_features), torch.ones(batch, spec.n_features)]
    return tuple(inputs)


def export(forecaster: Forecaster, fmt: str, output: str | Path | None = None) -> Path:
    """Trace the scaled model with an example batch and write it in ``fmt``, to ``output``
    (default: ``model.ts`` or ``model.onnx``, by the format)."""
    if fmt not in FORMATS:
        raise ForecastError(f"format={fmt!r} is not one of {FORMATS}")
    proj_size = forecaster.net.config.proj_size
    if fmt == "onnx" and proj_size:
        raise ForecastError(
            f"ONNX's LSTM has no projection (the model has proj_size={proj_size}); "
            "export it with format=torchscript"
        )
    output = Path(output or f"model{SUFFIXES[fmt]}")
    output.parent.mkdir(parents=True, exist_ok=True)
    module = ScaledForecaster(forecaster).eval().requires_grad_(False)  # plain outputs
    example = example_inputs(forecaster.spec)
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


def _export_onnx(
    module: ScaledForecaster, example: tuple[Tensor, ...], output: Path, spec: str
) -> None:
    import onnx

    names = (
        ["history"]
        + [name for name, has in zip(("future", "static"), module.covariates, strict=True) if has]
        + ["mean", "std"] * module.per_series
    )
    # The TorchScript-based exporter handles nn.LSTM with a dynamic batch; the dynamo one
    # (torch 2.13) emits a graph that onnxruntime refuses for this model.
    torch.onnx.export(
        module,
        example,
        str(output),
        dynamo=False,
        input_names=names,
        output_names=["forecast"],
        dynamic_axes={name: {0: "batch"} for name in [*names, "forecast"]},
    )
    model = onnx.load(str(output))
    model.metadata_props.add(key="forecast.json", value=spec)
    onnx.save(model, str(output))
