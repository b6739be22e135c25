"""forecast-check against reading the file and against the loader, as the rows grow.

A long table of hourly series (id, timestamp, three values; 1,000 series, fewer in the smoke
run) with 0.1% of its rows lost (gaps) and 0.1% of its values NaN, written as Parquet. Timed
in one process, one after the other, so the ratios compare like with like on a shared machine:

- ``read``: read_table alone, the floor of anything that looks at the file;
- ``check``: forecast-check as a user first runs it, the gaps and NaN not yet handled: the
  profile finds them, and the loader is not run (training would stop anyway);
- ``check, clean``: with data.fill_gaps and data.fill_missing set: the profile, then the
  loader's own verdict (a full DataModule setup);
- ``setup``: the DataModule setup forecast-train runs before its first epoch.

    python scripts/benchmark_check.py            # 1e6 and 1e7 rows
    python scripts/benchmark_check.py --smoke    # 1e4 rows, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_setup import BENCHMARKS, markdown_table, provenance, run_meta, write_results
from hydra import compose, initialize_config_dir

from forecast.check import check
from forecast.data.reading import read_table
from forecast.reference import CONF_DIR

SERIES = 1000  # fewer in the smoke run: 1,000 rows each at least
FIXES = ["data.fill_gaps=interpolate", "data.fill_missing=interpolate"]


def messy_table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    series = min(SERIES, rows // 1000)
    length = rows // series
    stamps = pd.date_range("2020-01-01", periods=length, freq="h")
    frame = pd.DataFrame(
        {
            "id": np.repeat([f"s{k:04d}" for k in range(series)], length),
            "date": np.tile(stamps.to_numpy(), series),
            **{c: rng.standard_normal(series * length) for c in ("a", "b", "c")},
        }
    )
    inside = np.flatnonzero(np.tile(np.r_[False, np.ones(length - 2, bool), False], series))
    frame.loc[rng.choice(inside, len(frame) // 1000, replace=False), "a"] = np.nan
    lost = rng.choice(inside, len(frame) // 1000, replace=False)  # never a series' first or last
    return frame.drop(index=lost).reset_index(drop=True)


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = action()
    return time.perf_counter() - start, result


def measure(rows: int, folder: Path) -> dict:
    path = folder / f"messy_{rows}.parquet"
    messy_table(rows).to_parquet(path, index=False)
    base = [f"data.path={path}", "data=csv", "data.series_id=id"]
    base += ["data.lookback=96", "data.horizon=24"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        messy = compose("check", overrides=base)
        clean = compose("check", overrides=[*base, *FIXES])
    read_s, frame = timed(lambda: read_table(path))
    check_s, found = timed(lambda: check(messy))
    clean_s, verdict = timed(lambda: check(clean))
    from hydra.utils import instantiate

    datamodule = instantiate(clean.data)
    setup_s, _ = timed(datamodule.setup)
    return {
        "rows": len(frame),
        "series": int(frame["id"].nunique()),
        "read_s": round(read_s, 2),
        "check_s": round(check_s, 2),
        "check_exit": found,
        "check_clean_s": round(clean_s, 2),
        "check_clean_exit": verdict,
        "setup_s": round(setup_s, 2),
        "check_over_read": round(check_s / read_s, 2),
        "check_clean_over_setup": round(clean_s / setup_s, 2),
    }


def table(results: dict) -> str:
    rows = [
        (
            f"{r['rows']:,} ({r['series']:,} series)",
            f"{r['read_s']:.2f} s",
            f"{r['check_s']:.2f} s ({r['check_over_read']:.1f}x the read, exit {r['check_exit']})",
            f"{r['check_clean_s']:.2f} s ({r['check_clean_over_setup']:.2f}x the setup, "
            f"exit {r['check_clean_exit']})",
            f"{r['setup_s']:.2f} s",
        )
        for r in results["rows"]
    ]
    return markdown_table(
        ["rows", "read_table", "forecast-check, gaps and NaN found",
         "forecast-check, handled (+ the loader)", "DataModule setup"],
        rows,
        provenance(results["meta"]),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "check.json")
    args = parser.parse_args()
    sizes = [10_000] if args.smoke else [1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory() as folder:
        results = {"rows": [measure(n, Path(folder)) for n in sizes]}
    results["meta"] = run_meta("benchmark_check.py")
    print(table(results))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
