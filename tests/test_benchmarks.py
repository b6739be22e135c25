"""Benchmark scripts run in their smoke mode: they must work, their numbers are not asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

# Every test here starts whole processes: make test-fast leaves them out.
pytestmark = pytest.mark.slow


def smoke(script: str, tmp_path, *args: str) -> tuple[str, dict]:
    out = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), "--smoke", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, json.loads(out.read_text())


def test_training_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_training.py", tmp_path)
    assert "ratio" in stdout and "python scripts/benchmark_training.py --smoke" in stdout
    (row,) = report["rows"]
    assert row["raw_windows_per_s"] > 0 and row["forecast_windows_per_s"] > 0
    assert row["ratio"] == row["round_ratios"][0]  # one round in smoke mode
    # a row's figures and its ratio come from one round, so they agree
    assert row["ratio"] == pytest.approx(row["forecast_windows_per_s"] / row["raw_windows_per_s"])


def test_serving_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_serving.py", tmp_path)
    assert "forecast-serve" in stdout
    assert set(report["forecast-serve"]) == {"1", "8"}
    assert report["forecast-serve"]["1"]["p50_ms"] > 0
    assert report["batch"]["series"] == 50
    assert report["health_during_batch"]["health_requests"] >= 1


def test_memory_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_memory.py", tmp_path)
    assert "materialized" in stdout
    (row,) = report["rows"]
    assert row["rows"] == 10_000 and row["materialized_measured"]
    assert row["windows_mb"] >= 0 and row["datamodule_mb"] > 0 and row["covariates_mb"] > 0


def test_reproduce_benchmark_smoke(tmp_path):
    args = ["--datasets", "etth1", "--horizons", "96", "--seeds", "1", "2"]
    stdout, results = smoke("reproduce_benchmark.py", tmp_path, *args)
    assert "etth1 H=96 seed=2: test MSE" in stdout
    runs = results["runs"]
    assert [r["seed"] for r in runs] == [1, 2] and all(r["lookback"] == 96 for r in runs)
    assert all(r["test_mse_naive"] == runs[0]["test_mse_naive"] for r in runs)
    row = next(line for line in stdout.splitlines() if line.startswith("| etth1 | 96 | 2 |"))
    assert f"{runs[0]['test_mse_naive']:.3f}" in row and "0.368" in row  # repeat-last, SegRNN


def test_preset_runs_smoke(tmp_path):
    """One whole forecast-train run through the CLI, as the README's run figures are made."""
    out = tmp_path / "runs.json"
    argv = [sys.executable, str(REPO / "scripts" / "preset_runs.py"), "--out", str(out)]
    args = ["--runs", "default, 1 epoch", "--repeats", "1"]
    result = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = json.loads(out.read_text())["runs"]
    assert run["epochs"] == 1 and run["best_epoch"] == 1 and run["console_lines"] < 40
    assert run["evaluation"][0] == "test split, season 24:" and run["metrics"]["test_mse"] > 0


def test_inference_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_inference.py", tmp_path)
    assert "forecast windows/s" in stdout
    (row,) = report["rows"]
    assert row["raw_windows_per_s"] > 0 and row["forecast_windows_per_s"] > 0


def test_cpu_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_cpu.py", tmp_path)
    assert "threads=1" in stdout
    (row,) = report["rows"]
    assert row["error"] is None and row["ratio"] > 0


def test_training_profile_smoke(tmp_path):
    stdout, report = smoke("profile_training.py", tmp_path)
    assert "pytorch_lightning" in stdout
    assert report["lightning"]["pytorch_lightning"] > 0 and "pytorch_lightning" not in report["raw"]


def test_covariate_benefit_smoke(tmp_path):
    stdout, report = smoke("covariate_benefit.py", tmp_path, "--seeds", "1")
    assert "| pjm_load | with | 1 |" in stdout and "| m5_sales | without | 1 |" in stdout
    assert {"command", "date", "machine", "commit"} <= set(report["meta"])
    runs = {(r["preset"], r["variant"]) for r in report["runs"]}
    assert runs == {(p, v) for p in ("pjm_load", "m5_sales") for v in ("with", "without")}
    assert all(r["test_mae_orig"] > 0 for r in report["runs"])


def test_compare_peers_smoke(tmp_path):
    """Only where the optional peers extra is installed (CI does not install it)."""
    pytest.importorskip("neuralforecast")
    pytest.importorskip("darts")
    stdout, report = smoke("compare_peers.py", tmp_path, "--presets", "m5_sales")
    models = [row["model"] for row in report["rows"]]
    assert models[:2] == ["forecast (ours)", "seasonal naive"] and len(models) == 5
    assert "| m5_sales | NeuralForecast NHITS |" in stdout
    assert all(row["mae"] > 0 for row in report["rows"])


def test_check_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_check.py", tmp_path)
    assert "forecast-check" in stdout
    (row,) = report["rows"]
    assert row["check_exit"] == 1 and row["check_clean_exit"] == 0  # gaps found, then handled


def test_ensemble_benchmark_smoke(tmp_path):
    stdout, report = smoke("benchmark_ensemble.py", tmp_path)
    assert "5 members vs 1 model" in stdout
    assert report["training"]["sequential_s"] > 0 and report["training"]["parallel_s"] > 0
    assert [r["batch_size"] for r in report["inference"]] == [1, 32]
    assert report["serving"]["ensemble_p50_ms"] > 0
    fusion = [(r["model"], r["batch_size"]) for r in report["fusion"]]
    assert fusion == [("lstm", 1), ("lstm", 32), ("segment_lstm", 1), ("segment_lstm", 32)]


def test_m4_benchmark_smoke(tmp_path):
    stdout, results = smoke("m4_benchmark.py", tmp_path, "--frequencies", "weekly")
    (run,) = results["runs"]
    assert run["series"] == 5 and run["horizon"] == 13 and run["owa"] > 0
    assert "data.test_size=13" in run["command"]
    assert "| weekly | Naive2 (official) | 9.161 | 2.777 | 1.000 |" in stdout


def test_m4_benchmark_scores_a_log_transform_in_the_data_units(tmp_path):
    args = ["--frequencies", "weekly", "--log", "--override", "model.distribution=studentt"]
    stdout, results = smoke("m4_benchmark.py", tmp_path, *args)
    (run,) = results["runs"]
    # forecasts left in log units would miss every value: sMAPE near 200, coverage near 0
    assert run["log"] and run["coverage"] > 0.5 and 0 < run["smape"] < 50
    assert "| weekly | forecast (defaults) |" in stdout


def test_defaults_benchmark_smoke(tmp_path):
    stdout, results = smoke("defaults_benchmark.py", tmp_path, "--datasets", "etth1")
    (run,) = results["runs"]
    assert run["ratio"] == pytest.approx(run["test_mse"] / run[f"test_mse_{run['best_baseline']}"])
    assert run["command"].startswith("forecast-train data=csv data.path=ETTh1.csv data.horizon=96")
    assert "| etth1 |" in stdout


def test_combination_benchmark_reads_a_defaults_run(tmp_path):
    """A resampled shape of the defaults benchmark, then the rules weighed on its model file."""
    label = f"smoke_{tmp_path.name}"
    _, results = smoke(
        "defaults_benchmark.py", tmp_path, "--datasets", "etth1_daily", "--label", label
    )
    assert "data=csv data.path=ETTh1_daily.csv data.horizon=14 " in results["runs"][0]["command"]
    runs, out = REPO / "bench" / "defaults" / label, tmp_path / "combination.json"
    script = [sys.executable, str(REPO / "scripts" / "combination_benchmark.py")]
    result = subprocess.run(
        [*script, "--runs", str(runs), "--out", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (study,) = json.loads(out.read_text())["runs"]
    weights = study["weights"]
    assert study["dataset"] == "etth1_daily" and sum(weights["validation"]) == pytest.approx(
        1, abs=0.01
    )
    average = [(g + i) / 2 for g, i in zip(weights["greedy"], weights["inverse_mse2"], strict=True)]
    assert weights["validation"] == pytest.approx(average, abs=0.002)
    assert "| worst |" in result.stdout
    shutil.rmtree(runs)


def test_interval_benchmark_smoke(tmp_path):
    args = ["--presets", "m5_sales", "--variants", "studentt, conformal"]
    stdout, results = smoke("interval_benchmark.py", tmp_path, *args)
    (run,) = results["runs"]
    assert "model.distribution=studentt conformal=true" in run["command"]
    assert 0 <= run["test_coverage"] <= 1 and "val_coverage_conformal" in run
    assert "| m5_sales | studentt, conformal |" in stdout
