"""Memory of the window dataset: peak RSS against the raw float32 array, as rows grow.

Each measurement runs in a fresh process; the peak RSS is reset after imports (Linux
``/proc/self/clear_refs``), so the figure is the growth that building the data costs.
Three ways to hold ``rows x 7`` values windowed at lookback 96 / horizon 96:

- ``windows``: forecast's WindowDataset over the float32 array (unfold views + index math),
  iterated for a few batches;
- ``datamodule``: forecast's ForecastDataModule from a Parquet file: pandas, checks,
  float64 working copies, scaling; what ``forecast-train`` really pays;
- ``covariates``: the same, with two of the columns as future covariates and the hour as a
  calendar feature (their windows are views too);
- ``stages``: the DataModule's steps one by one (read, check and stack, scale), to show
  where its peak comes from;
- ``materialized``: every window copied out up front, as several libraries do
  (``rows x 192 x 7`` float32); measured where it fits, else computed.

``--panels`` measures the shape of a retailer's table instead (``scripts/make_panel.py``:
series of 1,000 hourly steps with string ids, one target, two future covariates) at 1e6,
1e7 and 1e8 rows: the DataModule's setup peak against the float32 arrays (target and
covariates), its time, and budgeted training epochs (``data.windows_per_epoch``) of the
default model, whose windows/s should not depend on the table's size.

    python scripts/benchmark_memory.py               # 1e5, 1e6, 1e7 rows
    python scripts/benchmark_memory.py --panels      # 1e6, 1e7, 1e8 rows of a panel
    python scripts/benchmark_memory.py --smoke       # 1e4 rows, seconds
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FEATURES, LOOKBACK, HORIZON = 7, 96, 96
MATERIALIZE_LIMIT_BYTES = 4 << 30  # do not try to allocate more than this on a 24 GiB box
PANEL_LENGTH, PANEL_HORIZON, EPOCH_WINDOWS, EPOCHS = 1000, 24, 1 << 14, 4
PREDICT_CHUNK = 10_000  # forecast-predict chunk_series


def status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak() -> float:
    """Start the peak over from the current RSS (Linux: writing 5 to clear_refs resets
    VmHWM), so a transient peak while importing is not taken for the baseline."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_mb("VmRSS")


def child(kind: str, rows: int, workdir: str) -> None:
    """Run in a subprocess: build one way and print the peak RSS growth in MB."""
    import numpy as np
    import pandas as pd
    import torch

    from forecast.data.datamodule import ForecastDataModule
    from forecast.data.options import DataOptions
    from forecast.data.reading import read_table
    from forecast.data.scaling import Scaler
    from forecast.data.series import prepare_series
    from forecast.data.windows import WindowDataset

    path = Path(workdir) / f"{rows}.parquet"
    if kind == "panel":
        return panel_child(Path(workdir) / f"panel-{rows}.parquet")
    if kind == "panel_target":
        return panel_child(Path(workdir) / f"target-{rows}.parquet", covariates=False)
    if kind == "predict":
        return predict_child(Path(workdir))
    base = reset_peak()
    if kind == "windows":
        values = torch.from_numpy(np.random.default_rng(0).random((rows, FEATURES), np.float32))
        dataset = WindowDataset(values, [(0, rows)], LOOKBACK, HORIZON, list(range(FEATURES)))
        for start in range(0, 64 * 10, 64):
            dataset[torch.arange(start, start + 64)]
    elif kind == "stages":  # where the DataModule's peak comes from, stage by stage
        stages = {}
        frame = read_table(path)
        stages["read_table"] = status_mb("VmHWM") - base
        series = prepare_series(frame, DataOptions(), dtype=np.float64)
        stages["prepare_series"] = status_mb("VmHWM") - base
        del frame
        # as the DataModule: statistics and subtraction in float64, into the float32 table
        Scaler.fit(series.values[: int(0.7 * rows)]).transform(series.values, np.float32)
        stages["scale"] = status_mb("VmHWM") - base
        print(json.dumps({"peak_mb": stages["scale"], "stages": stages}))
        return
    elif kind in ("datamodule", "covariates"):
        covariates = {"future_covariates": ["x5", "x6"], "calendar": ["hour"]}
        dm = ForecastDataModule(
            str(path),
            lookback=LOOKBACK,
            horizon=HORIZON,
            batch_size=64,
            **(covariates if kind != "datamodule" else {}),
        )
        dm.setup()
        next(iter(dm.train_dataloader()))
    else:
        values = np.random.default_rng(0).random((rows, FEATURES), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(values, LOOKBACK + HORIZON, axis=0)
        windows = np.ascontiguousarray(windows)  # (rows - 191, 7, 192): every window a copy
        del values
    _ = pd  # imported before the baseline so its import cost is not counted
    print(json.dumps({"peak_mb": status_mb("VmHWM") - base}))


def panel_child(path: Path, covariates: bool = True) -> None:
    """Setup of a panel file as forecast-train reads it, then budgeted epochs: the median
    of the epochs after the first (which warms up) is the epoch's time. Without
    ``covariates`` (a file of the target alone), the setup alone."""
    import statistics
    import time

    import pytorch_lightning as pl
    from bench_setup import lit_module, training_only

    from forecast.data.datamodule import ForecastDataModule

    base = reset_peak()
    start = time.perf_counter()
    dm = ForecastDataModule(
        str(path), timestamp="date", series_id="series", features=["y"],
        future_covariates=["x0", "x1"] if covariates else [], horizon=PANEL_HORIZON,
        max_rows=None, max_values=None, windows_per_epoch=EPOCH_WINDOWS, batch_size=256,
    )  # fmt: skip
    dm.setup()
    setup_s = time.perf_counter() - start
    setup_mb = status_mb("VmHWM") - base
    if not covariates:
        print(json.dumps({"setup_mb": setup_mb, "setup_s": setup_s}))
        return
    module = lit_module("segment_lstm", dm.spec, dm.season, scheduler=None)  # no validation
    times: list[float] = []

    class EpochTimes(pl.Callback):
        def on_train_epoch_start(self, *_: object) -> None:
            times.append(-time.perf_counter())

        def on_train_epoch_end(self, *_: object) -> None:
            times[-1] += time.perf_counter()

    trainer = training_only(EPOCHS, [EpochTimes()])
    trainer.fit(module, train_dataloaders=dm.train_dataloader())
    epoch_s = statistics.median(times[1:])
    print(json.dumps({
        "setup_mb": setup_mb, "setup_s": setup_s, "epoch_s": epoch_s,
        "windows_per_s": EPOCH_WINDOWS / epoch_s, "train_windows": len(dm.datasets["train"]),
        "peak_mb": status_mb("VmHWM") - base, "lookback": dm.spec.lookback,
    }))  # fmt: skip


def predict_child(workdir: Path) -> None:
    """forecast-predict's path over the panel (chunks of series in, a folder of parts out),
    then the network's forward alone on the same windows, in the same process."""
    import time

    import numpy as np
    import torch

    from forecast.data.parquet import series_chunks
    from forecast.predict import TableWriter, histories
    from forecast.serving.forecaster import Forecaster

    forecaster = Forecaster.load(workdir / "model.pt")
    spec = forecaster.spec
    base = reset_peak()
    start = time.perf_counter()
    series = 0
    with TableWriter(workdir / "forecasts") as writer:
        for history in histories(workdir / "history.parquet", spec, PREDICT_CHUNK):
            writer.write(forecaster.predict(history))
            series += history["series"].nunique()
    predict_s = time.perf_counter() - start
    peak_mb = status_mb("VmHWM") - base
    forward_s = 0.0
    columns = ["date", "series", "y"]
    for history in series_chunks(workdir / "history.parquet", columns, ["series"], PREDICT_CHUNK):
        y = history["y"].to_numpy(np.float32).reshape(-1, PANEL_LENGTH)[:, -spec.lookback :]
        x = torch.from_numpy(y[:, :, None].copy())
        start = time.perf_counter()
        with torch.inference_mode():
            forecaster.net.forecast(x, None, None)
        forward_s += time.perf_counter() - start
    print(json.dumps({
        "series": series, "predict_s": predict_s, "forward_s": forward_s, "peak_mb": peak_mb,
        "files": len(list((workdir / "forecasts").iterdir())),
    }))  # fmt: skip


def forecasting(series: int, workdir: Path) -> dict:
    """A model trained one budgeted epoch on ``series`` series (no covariates: the history
    alone is forecast), then forecast-predict's path over every series in a fresh process."""
    from bench_setup import panel_model
    from make_panel import write_panel

    path = write_panel(workdir / "history.parquet", series, PANEL_LENGTH, covariates=0)
    panel_model(path, workdir / "model.pt", PANEL_HORIZON)
    measured = measure("predict", series * PANEL_LENGTH, workdir)
    history_mb = series * PANEL_LENGTH * 4 / 2**20
    return {"rows": series * PANEL_LENGTH, "history_mb": history_mb, **measured}


def panels(sizes: list[int], workdir: Path) -> list[dict]:
    """``panel`` children at each size, each from a file make_panel.py writes."""
    from make_panel import write_panel

    results = []
    for rows in sizes:
        path = write_panel(workdir / f"target-{rows}.parquet", rows // PANEL_LENGTH,
                           PANEL_LENGTH, covariates=0)  # fmt: skip
        target = measure("panel_target", rows, workdir)
        path.unlink()
        path = write_panel(workdir / f"panel-{rows}.parquet", rows // PANEL_LENGTH, PANEL_LENGTH)
        measured = measure("panel", rows, workdir)
        path.unlink()
        results.append({
            "rows": rows, "array_mb": rows * 3 * 4 / 2**20, **measured,
            "target_array_mb": rows * 4 / 2**20, "target_setup_mb": target["setup_mb"],
            "target_setup_s": target["setup_s"],
        })  # fmt: skip
        print(json.dumps(results[-1]), flush=True)
    return results


def write_table(rows: int, workdir: Path) -> None:
    import numpy as np
    import pandas as pd

    values = np.random.default_rng(0).random((rows, FEATURES), np.float32)
    frame = pd.DataFrame(values, columns=[f"x{k}" for k in range(FEATURES)])
    frame.insert(0, "date", pd.date_range("2000-01-01", periods=rows, freq="min"))
    frame.to_parquet(workdir / f"{rows}.parquet")


def measure(kind: str, rows: int, workdir: Path) -> dict:
    argv = [sys.executable, __file__, "--child", kind, str(rows), str(workdir)]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--panels", action="store_true", help="1e6 to 1e8 rows of a panel")
    parser.add_argument("--sizes", type=int, nargs="+", help="--panels: rows, not 1e6 to 1e8")
    parser.add_argument("--skip-predict", action="store_true", help="--panels: setup alone")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, rows, workdir = args.child
        return child(kind, int(rows), workdir)

    from bench_setup import run_meta, write_results  # not in the measured children

    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    if args.panels:
        sizes = [100_000] if args.smoke else [1_000_000, 10_000_000, 100_000_000]
        meta = run_meta("benchmark_memory.py")
        output = {"meta": meta, "panels": panels(args.sizes or sizes, workdir)}
        if not args.skip_predict:
            output["predict"] = forecasting((args.sizes or sizes)[-1] // PANEL_LENGTH, workdir)
        print(panel_table(output))
        write_results(args.out or REPO / "benchmarks" / "memory_panels.json", output)
        return
    sizes = [10_000] if args.smoke else [100_000, 1_000_000, 10_000_000]
    results = []
    for rows in sizes:
        write_table(rows, workdir)
        array_mb = rows * FEATURES * 4 / 2**20
        materialized_mb = (rows - LOOKBACK - HORIZON + 1) * FEATURES * (LOOKBACK + HORIZON) * 4
        materialized_mb /= 2**20
        row = {
            "rows": rows,
            "array_mb": array_mb,
            "windows_mb": measure("windows", rows, workdir)["peak_mb"],
            "datamodule_mb": measure("datamodule", rows, workdir)["peak_mb"],
            "covariates_mb": measure("covariates", rows, workdir)["peak_mb"],
            "datamodule_stages_mb": measure("stages", rows, workdir)["stages"],
            "materialized_mb": materialized_mb,
            "materialized_measured": materialized_mb * 2**20 < MATERIALIZE_LIMIT_BYTES,
        }
        if row["materialized_measured"]:
            row["materialized_mb"] = measure("materialized", rows, workdir)["peak_mb"]
        results.append(row)

    output = {"meta": run_meta("benchmark_memory.py"), "rows": results}
    print(table(output))
    write_results(args.out or REPO / "benchmarks" / "memory.json", output)


def target_setup(result: dict) -> str:
    """The setup of the same panel without covariates (runs before it had none: n/a)."""
    if "target_setup_mb" not in result:
        return "n/a"
    mb, array = result["target_setup_mb"], result["target_array_mb"]
    return f"{mb:,.0f} MB ({mb / array:.2f}x)"


def panel_table(results: dict) -> str:
    from bench_setup import markdown_table, provenance

    first = results["panels"][0]["windows_per_s"]
    rows = [
        [f"{r['rows']:,}", f"{r['rows'] // PANEL_LENGTH:,}", f"{r['array_mb']:,.0f} MB",
         f"{r['setup_mb']:,.0f} MB ({r['setup_mb'] / r['array_mb']:.2f}x)",
         target_setup(r),
         f"{r['setup_s']:.0f} s", f"{r['train_windows']:,}",
         f"{r['windows_per_s']:,.0f} ({r['windows_per_s'] / first:.2f}x)"]
        for r in results["panels"]
    ]  # fmt: skip
    p = results.get("predict")
    predicted = p and (
        f"forecast-predict chunk_series={PREDICT_CHUNK:,} on {p['series']:,} series "
        f"({p['rows']:,} rows, the target alone; output a folder of {p['files']} Parquet "
        f"files): {p['series'] / p['predict_s']:,.0f} series/s, peak RSS {p['peak_mb']:,.0f} MB "
        f"({p['peak_mb'] / p['history_mb']:.2f}x the file's float32 values); the network's "
        f"forward alone on the same windows {p['series'] / p['forward_s']:,.0f} series/s "
        f"(forecast-predict takes {p['predict_s'] / p['forward_s']:.1f}x its time)."
    )
    return markdown_table(
        ["rows", "series", "float32 arrays", "setup peak RSS (x arrays)",
         "the target alone: setup peak RSS (x array)", "setup",
         "training windows", f"windows/s, epochs of {EPOCH_WINDOWS:,} (x the first)"],
        rows,
        "One target and two future covariates per row, string series ids; lookback derived, "
        f"horizon {PANEL_HORIZON}; the default model, data.windows_per_epoch={EPOCH_WINDOWS}, "
        f"the median of epochs 2 to {EPOCHS}.",
        *([predicted] if predicted else []),
        provenance(results["meta"]),
    )  # fmt: skip


def table(results: dict) -> str:
    from bench_setup import markdown_table, provenance

    rows = []
    for r in results["rows"]:
        array = r["array_mb"]
        cells = [
            f"{r[k + '_mb']:,.0f} MB ({r[k + '_mb'] / array:.1f}x)"
            for k in ("windows", "datamodule", "covariates")
        ]
        materialized = r["materialized_mb"]
        shown = (
            f"{materialized / 1024:,.1f} GB" if materialized > 1024 else f"{materialized:,.0f} MB"
        )
        note = "" if r["materialized_measured"] else ", computed"
        cells.append(f"{shown} ({materialized / array:.0f}x{note})")
        rows.append([f"{r['rows']:,}", f"{array:,.1f} MB", *cells])
    largest = results["rows"][-1]
    stages = ", ".join(
        f"{name} {mb / largest['array_mb']:.1f}x"
        for name, mb in largest["datamodule_stages_mb"].items()
    )
    return markdown_table(
        ["rows", "float32 array", "WindowDataset", "ForecastDataModule from Parquet",
         "the same with covariates", "every window materialized"],
        rows,
        f"DataModule peak after each stage at {largest['rows']:,} rows: {stages}.",
        provenance(results["meta"]),
    )  # fmt: skip


if __name__ == "__main__":
    main()
