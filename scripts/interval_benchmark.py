"""Prediction intervals as the field scores them, on ETTh1 and the covariate presets: the
80% interval (levels 0.1 and 0.9) of each way ``forecast`` makes one, side by side.

    python scripts/interval_benchmark.py                       # every preset and variant
    python scripts/interval_benchmark.py --presets etth1_h96 --variants studentt
    python scripts/interval_benchmark.py --override threads=1  # beside another job
    python scripts/interval_benchmark.py --seeds 42 43 44      # each run under three seeds
    python scripts/interval_benchmark.py --smoke               # tiny model: CI only

Each run is ``forecast-train experiment=<preset>`` plus a variant's keys: quantile heads
trained by the pinball loss, a distribution head trained by its likelihood, each with and
without ``conformal=true`` (calibrated on the validation windows). Recorded from the run's
own test scoring: WQL (CRPS from the quantiles), the interval's coverage and width in the
data's units, MSIS, the point forecast's MSE, the validation coverage before and after
calibration, and the wall time. A coverage moves by several points between seeds of the same
command, so with ``--seeds`` the table gives each figure's mean over the seeds and the
coverage's range. Writes ``benchmarks/intervals.json`` (committed), which
``scripts/readme_tables.py`` renders.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_setup import (  # noqa: E402
    BENCHMARKS,
    SMOKE,
    markdown_table,
    preset_config,
    provenance,
    run_meta,
    write_results,
)

from forecast.train import train  # noqa: E402

PRESETS = ("etth1_h96", "pjm_load", "m5_sales")
LEVELS = "model.quantiles=[0.1,0.9]"
VARIANTS = {
    "quantile heads": [LEVELS],
    "quantile heads, conformal": [LEVELS, "conformal=true"],
    "studentt": [LEVELS, "model.distribution=studentt"],
    "studentt, conformal": [LEVELS, "model.distribution=studentt", "conformal=true"],
    "normal": [LEVELS, "model.distribution=normal"],
}
# counts: the sales preset's negative binomial (one scaler per column, as the preset has)
NEGBINOMIAL = [LEVELS, "model.distribution=negbinomial"]
COUNTS = {"m5_sales": {"negbinomial": NEGBINOMIAL,
                       "negbinomial, conformal": [*NEGBINOMIAL, "conformal=true"]}}  # fmt: skip
SHOWN = ("test_wql", "test_coverage", "test_interval_width", "test_msis", "test_mse")


def run(preset: str, variant: str, seed: int, overrides: list[str], out: Path) -> dict:
    name = f"{preset}_{variant}_{seed}".replace(", ", "_").replace(" ", "_")
    cfg = preset_config(preset, seed, out, name, overrides)
    start = time.perf_counter()
    metrics = train(cfg)
    seconds = time.perf_counter() - start
    kept = ("val_coverage", "val_coverage_conformal", *SHOWN)
    return {"preset": preset, "variant": variant, "seed": seed, "seconds": seconds,
            "command": " ".join(["forecast-train", f"experiment={preset}", f"seed={seed}",
                                 *overrides]),
            **{k: metrics[k] for k in kept if k in metrics}}  # fmt: skip


def table(*every: dict) -> str:
    """Each preset's variants, from every result file (one run of this script each)."""
    each = [r for results in every for r in results["runs"]]
    presets = list(dict.fromkeys(r["preset"] for r in each))  # a preset's rows together
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(each, key=lambda r: presets.index(r["preset"])):
        groups.setdefault((r["preset"], r["variant"]), []).append(r)
    rows = []
    for (preset, variant), runs in groups.items():
        mean = {k: statistics.fmean(r[k] for r in runs) for k in (*SHOWN, "seconds")}
        coverages = [r["test_coverage"] for r in runs]
        spread = f" ({min(coverages):.3f} to {max(coverages):.3f})" if len(runs) > 1 else ""
        val = f"{statistics.fmean(r['val_coverage'] for r in runs):.3f}"
        if "val_coverage_conformal" in runs[0]:
            val += f" -> {statistics.fmean(r['val_coverage_conformal'] for r in runs):.3f}"
        rows.append([
            preset, variant, str(len(runs)), f"{mean['test_wql']:.4f}",
            f"{mean['test_coverage']:.3f}{spread}", f"{abs(mean['test_coverage'] - 0.8):.3f}",
            f"{mean['test_interval_width']:.4g}", f"{mean['test_msis']:.2f}",
            f"{mean['test_mse']:.4f}", val, f"{mean['seconds']:.0f}",
        ])  # fmt: skip
    header = ["preset", "80% interval from", "seeds", "WQL", "coverage (range)", "|cov - 0.8|",
              "width", "MSIS", "MSE", "val coverage", "s (2 cores)"]  # fmt: skip
    return markdown_table(header, rows, *(provenance(results["meta"]) for results in every))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--variants", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--override", nargs="*", default=[], help="keys added to every run")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "intervals.json")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 batches")
    args = parser.parse_args()
    results = {"meta": run_meta("interval_benchmark.py"), "runs": []}
    (REPO / "bench").mkdir(exist_ok=True)  # runs, ignored by git: a folder of their own
    folder = Path(tempfile.mkdtemp(prefix="intervals-", dir=REPO / "bench"))
    for preset in args.presets:
        variants = VARIANTS | COUNTS.get(preset, {})
        for variant in args.variants or variants:
            overrides = [*variants[variant], *args.override, *(SMOKE if args.smoke else [])]
            for seed in args.seeds:
                results["runs"].append(run(preset, variant, seed, overrides, folder))
                write_results(args.out, results)
    print(table(results))


if __name__ == "__main__":
    main()
