"""The same forecast of many series through Apache Spark (local[2]) and forecast-predict:
identical numbers, and the time each takes.

A panel from ``make_panel.py`` (series of 1,000 hourly steps, the target alone), a model
trained one budgeted epoch on it and saved, then every series forecast twice: by
forecast-predict's path (chunks of series, a folder of Parquet files out) and by
``forecast.serving.spark.forecast_frame`` on a local Spark session of 2 cores reading the
same Parquet file and writing Parquet. Needs the [spark] extra and a Java runtime.

    python scripts/benchmark_spark.py                  # 10,000 series
    python scripts/benchmark_spark.py --series 200     # seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_setup import REPO, markdown_table, panel_model, provenance, run_meta, write_results
from make_panel import write_panel

from forecast.data.reading import read_table
from forecast.predict import TableWriter, histories
from forecast.serving.forecaster import Forecaster

LENGTH, HORIZON, CHUNK = 1000, 24, 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "spark.json")
    args = parser.parse_args()
    meta = run_meta("benchmark_spark.py")
    workdir = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    path = write_panel(workdir / "history.parquet", args.series, LENGTH, covariates=0, unit="us")
    model = panel_model(path, workdir / "model.pt", HORIZON)

    forecaster = Forecaster.load(model)
    start = time.perf_counter()
    with TableWriter(workdir / "predicted") as writer:
        for history in histories(path, forecaster.spec, CHUNK):
            writer.write(forecaster.predict(history))
    predict_s = time.perf_counter() - start

    from pyspark.sql import SparkSession

    from forecast.serving.spark import forecast_frame

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    )
    start = time.perf_counter()
    forecast_frame(spark.read.parquet(str(path)), str(model)).write.parquet(str(workdir / "spark"))
    spark_s = time.perf_counter() - start
    spark.stop()

    def table(folder: str) -> pd.DataFrame:
        frame = read_table(workdir / folder)
        frame["date"] = frame["date"].astype("datetime64[ns]")
        return frame.sort_values(["series", "date"]).reset_index(drop=True)

    a, b = table("predicted"), table("spark")
    same_rows = a[["series", "date"]].equals(b[["series", "date"]])
    results = {
        "meta": meta,
        "series": args.series,
        "rows": args.series * LENGTH,
        "predict_s": predict_s,
        "spark_s": spark_s,
        "forecast_rows": len(a),
        "same_rows": bool(same_rows),
        "max_abs_difference": float(np.abs(a["y"].to_numpy() - b["y"].to_numpy()).max()),
        "max_relative_difference": float(
            (np.abs(a["y"] - b["y"]) / np.abs(a["y"]).clip(lower=1e-12)).max()
        ),
    }
    print(render(results))
    write_results(args.out, results)


def render(r: dict) -> str:
    rows = [
        ["forecast-predict (chunk_series=10,000)", f"{r['predict_s']:.1f} s",
         f"{r['series'] / r['predict_s']:,.0f}"],
        ["Spark local[2], forecast_frame", f"{r['spark_s']:.1f} s",
         f"{r['series'] / r['spark_s']:,.0f}"],
    ]  # fmt: skip
    return markdown_table(
        ["path", f"{r['series']:,} series ({r['rows']:,} rows)", "series/s"],
        rows,
        f"Same {r['forecast_rows']:,} forecast rows (series and timestamps): {r['same_rows']}; "
        f"largest difference {r['max_abs_difference']:.3g} "
        f"(relative {r['max_relative_difference']:.3g}), float32 forwards batched differently.",
        provenance(r["meta"]),
    )


if __name__ == "__main__":
    main()
