"""Where a training step's time goes: the raw loop and forecast's Lightning loop under cProfile.

Each function's own time (``tottime``) is charged to the package that defines it, so the table
shows what the framework adds on top of the torch work both loops share. Uses the same model
and batches as benchmark_training.py.

    python scripts/profile_training.py
    python scripts/profile_training.py --smoke
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections import defaultdict
from pathlib import Path

import torch
from bench_setup import BENCHMARKS, etth1, markdown_table, provenance, run_meta, write_results
from benchmark_training import batches_of, lightning_loop, raw_loop

from forecast.model.config import LSTMConfig
from forecast.model.module import LSTMLitModule
from forecast.model.net import LSTMNet

PACKAGES = ("pytorch_lightning", "lightning_fabric", "lightning_utilities", "torchmetrics",
            "torch", "forecast")  # fmt: skip


def package_of(filename: str) -> str:
    if filename.startswith(("<built-in", "~")):
        return "builtins (C: torch ops, optimizer kernels)"
    parts = Path(filename).parts
    return next((p for p in reversed(parts) if p in PACKAGES), "other python")


def profile(fn) -> dict[str, float]:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.items():
        totals[package_of(filename)] += tottime
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "profile_training.json")
    args = parser.parse_args()
    n = 6 if args.smoke else args.batches
    dm = etth1(96, 96, 32)
    batches, _ = batches_of(dm, n)
    config = LSTMConfig(hidden_size=64)
    raw_loop(LSTMNet(config, dm.spec), batches[:3], 1, "cpu", "32-true")  # one-time costs
    torch.manual_seed(0)
    raw = profile(lambda: raw_loop(LSTMNet(config, dm.spec), batches, 1, "cpu", "32-true"))
    torch.manual_seed(0)
    module = LSTMLitModule(dm.spec, scheduler=None, hidden_size=64)
    ours = profile(lambda: lightning_loop(module, batches, 1, "cpu", "32-true"))
    results = {
        "meta": run_meta("profile_training.py"),
        "steps": n,
        "raw": raw,
        "lightning": ours,
    }
    print(table(results))
    write_results(args.out, results)


def table(results: dict) -> str:
    raw, ours = results["raw"], results["lightning"]
    names = sorted(set(raw) | set(ours), key=lambda k: -ours.get(k, 0))
    rows = [[name, f"{raw.get(name, 0):.2f}", f"{ours.get(name, 0):.2f}"] for name in names]
    rows.append(["total", f"{sum(raw.values()):.2f}", f"{sum(ours.values()):.2f}"])
    return markdown_table(
        ["package", "raw loop s", "Lightning s"],
        rows,
        f"{results['steps']} steps of the default model at batch 32, cProfile's own time by "
        "package.",
        provenance(results["meta"]),
    )


if __name__ == "__main__":
    main()
