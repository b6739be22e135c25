"""An ensemble trained in processes, under the signals a user or a scheduler sends (issue #24,
probe 3): the command exits promptly with the signal's status, no member outlives it, no
MLflow run stays RUNNING, and a member killed on its own (the OOM killer) is left out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow
TRAIN = str(Path(sys.executable).parent / "forecast-train")


def start(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    t = np.arange(400)
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=400, freq="h"),
        "y": np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(0).standard_normal(400),
    })  # fmt: skip
    frame.to_csv(tmp_path / "y.csv", index=False)
    args = [
        TRAIN, "data=csv", f"data.path={tmp_path / 'y.csv'}", "data.lookback=24",
        "data.horizon=6", "model.hidden_size=8", "model.num_layers=1", "ensemble.size=2",
        "ensemble.parallel=2", "register_model=null", "threads=1", *overrides,
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    return subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def members_of(pid: int) -> list[int]:
    """The ensemble's member processes: the parent's children that run multiprocessing's spawn
    (not its resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                out.append(int(child))
    return out


def wait_for_members(process: subprocess.Popen, n: int, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode()
        found = members_of(process.pid)
        if len(found) == n:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{n} member processes never started")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def statuses(tmp_path: Path) -> dict[str, str]:
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {run.info.run_name: run.info.status for run in runs}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_parent_stops_every_member_and_closes_every_run(tmp_path, signum, status):
    forever = ("trainer.max_epochs=100000", "callbacks.early_stopping.patience=100000")
    process = start(tmp_path, *forever)
    members = wait_for_members(process, 2)
    time.sleep(8)  # the members import, read the data and train
    process.send_signal(signum)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the command did not exit within 60 s of the signal") from None
    output = process.stdout.read().decode()
    assert code == status, output
    assert "Traceback" not in output
    time.sleep(0.5)
    assert not [pid for pid in members if alive(pid)], "a member outlived the command"
    runs = statuses(tmp_path)
    assert len(runs) >= 1 and "RUNNING" not in runs.values(), runs
    assert set(runs.values()) == {"KILLED"}, runs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_member_killed_on_its_own_is_left_out_and_the_others_finish(tmp_path):
    process = start(tmp_path, "trainer.max_epochs=3")
    members = wait_for_members(process, 2)
    os.kill(max(members), signal.SIGKILL)  # as the OOM killer would: no chance to clean up
    code = process.wait(timeout=300)
    output = process.stdout.read().decode()
    assert code == 0, output
    assert "was killed by SIGKILL" in output and "the others go on" in output
    runs = statuses(tmp_path)
    assert "RUNNING" not in runs.values(), runs
    finished = [name for name, state in runs.items() if state == "FINISHED"]
    assert len(finished) >= 2, runs  # the ensemble's run and the healthy member's
