"""What covariates buy: a preset trained with and without them, over seeds, side by side.

    python scripts/covariate_benefit.py                  # pjm_load and m5_sales, 3 seeds each
    python scripts/covariate_benefit.py --presets pjm_load --seeds 42
    python scripts/covariate_benefit.py --smoke          # tiny model, 2 batches: CI only

Each run is ``forecast-train experiment=<preset> seed=<s>`` with (``with``) and without
(``without``: the preset's covariates emptied) its covariates; everything else, the split
included, is the same. Test MAE and MSE are in original units (``*_orig``: load in MW, sales
in units), with the seasonal naive and linear baselines of the same windows. Prints a table
and writes JSON (``benchmarks/covariate_benefit.json``, committed) with the command, date,
machine and commit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_setup import SMOKE, markdown_table, preset_config, provenance, run_meta  # noqa: E402

from forecast.train import train  # noqa: E402

# What "without" empties, per preset: the covariates the preset adds.
WITHOUT = {
    "pjm_load": ["data.calendar=[]"],
    "m5_sales": ["data.future_covariates=[]"],
}


def run(preset: str, variant: str, seed: int, overrides: list[str], out: Path) -> dict:
    cfg = preset_config(preset, seed, out, f"{preset}_{variant}_{seed}", overrides)
    start = time.perf_counter()
    metrics = train(cfg)
    return {"seconds": time.perf_counter() - start, **metrics}


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def table(results: dict) -> str:
    meta, results = results["meta"], results["runs"]
    rows = []
    for preset in dict.fromkeys(r["preset"] for r in results):
        for variant in ("with", "without"):
            runs = [r for r in results if (r["preset"], r["variant"]) == (preset, variant)]
            if not runs:
                continue
            mae = [r["test_mae_orig"] for r in runs]
            mse = [r["test_rmse_orig"] ** 2 for r in runs]
            # baselines in original units: their scaled MAE times the model's unit ratio
            unit = statistics.fmean(r["test_mae_orig"] / r["test_mae"] for r in runs)
            naive = [r.get("test_mae_seasonal_naive", float("nan")) * unit for r in runs]
            linear = [r["test_mae_linear"] * unit for r in runs]
            minutes = statistics.fmean(r["seconds"] for r in runs) / 60
            cells = [preset, variant, len(runs), spread(mae), spread(mse), spread(naive),
                     spread(linear), f"{minutes:.1f}"]  # fmt: skip
            rows.append(cells)
    header = ["preset", "covariates", "seeds", "MAE", "MSE", "MAE seasonal naive", "MAE linear",
              "min/run"]  # fmt: skip
    return markdown_table(header, rows, provenance(meta))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(WITHOUT))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "covariate_benefit.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    extra = SMOKE if args.smoke else []
    meta = run_meta("covariate_benefit.py")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for preset in args.presets:
        for seed in args.seeds:
            for variant, overrides in (("with", []), ("without", WITHOUT[preset])):
                folder = REPO / "bench" / "covariates"  # runs: ignored by git
                metrics = run(preset, variant, seed, [*overrides, *extra], folder)
                results.append({"preset": preset, "variant": variant, "seed": seed, **metrics})
                print(f"{preset} {variant} seed={seed}: test MAE {metrics['test_mae_orig']:.3f} "
                      f"({metrics['seconds']:.0f} s)", flush=True)  # fmt: skip
                args.out.write_text(json.dumps({"meta": meta, "runs": results}, indent=2))
    print(table({"meta": meta, "runs": results}))


if __name__ == "__main__":
    main()
