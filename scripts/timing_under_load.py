"""How a run degrades when other jobs share the cores, and what the thread settings change.

A short `forecast-train` (the default model, 2 epochs) is timed alone and next to
background load: ``--load`` processes that each keep the cores busy, either in pure Python
(one core each) or as another torch job does (matrix products on torch's default threads, whose
OpenMP threads then compete with ours). Each variant runs under the same loads:

- ``threads=null``: torch's default, one intra-op thread per core, OpenMP threads that spin
  while idle;
- ``threads=1`` (the default config's choice);
- ``threads=null`` with ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead.

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

from bench_setup import BENCHMARKS, REPO, markdown_table, provenance, run_meta, write_results

BIN = Path(sys.executable).parent
VARIANTS = {
    "threads=null (one per core)": (["threads=null"], {}),
    "threads=1": (["threads=1"], {}),
    "threads=null, OMP_WAIT_POLICY=PASSIVE": (["threads=null"], {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def burn_python() -> None:
    while True:
        pass


def burn_torch() -> None:
    import torch

    a = torch.randn(256, 256)
    while True:
        a = torch.tanh(a @ a)


LOADS = {"python": burn_python, "torch": burn_torch}


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
    variants = dict(list(VARIANTS.items())[:1]) if args.smoke else VARIANTS
    for name, (overrides, env) in variants.items():
        row = {"variant": name, "quiet_s": run(overrides, env, workdir, args.smoke)}
        for kind, target in LOADS.items():
            burners = [
                multiprocessing.Process(target=target, daemon=True) for _ in range(args.load)
            ]
            for burner in burners:
                burner.start()
            try:
                row[f"{kind}_load_s"] = run(overrides, env, workdir, args.smoke)
            finally:
                for burner in burners:
                    burner.terminate()
        rows.append(row)
        print(row, flush=True)
    results = {"meta": run_meta("timing_under_load.py"), "load": args.load, "rows": rows}
    print(table(results))
    write_results(args.out, results)


def table(results: dict) -> str:
    rows = []
    for r in results["rows"]:
        cells = [r["variant"], f"{r['quiet_s']:.1f}"]
        for kind in LOADS:
            loaded = r[f"{kind}_load_s"]
            cells += [f"{loaded:.1f}", f"{loaded / r['quiet_s']:.1f}x"]
        rows.append(cells)
    header = ["setting", "alone s", "next to Python load s", "slowdown", "next to torch load s",
              "slowdown"]  # fmt: skip
    return markdown_table(
        header,
        rows,
        f"`forecast-train trainer.max_epochs=2` (default model), alone and next to "
        f"{results['load']} busy processes of each kind.",
        provenance(results["meta"]),
    )


if __name__ == "__main__":
    main()
