"""The installed commands, run as a user runs them: exit codes, messages, files left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import TINY, free_port, server_process, sine_frame

from forecast import Forecaster

# Every test here starts whole processes: make test-fast leaves them out.
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # where pip put the console scripts


def run(command: str, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [str(BIN / command), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def runs_in(cwd: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("forecast")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A working directory where one tiny model was trained through the real CLI."""
    cwd = tmp_path_factory.mktemp("cli")
    sine_frame().to_csv(cwd / "sines.csv", index=False)
    # the progress bar as configured by default: drawn on a terminal only, and this is a pipe
    overrides = ["data.path=sines.csv", "trainer.max_epochs=1", "trainer.enable_progress_bar=null"]
    result = run("forecast-train", cwd, *TINY, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    (cwd / "train.out").write_text(result.stdout + result.stderr)
    return cwd


def test_train_cli_reports_and_writes_a_run(workdir):
    """A quiet console: a line per epoch instead of a bar redrawn into the pipe, the report,
    no third-party noise."""
    output = (workdir / "train.out").read_text()
    assert "\r" not in output
    assert "epoch 1/1  train_loss" in output and "val_loss" in output
    assert "test split, season 24:" in output and "seasonal_naive" in output
    for noise in ("GPU available", "litlogger", "LeafSpec", "CloudPickle", "Downloading",
                  "database tables", "Seed set", "| Name", "Trainable params"):  # fmt: skip
        assert noise not in output, noise
    assert len(output.splitlines()) < 30, output
    (model,) = workdir.glob("logs/runs/*/model.pt")
    assert (model.parent / ".hydra" / "config.yaml").is_file()
    assert len(runs_in(workdir)) == 1
    assert runs_in(workdir)[0].info.status == "FINISHED"


def test_eval_cli(workdir):
    (model,) = workdir.glob("logs/runs/*/model.pt")
    # threads= as forecast-train takes it
    result = run("forecast-eval", workdir, f"ckpt_path={model}", "threads=1")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "MASE" in output and "seasonal_naive" in output and "windows" in output
    assert len(list(workdir.glob("logs/evals/*/evaluation/test_windows.csv"))) == 1


def write_bad_tables(cwd: Path) -> None:
    frame = sine_frame()
    frame.assign(load=frame.load.where(frame.index != 50)).to_csv(cwd / "nan.csv", index=False)
    frame.assign(load="high").to_csv(cwd / "text.csv", index=False)
    frame.iloc[np.r_[0:100, 101, 100, 102:600]].to_csv(cwd / "unsorted.csv", index=False)
    frame.head(40).to_csv(cwd / "short.csv", index=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.path=missing.csv"], "error: data file not found: missing.csv"),
        (
            ["data.path=sines.csv", "data.targets=[nope]"],
            "targets ['nope'] are not among the features",
        ),
        (["data.path=text.csv"], "column 'load' is not numeric"),
        (["data.path=nan.csv"], "column 'load' has 1 NaN/inf value(s), first at file line 52"),
        (["data.path=unsorted.csv"], "timestamps not sorted at file line 103"),
        (["data.path=short.csv"], "the train split has 28 rows"),
        (
            ["data.path=sines.csv", "model.proj_size=32"],
            "proj_size has to be smaller than hidden_size",
        ),
    ],
)
def test_train_cli_bad_input(workdir, overrides, message):
    write_bad_tables(workdir)
    before = sorted(workdir.glob("logs/runs/*/model.pt"))
    n_runs = len(runs_in(workdir))
    result = run("forecast-train", workdir, *TINY, *overrides)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(workdir.glob("logs/runs/*/model.pt")) == before  # nothing written is lost
    assert len(runs_in(workdir)) == n_runs  # no half-made MLflow run


def test_unknown_config_key(workdir):
    result = run("forecast-train", workdir, "model.hiden_size=8")
    assert result.returncode == 1
    assert "model.hiden_size is not a key of forecast-train; did you mean model.hidden_size?" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["foreign", "truncated", "missing"])
def test_eval_cli_bad_checkpoint(workdir, kind):
    (model,) = workdir.glob("logs/runs/*/model.pt")
    bad = workdir / f"{kind}.pt"
    if kind == "foreign":
        bad.write_text("not a model")
    elif kind == "truncated":
        bad.write_bytes(model.read_bytes()[:1000])
    result = run("forecast-eval", workdir, f"ckpt_path={bad}")
    assert result.returncode == 1
    expected = "checkpoint not found" if kind == "missing" else "not a readable forecast checkpoint"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_cli_writes_forecasts_and_keeps_old_output_on_failure(workdir):
    (model,) = workdir.glob("logs/runs/*/model.pt")
    result = run("forecast-predict", workdir, f"model={model}", "input=sines.csv", "output=f.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    future = pd.read_csv(workdir / "f.csv")
    assert list(future.columns) == ["date", "load", "temp", "price"] and len(future) == 6
    assert future["date"].iloc[0] == "2024-01-26 00:00:00"  # one hour after the last input row
    before = (workdir / "f.csv").read_bytes()
    write_bad_tables(workdir)
    result = run("forecast-predict", workdir, f"model={model}", "input=nan.csv", "output=f.csv")
    assert result.returncode == 1
    assert "error: history: column 'load' has 1 NaN/inf" in result.stderr
    assert "Traceback" not in result.stderr
    assert (workdir / "f.csv").read_bytes() == before


def test_predict_cli_from_the_model_registry(workdir):
    result = run(
        "forecast-predict",
        workdir,
        "ckpt_path=models:/forecast-sines/1",
        "input=sines.csv",
        "output=r.csv",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(workdir / "r.csv"), pd.read_csv(workdir / "f.csv"))


def test_export_cli(workdir):
    (model,) = workdir.glob("logs/runs/*/model.pt")
    result = run("forecast-export", workdir, f"ckpt_path={model}", "format=onnx", "output=m.onnx")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "m.onnx").stat().st_size > 10_000


def test_serve_cli_answers_like_predict(workdir):
    (model,) = workdir.glob("logs/runs/*/model.pt")
    port = free_port()
    argv = [str(BIN / "forecast-serve"), f"ckpt_path={model}", f"port={port}"]
    history = pd.read_csv(workdir / "sines.csv").tail(24)
    request = {"series": [{"id": "s", "data": history.to_dict(orient="records")}]}
    with server_process(argv, workdir, f"http://127.0.0.1:{port}/health"):
        answer = httpx.post(f"http://127.0.0.1:{port}/forecast", json=request, timeout=30)
    assert answer.status_code == 200
    got = pd.DataFrame(answer.json()["forecasts"][0]["data"])
    expected = Forecaster.load(model).predict(history)
    np.testing.assert_allclose(got[["load", "temp", "price"]], expected[["load", "temp", "price"]])


def test_mlflow_models_serve_gives_the_same_numbers(workdir):
    port = free_port()
    argv = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/forecast-sines/1",
        "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    history = pd.read_csv(workdir / "sines.csv").tail(24)
    with server_process(argv, workdir, f"http://127.0.0.1:{port}/ping"):
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": history.to_dict(orient="records")},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    got = pd.DataFrame(answer.json()["predictions"])
    (model,) = workdir.glob("logs/runs/*/model.pt")
    expected = Forecaster.load(model).predict(history)
    np.testing.assert_allclose(got[["load", "temp", "price"]], expected[["load", "temp", "price"]])
