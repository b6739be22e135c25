"""How a run degrades when other jobs share the cores, and what the thread settings change.

A short `forecast-train` (the default model, 2 epochs) is timed alone and next to
background load: ``--load`` processes that each keep a core busy in pure Python, as other
users' jobs do on a shared machine. Each variant runs under the same load:

- torch's default intra-op thread count (one per core), OpenMP threads that spin while idle;
- ``threads=1``;
- ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning.

    python scripts/timing_under_load.py            # load 2 (the cores of this machine)
    python scripts/timing_under_load.py --smoke    # seconds, CI

Writes ``benchmarks/timing_under_load.json``; ``scripts/readme_tables.py`` renders it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_setup import BENCHMARKS, REPO, provenance, run_meta, write_results

BIN = Path(sys.executable).parent
VARIANTS = {
    "default threads": ([], {}),
    "threads=1": (["threads=1"], {}),
    "OMP_WAIT_POLICY=PASSIVE": ([], {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def burn() -> None:
    while True:
        pass


def run(overrides: list[str], env: dict[str, str], workdir: Path, smoke: bool) -> float:
    """Wall seconds of one short forecast-train in its own folder."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    size = ["model.hidden_size=8", "trainer.limit_train_batches=4"] if smoke else []
    argv = [
        str(BIN / "forecast-train"),
        "trainer.max_epochs=2",
        "trainer.min_epochs=2",
        "register_model=null",
        f"paths.data_dir={REPO / 'data'}",
        f"paths.log_dir={folder / 'logs'}",
        f"logger.tracking_uri=sqlite:///{folder / 'mlflow.db'}",
        *size,
        *overrides,
    ]
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=folder, env={**os.environ, **env}, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", type=int, default=os.cpu_count(), help="busy processes")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "timing_under_load.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="timing-under-load-"))
    rows = []
    for name, (overrides, env) in VARIANTS.items():
        quiet = run(overrides, env, workdir, args.smoke)
        burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load)]
        for burner in burners:
            burner.start()
        try:
            loaded = run(overrides, env, workdir, args.smoke)
        finally:
            for burner in burners:
                burner.terminate()
        rows.append({"variant": name, "quiet_s": quiet, "loaded_s": loaded})
        print(f"{name}: {quiet:.1f} s alone, {loaded:.1f} s under load", flush=True)
    results = {"meta": run_meta("timing_under_load.py"), "load": args.load, "rows": rows}
    print(table(results))
    write_results(args.out, results)


def table(results: dict) -> str:
    lines = [
        "| threads | alone s | next to the load s | slowdown |",
        "|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['variant']} | {r['quiet_s']:.1f} | {r['loaded_s']:.1f} "
            f"| {r['loaded_s'] / r['quiet_s']:.1f}x |"
        )
    lines += [
        "",
        f"`forecast-train trainer.max_epochs=2` (default model), alone and next to "
        f"{results['load']} busy processes.",
        provenance(results["meta"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
