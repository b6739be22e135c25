"""Where a training step's time goes: the raw loop and forecast's Lightning loop under cProfile.

Each function's own time (``tottime``) is charged to the package that defines it, so the table
shows what the framework adds on top of the torch work both loops share. Uses the same model
and batches as benchmark_training.py.

    python scripts/profile_training.py
    python scripts/profile_training.py --smoke

Or summarize a py-spy sampling of the benchmark the same way (leaf frame's package, per loop):

    py-spy record -r 100 -f raw -o bench/py-spy.txt -- python scripts/benchmark_training.py
    python scripts/profile_training.py --py-spy bench/py-spy.txt
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
from collections import defaultdict
from pathlib import Path

import torch
from bench_setup import etth1
from benchmark_training import batches_of, lightning_loop, raw_loop

from forecast.model import LSTMConfig, LSTMLitModule, LSTMNet

PACKAGES = ("pytorch_lightning", "lightning_fabric", "lightning_utilities", "torchmetrics",
            "torch", "forecast")  # fmt: skip


def package_of(filename: str) -> str:
    if filename.startswith(("<built-in", "~")):
        return "builtins (C: torch ops, optimizer kernels)"
    parts = Path(filename).parts
    return next((p for p in reversed(parts) if p in PACKAGES), "other python")


def py_spy_summary(path: Path) -> dict[str, dict[str, int]]:
    """Samples per loop (by the benchmark function on the stack) and leaf frame's package."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in path.read_text().splitlines():
        stack, samples = line.rsplit(" ", 1)
        frames = stack.split(";")
        loop = next((n for n in ("lightning_loop", "raw_loop") if n in stack), "setup")
        leaf = frames[-1][frames[-1].find("(") + 1 :]
        counts[loop][package_of(leaf)] += int(samples)
    return {loop: dict(packages) for loop, packages in counts.items()}


def profile(fn) -> tuple[dict[str, float], float]:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.items():
        totals[package_of(filename)] += tottime
    return dict(totals), sum(totals.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/profile_training.json"))
    parser.add_argument("--py-spy", type=Path, help="summarize this raw py-spy file instead")
    args = parser.parse_args()
    if args.py_spy:
        summary = py_spy_summary(args.py_spy)
        for loop, packages in summary.items():
            total = sum(packages.values())
            shares = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(packages.items()))
            print(f"{loop:<15} {total:>6} samples: {shares}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"py_spy": summary}, indent=2))
        return
    n = 6 if args.smoke else args.batches
    dm = etth1(96, 96, 32)
    batches, _ = batches_of(dm, n)
    config = LSTMConfig(hidden_size=64)
    raw_loop(LSTMNet(config, dm.spec), batches[:3], 1, "cpu", "32-true")  # one-time costs
    torch.manual_seed(0)
    raw, raw_total = profile(
        lambda: raw_loop(LSTMNet(config, dm.spec), batches, 1, "cpu", "32-true")
    )
    torch.manual_seed(0)
    module = LSTMLitModule(dm.spec, scheduler=None, hidden_size=64)
    ours, ours_total = profile(lambda: lightning_loop(module, batches, 1, "cpu", "32-true"))
    names = sorted(set(raw) | set(ours), key=lambda k: -ours.get(k, 0))
    print(f"{n} steps, default model, batch 32; seconds of own time by package")
    print(f"{'package':<44} {'raw loop':>9} {'lightning':>9}")
    for name in names:
        print(f"{name:<44} {raw.get(name, 0):>9.2f} {ours.get(name, 0):>9.2f}")
    print(f"{'total':<44} {raw_total:>9.2f} {ours_total:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"steps": n, "raw": raw, "lightning": ours}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
