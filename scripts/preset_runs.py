"""Whole `forecast-train` runs as a user starts them: wall time, memory, epochs and accuracy.

Each run is the real command in a fresh process (Python start, data checks, training, test
scoring with the baselines, MLflow logging and model registration), output captured as it is
when not on a terminal. Recorded per run: wall seconds, peak RSS, console lines, epochs run,
the best epoch (by validation loss), and the test metrics MLflow logged. The README's
quick-start output, time-to-accuracy, bf16, prediction-interval and fixed-cost figures come
from here.

    python scripts/preset_runs.py                 # every run below, about five minutes
    python scripts/preset_runs.py --runs default  # some of them

Writes ``benchmarks/preset_runs.json`` (committed); ``scripts/readme_tables.py`` renders it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from bench_setup import BENCHMARKS, REPO, markdown_table, provenance, run_meta, write_results

BIN = Path(sys.executable).parent
RUNS = {
    "default": [],
    # the fixed cost of a run: (1-epoch time) - (3-epoch time - 1-epoch time) / 2
    "default, 1 epoch": ["trainer.max_epochs=1"],
    "default, 3 epochs": ["trainer.max_epochs=3", "trainer.min_epochs=3"],
    "etth1_h96": ["experiment=etth1_h96"],
    "etth1_h96, float32": ["experiment=etth1_h96", "trainer.precision=32-true"],
    "etth1_h96, quantiles": ["experiment=etth1_h96", "model.quantiles=[0.1,0.9]"],
}
FIXED_COST = ("default, 1 epoch", "default, 3 epochs")


def run(name: str, overrides: list[str], folder: Path) -> dict:
    """One ``forecast-train`` in its own folder and MLflow store; what it took and gave."""
    folder.mkdir(parents=True)
    argv = [
        str(BIN / "forecast-train"),
        *overrides,
        f"paths.data_dir={REPO / 'data'}",
        f"paths.log_dir={folder / 'logs'}",
        f"logger.tracking_uri=sqlite:///{folder / 'mlflow.db'}",
    ]
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{name}: forecast-train failed\n{output[-3000:]}")
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("forecast").experiment_id])
    val_loss = [m.value for m in client.get_metric_history(found.info.run_id, "val_loss")]
    lines = output.splitlines()
    start_line = next(i for i, line in enumerate(lines) if "test split, season" in line)
    end_line = lines.index("", start_line)
    return {
        "name": name,
        "command": " ".join(["forecast-train", *overrides]),
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "console_lines": len(lines),
        "console_bytes": len(output.encode()),
        "epochs": len(val_loss),
        "best_epoch": val_loss.index(min(val_loss)) + 1,
        "best_val_loss": min(val_loss),
        "metrics": found.data.metrics,
        "evaluation": [line.split(" - ", 1)[-1] for line in lines[start_line:end_line]],
    }


def runs_of(results: dict) -> dict[str, dict]:
    return {r["name"]: r for r in results["runs"]}


def quickstart(results: dict) -> str:
    """What `forecast-train` alone does and prints (the README's first figures)."""
    r = runs_of(results)["default"]
    stopped = "early stopping" if r["epochs"] < 20 else "the epoch limit"
    return "\n".join(
        [
            f"The default run took {r['seconds']:.0f} s end to end ({r['epochs']} epochs before "
            f"{stopped}, best epoch {r['best_epoch']}; {r['peak_rss_mb']:,.0f} MB peak memory) "
            "and ends with the test split scored next to the baselines:",
            "",
            "```",
            *r["evaluation"],
            "```",
            "",
            provenance(results["meta"]),
        ]
    )


def runs_table(results: dict) -> str:
    """Time to accuracy, and bf16 against float32, of whole runs."""
    rows = [
        [f"`{r['command']}`", f"{r['seconds']:.0f}", r["epochs"], r["best_epoch"],
         f"{r['peak_rss_mb']:,.0f}", f"{r['best_val_loss']:.4f}",
         f"{r['metrics']['test_mse']:.4f}", f"{r['metrics']['test_mae']:.4f}"]
        for r in results["runs"]
    ]  # fmt: skip
    by_name = runs_of(results)
    bf16, fp32 = by_name.get("etth1_h96"), by_name.get("etth1_h96, float32")
    notes = []
    if bf16 and fp32:
        notes.append(
            f"bf16 autocast against float32 on the whole `etth1_h96` run: "
            f"{fp32['seconds'] / bf16['seconds']:.2f}x faster, per epoch "
            f"{(fp32['seconds'] / fp32['epochs']) / (bf16['seconds'] / bf16['epochs']):.2f}x."
        )
    header = ["run", "wall s", "epochs run", "best epoch", "peak RSS MB", "best val loss",
              "test MSE", "test MAE"]  # fmt: skip
    return markdown_table(header, rows, *notes, provenance(results["meta"]))


def quantiles(results: dict) -> str:
    by_name = runs_of(results)
    q, plain = by_name["etth1_h96, quantiles"], by_name["etth1_h96"]
    return (
        f"Measured on `etth1_h96` with `model.quantiles=[0.1,0.9]`: coverage "
        f"{q['metrics']['test_coverage']:.3f} of a nominal 0.80, pinball "
        f"{q['metrics']['test_pinball']:.4f}, point forecast test MSE "
        f"{q['metrics']['test_mse']:.4f} against {plain['metrics']['test_mse']:.4f} without "
        f"quantiles.\n{provenance(results['meta'])}"
    )


def preset_evaluation(results: dict) -> str:
    r = runs_of(results)["etth1_h96"]
    return "\n".join(["```", *r["evaluation"][1:], "```", "", provenance(results["meta"])])


def fixed_cost(results: dict) -> str:
    """Seconds a run spends beyond its epochs: what every quick experiment and trial pays."""
    by_name = runs_of(results)
    one, three = by_name["default, 1 epoch"]["seconds"], by_name["default, 3 epochs"]["seconds"]
    epoch = (three - one) / 2
    return (
        f"Fixed cost of a run (default model, median of {results['repeats']} runs each): "
        f"1 epoch {one:.1f} s, 3 epochs {three:.1f} s, so "
        f"an epoch {epoch:.1f} s and the rest of a run {one - epoch:.1f} s (start-up, data "
        "checks, test scoring, MLflow logging, model registration).\n" + provenance(results["meta"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--repeats", type=int, default=3, help="of the fixed-cost pair")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "preset_runs.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="preset-runs-"))
    results = {"meta": run_meta("preset_runs.py"), "repeats": args.repeats, "runs": []}
    for name in args.runs:
        # The fixed-cost pair is a difference of two wall times on a noisy machine: each run
        # repeated, and its median kept.
        repeats = args.repeats if name in FIXED_COST else 1
        folder = name.replace(" ", "").replace(",", "_")
        tries = [run(name, RUNS[name], workdir / f"{folder}-{k}") for k in range(repeats)]
        r = sorted(tries, key=lambda t: t["seconds"])[(repeats - 1) // 2]
        r["seconds_each"] = [t["seconds"] for t in tries]
        results["runs"].append(r)
        print(f"{name}: {r['seconds']:.1f} s, {r['epochs']} epochs, test MSE "
              f"{r['metrics']['test_mse']:.4f}", flush=True)  # fmt: skip
        write_results(args.out, results)
    print(runs_table(results))


if __name__ == "__main__":
    main()
