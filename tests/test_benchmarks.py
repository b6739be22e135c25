"""Benchmark scripts run in their smoke mode: they must work, their numbers are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_training_benchmark_smoke(tmp_path):
    out = tmp_path / "training.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "benchmark_training.py"),
            "--smoke",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio" in result.stdout
    (row,) = json.loads(out.read_text())["rows"]
    assert row["raw_windows_per_s"] > 0 and row["forecast_windows_per_s"] > 0
    assert row["ratio"] == row["forecast_windows_per_s"] / row["raw_windows_per_s"]


def test_serving_benchmark_smoke(tmp_path):
    out = tmp_path / "serving.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "benchmark_serving.py"),
            "--smoke",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "forecast-serve" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["forecast-serve"]) == {"1", "8"}
    assert report["forecast-serve"]["1"]["p50_ms"] > 0
    assert report["batch"]["series"] == 50
