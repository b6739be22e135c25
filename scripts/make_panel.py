"""Write a synthetic panel of many series, as large as asked, without holding it in memory.

Each series has its own level (log-normal: levels far apart, as in a retailer's stores), a
daily season, a trend, noise, and covariates that move the target (a price-like input and a
load-like one, both known in advance). Rows are written a chunk of series at a time, as one
Parquet file or as a folder of ``part-<k>.parquet`` files each holding whole series (what
Spark writes after ``repartition(series)``; ``--hive`` writes ``series_group=<k>/`` folders).

    python scripts/make_panel.py --series 100000 --length 1000 --out /tmp/panel.parquet
    python scripts/make_panel.py --series 1000 --length 1000 --files 8 --out /tmp/panel
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEASON = 24  # hourly steps, a daily season
ROWS_PER_CHUNK = 1 << 21  # series are generated in chunks of about this many rows


def chunk(first: int, series: int, length: int, covariates: int, seed: int, unit: str) -> pa.Table:
    """Series ``first .. first + series - 1``, ``length`` hourly steps each: the same
    values whatever the chunking, as each series draws from its own seeded generator."""
    t = np.arange(length)
    stamps, target, inputs = [], [], [[] for _ in range(covariates)]
    start = np.datetime64("2020-01-01T00:00", unit)
    for k in range(first, first + series):
        rng = np.random.default_rng([seed, k])
        level = rng.lognormal(3.0, 1.5)
        x = [rng.normal(0, 1, length).cumsum() / np.sqrt(length) for _ in range(covariates)]
        season = np.sin(2 * np.pi * (t + rng.integers(SEASON)) / SEASON)
        effect = sum(0.3 * column for column in x) if covariates else 0.0
        y = level * (1 + 0.3 * season + 0.1 * t / length + effect + rng.normal(0, 0.05, length))
        stamps.append(start + t.astype("timedelta64[h]"))
        target.append(y.astype(np.float32))
        for column, values in zip(inputs, x, strict=True):
            column.append(values.astype(np.float32))
    names = pa.array([f"s{k:07d}" for k in range(first, first + series)])
    codes = pa.array(np.repeat(np.arange(series, dtype=np.int32), length))
    columns = {
        "series": pa.DictionaryArray.from_arrays(codes, names),
        "date": np.concatenate(stamps),
        "y": np.concatenate(target),
    }
    columns |= {f"x{j}": np.concatenate(column) for j, column in enumerate(inputs)}
    return pa.table(columns)


def write_panel(
    out: Path, series: int, length: int, covariates: int = 2, files: int = 0,
    hive: bool = False, seed: int = 0, unit: str = "ns",
) -> Path:  # fmt: skip
    """One Parquet file at ``out`` (``files=0``), or a folder of ``files`` files of whole
    series, timestamps in ``unit`` (``us`` for Spark, which reads no nanoseconds); returns
    ``out``."""
    per_chunk = max(1, ROWS_PER_CHUNK // length)
    groups = np.array_split(np.arange(series), files) if files else [np.arange(series)]
    if files:
        out.mkdir(parents=True, exist_ok=True)
    for g, members in enumerate(groups):
        if files:
            folder = out / f"series_group={g}" if hive else out
            folder.mkdir(exist_ok=True)
            path = folder / f"part-{g}.parquet"
        else:
            path = out
        writer = None
        for first in range(int(members[0]), int(members[-1]) + 1, per_chunk):
            count = min(per_chunk, int(members[-1]) + 1 - first)
            table = chunk(first, count, length, covariates, seed, unit)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=per_chunk * length)
        writer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, required=True)
    parser.add_argument("--length", type=int, required=True, help="steps per series")
    parser.add_argument("--covariates", type=int, default=2)
    parser.add_argument("--files", type=int, default=0, help="a folder of this many files")
    parser.add_argument("--hive", action="store_true", help="files in series_group=<k>/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    path = write_panel(
        args.out, args.series, args.length, args.covariates, args.files, args.hive, args.seed
    )
    print(f"wrote {args.series * args.length:,} rows ({args.series:,} series) to {path}")


if __name__ == "__main__":
    main()
