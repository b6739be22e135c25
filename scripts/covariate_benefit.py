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
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecast.config import CONF_DIR  # noqa: E402
from forecast.train import train  # noqa: E402

# What "without" empties, per preset: the covariates the preset adds.
WITHOUT = {
    "pjm_load": ["data.calendar=[]"],
    "m5_sales": ["data.future_covariates=[]"],
}
SMOKE = [
    "model.hidden_size=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
]


def run(preset: str, variant: str, seed: int, overrides: list[str], out: Path) -> dict:
    name = f"{preset}_{variant}_{seed}"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"experiment={preset}",
                f"seed={seed}",
                "register_model=null",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                f"paths.data_dir={REPO / 'data'}",
                f"paths.log_dir={out / 'logs'}",
                f"paths.output_dir={out / 'logs' / name}",
                f"logger.tracking_uri=sqlite:///{out / 'mlflow.db'}",
                *overrides,
            ],
        )
    start = time.perf_counter()
    metrics = train(cfg)
    return {"seconds": time.perf_counter() - start, **metrics}


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def table(results: list[dict]) -> str:
    lines = [
        "| preset | covariates | seeds | MAE | MSE | MAE seasonal naive | MAE linear | min/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
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
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(WITHOUT))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "covariate_benefit.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    extra = SMOKE if args.smoke else []
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "command": " ".join(["python scripts/covariate_benefit.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 2 cores",
        "commit": commit,
    }
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
    print(table(results))
    print(f"\n`{meta['command']}`, {meta['date']}, commit {commit}")


if __name__ == "__main__":
    main()
