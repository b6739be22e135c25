"""Sweeps and scale-out, through the real CLI: grid and Optuna multiruns, two workers sharing a
study, failed and interrupted trials, DDP on CPU, and a real MLflow tracking server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from helpers import TINY, free_port, server_process, sine_frame

from forecast import Forecaster

BIN = Path(sys.executable).parent
SPACE = (
    'hydra.sweeper.params={model.hidden_size: "choice(8, 16)", model.dropout: "interval(0.0, 0.2)"}'
)


def train(cwd: Path, *overrides: str, env: dict | None = None, wait: bool = True):
    flags = [o for o in overrides if o.startswith("-")]  # argparse wants -m before overrides
    values = [o for o in overrides if not o.startswith("-")]
    argv = [str(BIN / "forecast-train"), *flags, *TINY, "data.path=sines.csv", *values]
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}", **(env or {})}
    process = subprocess.Popen(
        argv, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    if not wait:
        return process
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def runs(cwd: Path, tracking_uri: str | None = None) -> list:
    client = mlflow.MlflowClient(tracking_uri or f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("forecast")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


@pytest.fixture
def cwd(tmp_path) -> Path:
    sine_frame().to_csv(tmp_path / "sines.csv", index=False)
    return tmp_path


@pytest.mark.slow
def test_grid_sweep_groups_trials_and_saves_the_best(cwd):
    # the model alone: combined with the baselines, two tiny trials could tie on validation
    code, output = train(cwd, "-m", "model.hidden_size=8,16", "ensemble.combine=mean")
    assert code == 0, output[-3000:]
    all_runs = runs(cwd)
    (parent,) = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2 and len(all_runs) == 3
    assert {r.data.params["model.hidden_size"] for r in trials} == {"8", "16"}
    # each trial named by its overrides, what it tries among them
    for trial in trials:
        assert f"model.hidden_size={trial.data.params['model.hidden_size']}" in (
            trial.info.run_name.split()
        )
    assert parent.info.status == "FINISHED"
    best_value = min(r.data.metrics["val_loss"] for r in trials)
    assert parent.data.metrics["best_best_val_loss"] == pytest.approx(best_value, rel=1e-5)
    assert "best_val_loss" in output and "experiment=best" in output
    # the sweep registers its best trial, and no other, under the data file's name
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    (version,) = client.search_model_versions("name='forecast-sines'")
    best_run = min(trials, key=lambda r: r.data.metrics["best_val_loss"])
    assert version.run_id == best_run.info.run_id
    assert f"registered forecast-sines version 1 (run {best_run.info.run_id})" in output
    (best,) = cwd.glob("logs/multiruns/*/experiment/best.yaml")
    winner = best_run.data.params["model.hidden_size"]
    argv = [
        str(BIN / "forecast-train"),
        "-cd",
        str(best.parent.parent),
        "experiment=best",
        "--cfg",
        "job",
    ]
    shown = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    # the data path resolved: the experiment reruns from any folder (issue #24, item 6)
    assert f"hidden_size: {winner}" in shown.stdout
    assert f"path: {(cwd / 'sines.csv').resolve()}" in shown.stdout


@pytest.mark.slow
def test_optuna_sweep_with_a_failing_trial_goes_on(cwd):
    _, output = train(
        cwd, "-m", "hparams_search=lstm_optuna", "hydra.sweeper.n_trials=5", "hydra.sweeper.seed=1",
        "hydra.sweeper.study_name=lstm_optuna", SPACE, "model.proj_size=12",
        "hydra.sweeper.pruner=none", "register_model=null",
    )  # fmt: skip
    study = optuna.load_study(study_name="lstm_optuna", storage=f"sqlite:///{cwd / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert len(states) == 5, output[-3000:]
    # proj_size=12 is not below hidden_size=8: those trials fail, the others complete
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed and all(str(t.params["model.hidden_size"]) == "8" for t in failed)
    assert optuna.trial.TrialState.COMPLETE in states
    assert "proj_size has to be smaller than hidden_size" in output
    # A configuration refused before training starts leaves no MLflow run, only the FAIL.
    trials = [r for r in runs(cwd) if "mlflow.parentRunId" in r.data.tags]
    assert len(trials) == states.count(optuna.trial.TrialState.COMPLETE)
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert "FAILED" in output or "failed" in output


@pytest.mark.slow
def test_two_workers_share_one_study(cwd):
    args = [
        "-m",
        "hparams_search=lstm_optuna",
        "hydra.sweeper.study_name=lstm_optuna",  # both workers join one study by its name
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.pruner=none",
        SPACE,
        "register_model=null",
    ]
    workers = [train(cwd, *args, f"hydra.sweep.dir=sweep{k}", wait=False) for k in (0, 1)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    study = optuna.load_study(study_name="lstm_optuna", storage=f"sqlite:///{cwd / 'optuna.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    # Each worker asks only while the study holds fewer than n_trials: at most one extra.
    assert 6 <= len(finished) <= 7 and len(study.trials) == len(finished)
    per_worker = [len(list((cwd / f"sweep{k}").glob("*/.hydra/config.yaml"))) for k in (0, 1)]
    assert min(per_worker) >= 1 and sum(per_worker) == len(finished)
    assert len({t.number for t in study.trials}) == len(study.trials)  # disjoint trials
    # The worker that ended last writes the best of the whole study, whoever ran it
    last = max(
        (cwd / f"sweep{k}" / "experiment" / "best.yaml" for k in (0, 1)), key=os.path.getmtime
    )
    assert f"best_val_loss={study.best_value:.5f}" in last.read_text()


@pytest.mark.slow
def test_pruning_reports_every_epoch(cwd):
    code, output = train(
        cwd, "-m", "hparams_search=lstm_optuna", "hydra.sweeper.n_trials=2", SPACE,
        "hydra.sweeper.study_name=lstm_optuna",
        "trainer.max_epochs=3", "callbacks.early_stopping.patience=10", "register_model=null",
    )  # fmt: skip
    assert code == 0, output[-3000:]
    study = optuna.load_study(study_name="lstm_optuna", storage=f"sqlite:///{cwd / 'optuna.db'}")
    assert [sorted(t.intermediate_values) for t in study.trials] == [[0, 1, 2], [0, 1, 2]]


@pytest.mark.slow
def test_ctrl_c_leaves_no_run_running(cwd):
    process = train(
        cwd, "-m", "model.hidden_size=16,32", "trainer.max_epochs=200",
        "callbacks.early_stopping.patience=200", wait=False,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(r.data.tags.get("mlflow.parentRunId") for r in runs(cwd)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.5)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    statuses = {r.info.status for r in runs(cwd)}
    assert "RUNNING" not in statuses and "KILLED" in statuses


@pytest.mark.slow
def test_training_against_a_real_mlflow_server(cwd):
    port = free_port()
    argv = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{cwd / 'server.db'}",
        "--artifacts-destination", str(cwd / "server-artifacts"), "--workers", "1",
    ]  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    with server_process(argv, cwd, f"{uri}/health"):
        code, output = train(cwd, env={"MLFLOW_TRACKING_URI": uri})
        assert code == 0, output[-3000:]
        (run,) = runs(cwd, uri)
        assert run.data.params["data.lookback"] == "24"
        assert "test_mse" in run.data.metrics
        client = mlflow.MlflowClient(uri)
        assert "checkpoint" in {a.path for a in client.list_artifacts(run.info.run_id)}
        mlflow.set_tracking_uri(uri)
        try:
            forecaster = Forecaster.load(f"runs:/{run.info.run_id}")
        finally:
            mlflow.set_tracking_uri(None)
        assert forecaster.spec.horizon == 6
    assert not (cwd / "mlflow.db").exists()  # nothing went to the local default store
    assert any((cwd / "server-artifacts").rglob("model.pt"))


def interrupted(cwd: Path, sign: signal.Signals, *overrides: str) -> tuple[int, str]:
    """A long training (or sweep), sent ``sign`` once a run of it is in MLflow."""
    process = train(
        cwd, *overrides, "trainer.max_epochs=200", "callbacks.early_stopping.patience=200",
        "register_model=null", wait=False,
    )  # fmt: skip
    sweep = "-m" in overrides  # then wait for a trial's run, not for the sweep's parent run
    deadline = time.monotonic() + 120
    while not [r for r in runs(cwd) if not sweep or "mlflow.parentRunId" in r.data.tags]:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.5)
    time.sleep(2)
    process.send_signal(sign)
    output, _ = process.communicate(timeout=120)
    return process.returncode, output


@pytest.mark.slow
def test_sigterm_exits_143_and_marks_the_run_killed(cwd):
    """A scheduler (SLURM, Kubernetes) stops a job with SIGTERM and reads its exit status."""
    code, output = interrupted(cwd, signal.SIGTERM)
    assert code == 143, output[-3000:]
    assert [r.info.status for r in runs(cwd)] == ["KILLED"]


@pytest.mark.slow
def test_trainings_started_together_on_a_new_store_all_finish(cwd):
    processes = [train(cwd, "register_model=null", wait=False) for _ in range(3)]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-3000:]
    assert [r.info.status for r in runs(cwd)] == ["FINISHED"] * 3


@pytest.mark.slow
def test_ctrl_c_stops_a_run_with_one_line_and_exit_130(cwd):
    code, output = interrupted(cwd, signal.SIGINT)
    assert code == 130, output[-3000:]
    assert "stopped: training stopped by Ctrl-C" in output and "Traceback" not in output
    assert [r.info.status for r in runs(cwd)] == ["KILLED"]


@pytest.mark.slow
def test_the_same_sweep_command_twice_runs_two_fresh_studies(cwd):
    args = ["-m", "hparams_search=lstm_optuna", "hydra.sweeper.n_trials=2", SPACE,
            "hydra.sweeper.pruner=none", "register_model=null"]  # fmt: skip
    for _ in range(2):
        code, output = train(cwd, *args)
        assert code == 0, output[-3000:]
        time.sleep(1)  # study names carry the start time to the second
    storage = f"sqlite:///{cwd / 'optuna.db'}"
    studies = optuna.get_all_study_summaries(storage)
    assert len(studies) == 2 and all(s.n_trials == 2 for s in studies)
    # joining a complete study by name: a clear message, nothing run, no crash
    name = studies[0].study_name
    code, output = train(cwd, *args, f"hydra.sweeper.study_name={name}", "hydra.sweep.dir=joined")
    assert code == 0, output[-3000:]
    assert f"study '{name}' already holds 2 trials (n_trials=2): nothing to run" in output
    # ... and its best.yaml is the study's best, though this worker ran none of its trials
    study = optuna.load_study(study_name=name, storage=storage)
    best = (cwd / "joined" / "experiment" / "best.yaml").read_text()
    assert f"best_val_loss={study.best_value:.5f}" in best
    assert f"hidden_size: {study.best_params['model.hidden_size']}" in best


@pytest.mark.slow
def test_an_interrupted_optuna_sweep_leaves_no_trial_running(cwd):
    interrupted(
        cwd, signal.SIGINT, "-m", "hparams_search=lstm_optuna",
        "hydra.sweeper.study_name=stopped", "hydra.sweeper.n_trials=3",
    )  # fmt: skip
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{cwd / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert states and optuna.trial.TrialState.RUNNING not in states
    assert states[-1] == optuna.trial.TrialState.FAIL


@pytest.mark.slow
def test_a_range_on_the_command_line_replaces_the_presets(cwd):
    code, output = train(
        cwd, "-m", "hparams_search=lstm_optuna", "hydra.sweeper.study_name=cli",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none", "register_model=null",
        "model.hidden_size=choice(8,12)", "model.num_layers=1", "data.batch_size=64",
    )  # fmt: skip
    assert code == 0, output[-3000:]
    study = optuna.load_study(study_name="cli", storage=f"sqlite:///{cwd / 'optuna.db'}")
    assert len(study.trials) == 2
    for trial in study.trials:  # the preset's range is 32 to 256
        assert str(trial.params["model.hidden_size"]) in {"8", "12"}


def test_the_store_lock_leaves_no_file_beside_the_store(tmp_path):
    from forecast.training.sweep import sqlite_lock

    with sqlite_lock(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"):
        pass
    assert [p.name for p in tmp_path.rglob("*")] == ["runs"]  # the store's folder, made
