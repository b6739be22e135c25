"""The default command on every data set the project ships (and two shapes resampled from
them), as a new user would type it: the keys a file needs to be read, what to forecast and
the horizon, nothing else. Prints the
test MSE of the model and of each baseline it reports, the model's ratio to the best baseline
(above 1: a baseline wins) and the wall time, and writes the JSON the docs render.

    python scripts/defaults_benchmark.py                      # every data set
    python scripts/defaults_benchmark.py --datasets etth1 m4_weekly --label lookback192 \\
        --override data.lookback=192
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import (
    BENCHMARKS,
    REPO,
    SMOKE,
    markdown_table,
    provenance,
    run_meta,
    train_config,
    write_results,
)

from forecast.errors import ForecastError
from forecast.train import train

# data set: the keys its file needs to be read (sell_price is missing before an item is first
# sold), what to forecast and the horizon
DATASETS = {
    "etth1": ["data.path=ETTh1.csv", "data.horizon=96"],
    "ettm1": ["data.path=ETTm1.csv", "data.horizon=96"],
    "pjm_load": ["data.path=pjm_load.csv", "data.timestamp=ds", "data.series_id=unique_id",
                 "data.horizon=24"],
    "m5_sales": ["data.path=m5_sales_small.csv", "data.timestamp=ds", "data.series_id=unique_id",
                 "data.targets=[y]", "data.fill_missing=interpolate", "data.horizon=28"],
    "m4_hourly": ["data.path=m4_hourly.csv", "data.timestamp=step", "data.series_id=unique_id",
                  "data.horizon=48", "data.test_size=48"],
    "m4_weekly": ["data.path=m4_weekly.csv", "data.timestamp=step", "data.series_id=unique_id",
                  "data.horizon=13", "data.test_size=13"],
    # shapes no shipped file has: a short table (726 days, the size of the weekly illness data
    # that issue #22 saw lose) and a 6-hourly one, made from ETT by its means (resampled below)
    "etth1_daily": ["data.path=ETTh1_daily.csv", "data.horizon=14"],
    "ettm1_6h": ["data.path=ETTm1_6h.csv", "data.horizon=28"],
}  # fmt: skip
RESAMPLED = {"ETTh1_daily.csv": ("ETTh1.csv", "D"), "ETTm1_6h.csv": ("ETTm1.csv", "6h")}
BASELINES = ("naive", "seasonal_naive", "linear")


def data_file(file: str, out: Path) -> Path:
    """A shipped file, or one of ``RESAMPLED`` written from its source under ``out``."""
    if file not in RESAMPLED:
        return REPO / "data" / file
    source, rule = RESAMPLED[file]
    frame = pd.read_csv(REPO / "data" / source, parse_dates=["date"])
    path = out / file
    out.mkdir(parents=True, exist_ok=True)
    frame.set_index("date").resample(rule).mean().reset_index().to_csv(path, index=False)
    return path


def run(name: str, overrides: list[str], out: Path) -> dict:
    keys = ["data=csv", *DATASETS[name]]
    keys[1] = f"data.path={data_file(keys[1].removeprefix('data.path='), out)}"
    cfg = train_config([*keys, *overrides], out, name)
    command = "forecast-train " + " ".join(["data=csv", *DATASETS[name], *overrides])
    start = time.perf_counter()
    try:
        metrics = train(cfg)
    except ForecastError as err:  # the default refused the file: a result too
        return {"dataset": name, "command": command, "error": str(err)}
    seconds = time.perf_counter() - start
    baselines = {b: metrics[f"test_mse_{b}"] for b in BASELINES if f"test_mse_{b}" in metrics}
    best = min(baselines, key=baselines.get)
    # combined with the baselines (ensemble.combine=validation): the LSTM alone, for comparison
    member = metrics.get("test_mse_member_0")
    alone = {} if member is None else {"test_mse_lstm": member}
    return {
        "dataset": name, "command": command, "seconds": seconds, "test_mse": metrics["test_mse"],
        **alone, **{f"test_mse_{b}": v for b, v in baselines.items()}, "best_baseline": best,
        "ratio": metrics["test_mse"] / baselines[best],
    }  # fmt: skip


def table(results: dict) -> str:
    """One row per data set; with a combination, the LSTM's own MSE beside it."""
    combined = any("test_mse_lstm" in r for r in results["runs"])
    rows = []
    for r in results["runs"]:
        if "error" in r:
            rows.append([r["dataset"], f"refused: {r['error'][:80]}", *[""] * (5 + combined)])
            continue
        cells = [f"{r.get(f'test_mse_{b}', float('nan')):.4f}" for b in BASELINES]
        alone = [f"{r['test_mse_lstm']:.4f}"] if combined else []
        rows.append([r["dataset"], f"{r['test_mse']:.4f}", *alone, *cells, f"{r['ratio']:.3f}",
                     f"{r['seconds'] / 60:.1f}"])  # fmt: skip
    header = ["data", "model", *(["LSTM alone"] if combined else []), "naive", "seasonal naive",
              "linear", "model / best baseline", "min (2 cores)"]  # fmt: skip
    note = f"Test MSE (scaled), `{results['label']}`."
    return markdown_table(header, rows, note, provenance(results["meta"]))


def choice_table(candidates: list[tuple[str, list[dict], dict | None]]) -> str:
    """How the default's loss and width were chosen: per candidate (a name, its runs of this
    script, its run of m4_benchmark.py or None), the ratio to the best baseline on each file
    measured (the worst of them where all eight were) and M4's OWA."""
    rows = []
    for name, runs, m4 in candidates:
        ratio = {r["dataset"]: r["ratio"] for result in runs for r in result["runs"]}
        worst = f"{max(ratio.values()):.4f}" if len(ratio) == len(DATASETS) else "-"
        owa = {r["frequency"]: r["owa"] for r in m4["runs"]} if m4 else {}
        cells = [f"{ratio[d]:.4f}" if d in ratio else "-" for d in ("m5_sales", "etth1_daily")]
        cells += [f"{owa[f]:.3f}" if f in owa else "-" for f in ("hourly", "weekly")]
        sources = [
            *(result["meta"]["command"] for result in runs),
            *([m4["meta"]["command"]] if m4 else []),
        ]
        rows.append([name, worst, *cells, "; ".join(f"`{c}`" for c in sources)])
    header = ["model (loss, width)", "worst ratio, 8 files", "M5 ratio", "ETTh1 daily ratio",
              "M4 Hourly OWA", "M4 Weekly OWA", "measured by"]  # fmt: skip
    return markdown_table(header, rows, "Ratio: test MSE over the best baseline's; OWA: M4's.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--override", nargs="*", default=[])
    parser.add_argument("--label", default="defaults")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    overrides = [*args.override, *(SMOKE if args.smoke else [])]
    out = args.out or BENCHMARKS / f"defaults_{args.label}.json"
    results = {"meta": run_meta("defaults_benchmark.py"), "label": args.label, "runs": []}
    for name in args.datasets:
        folder = REPO / "bench" / "defaults" / args.label  # runs: ignored by git
        result = run(name, overrides, folder)
        results["runs"].append(result)
        shown = result.get("error") or f"ratio {result['ratio']:.3f}"
        print(f"{name}: {shown}", flush=True)
        write_results(out, results)
    print(table(results))


if __name__ == "__main__":
    main()
