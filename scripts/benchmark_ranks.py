"""Memory per DDP rank: the DataModule's setup peak in each of 2 ranks started by torchrun
(each reads its own series) against the same setup in one process.

The panel is ``scripts/make_panel.py``'s (series of 1,000 hourly steps, string ids, one
target, two future covariates), as a folder of 8 Parquet files, the shape a Spark job or a
partitioned export writes. Each figure is a fresh process's peak RSS growth after its
imports (and, under DDP, after joining the process group), as in ``benchmark_memory.py``.

    python scripts/benchmark_ranks.py                 # 1e6, 1e7, 1e8 rows
    python scripts/benchmark_ranks.py --smoke         # 1e5 rows, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RANKS, LENGTH, FILES, HORIZON = 2, 1000, 8, 24


def child(path: str) -> None:
    """One process's setup (a rank's, under torchrun): its peak RSS growth and time, into
    ``<path>.rank<k>.json``."""
    from benchmark_memory import reset_peak, status_mb
    from torch import distributed as dist

    from forecast.data.datamodule import ForecastDataModule

    if dist.is_torchelastic_launched():
        dist.init_process_group("gloo")
    base = reset_peak()
    start = time.perf_counter()
    dm = ForecastDataModule(
        path, timestamp="date", series_id="series", features=["y"],
        future_covariates=["x0", "x1"], horizon=HORIZON, max_rows=None, max_values=None,
        windows_per_epoch=1 << 14,
    )  # fmt: skip
    dm.setup()
    seconds = time.perf_counter() - start
    rank = dist.get_rank() if dist.is_initialized() else 0
    rows = len(dm.values)
    figures = {"rank": rank, "rows": rows, "series": len(dm.bounds),
               "peak_mb": status_mb("VmHWM") - base, "setup_s": seconds}  # fmt: skip
    Path(f"{path}.rank{rank}.json").write_text(json.dumps(figures))


def measure(path: Path, ranks: int) -> list[dict]:
    """Each process's figures: one process, or ``ranks`` started by torchrun."""
    script = [str(Path(__file__).resolve()), "--child", str(path)]
    if ranks == 1:
        argv = [sys.executable, *script]
    else:
        argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={ranks}",
                "--master-port=29533", *script]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    subprocess.run(argv, check=True, env=env)
    return [json.loads(Path(f"{path}.rank{k}.json").read_text()) for k in range(ranks)]


def sizes_row(rows: int, workdir: Path) -> dict:
    from make_panel import write_panel

    path = write_panel(workdir / f"panel-{rows}", rows // LENGTH, LENGTH, files=FILES)
    one = measure(path, 1)[0]
    ranks = measure(path, RANKS)
    result = {"rows": rows, "array_mb": rows * 3 * 4 / 2**20, "one": one, "ranks": ranks}
    print(json.dumps(result), flush=True)
    return result


def table(results: dict) -> str:
    from bench_setup import markdown_table, provenance

    rows = []
    for r in results["sizes"]:
        one, ranks = r["one"], r["ranks"]
        worst = max(rank["peak_mb"] for rank in ranks)
        rows.append([
            f"{r['rows']:,}", f"{r['array_mb']:,.0f} MB",
            f"{one['peak_mb']:,.0f} MB ({one['peak_mb'] / r['array_mb']:.1f}x)",
            ", ".join(f"{rank['peak_mb']:,.0f} MB" for rank in ranks),
            f"{worst / one['peak_mb']:.2f}x",
            ", ".join(f"{rank['series']:,}" for rank in ranks),
            f"{one['setup_s']:.1f} s / {max(rank['setup_s'] for rank in ranks):.1f} s",
        ])  # fmt: skip
    return markdown_table(
        ["rows", "float32 arrays", "one process: setup peak (x arrays)",
         f"each of {RANKS} ranks: setup peak", "largest rank / one process",
         "series per rank", "setup time, one / slowest rank"],
        rows,
        f"A folder of {FILES} Parquet files; one target, two future covariates; peak RSS "
        "growth of each process's DataModule setup after its imports.",
        provenance(results["meta"]),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    from bench_setup import run_meta, write_results

    sizes = args.sizes or ([100_000] if args.smoke else [1_000_000, 10_000_000, 100_000_000])
    workdir = Path(tempfile.mkdtemp(prefix="bench-ranks-"))
    output = {"meta": run_meta("benchmark_ranks.py"), "sizes": []}
    for rows in sizes:
        output["sizes"].append(sizes_row(rows, workdir))
    print(table(output))
    write_results(args.out or REPO / "benchmarks" / "ranks.json", output)


if __name__ == "__main__":
    main()
