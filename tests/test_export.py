from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch
from helpers import REPO

from forecast import Forecaster, ForecastError
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.serving.export import export


@pytest.fixture(scope="module")
def forecaster(trained) -> Forecaster:
    return Forecaster.load(trained["model"])


@pytest.fixture(scope="module")
def histories(trained) -> tuple[np.ndarray, np.ndarray]:
    """Five raw (unscaled) histories and what Forecaster.predict makes of each."""
    frame = pd.read_csv(trained["csv"])
    forecaster = Forecaster.load(trained["model"])
    starts = [0, 50, 100, 200, 400]
    raw = np.stack([frame.iloc[s : s + 24][["load", "temp", "price"]].to_numpy() for s in starts])
    expected = np.stack(
        [forecaster.predict(frame.iloc[s : s + 24])[["load", "temp", "price"]] for s in starts]
    )
    return raw.astype(np.float32), expected


def test_torchscript_matches_predict(forecaster, histories, tmp_path):
    path = export(forecaster, "torchscript", tmp_path / "model.ts")
    files = {"forecast.json": ""}
    module = torch.jit.load(str(path), _extra_files=files)
    raw, expected = histories
    with torch.inference_mode():
        got = module(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    spec = json.loads(files["forecast.json"])
    assert spec["features"] == ["load", "temp", "price"] and spec["freq"] == "h"


def test_onnx_matches_predict(forecaster, histories, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = export(forecaster, "onnx")  # named by its format when no name is given
    assert path == Path("model.onnx") and onnx.load(str(path)) is not None
    session = onnxruntime.InferenceSession(str(path))
    raw, expected = histories
    (got,) = session.run(None, {"history": raw})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["forecast.json"])["lookback"] == 24


def test_projection_cannot_go_to_onnx(forecaster, tmp_path):
    config = LSTMConfig(hidden_size=16, num_layers=2, proj_size=4)
    projected = Forecaster(LSTMNet(config, forecaster.spec), forecaster.spec)
    with pytest.raises(ForecastError, match="export it with format=torchscript"):
        export(projected, "onnx", tmp_path / "m.onnx")
    with pytest.raises(ForecastError, match="format='tflite' is not one of"):
        export(forecaster, "tflite", tmp_path / "m.tflite")
    assert export(projected, "torchscript", tmp_path / "m.ts").is_file()


@pytest.mark.parametrize(("fmt", "name"), [("torchscript", "model.ts"), ("onnx", "model.onnx")])
def test_the_guide_examples_run(forecaster, tmp_path, monkeypatch, fmt, name):
    """docs/guides/serving.md's example for each format, run as written, in a folder with the
    file."""
    guide = (REPO / "docs" / "guides" / "serving.md").read_text()
    code = guide.split(f"<!-- example:{fmt} -->\n```python\n", 1)[1].split("```", 1)[0]
    export(forecaster, fmt, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, f"serving guide {fmt} example", "exec"), namespace)
    assert namespace["forecast"].shape == (1, 6, 3)
    assert np.isfinite(namespace["forecast"]).all()
