"""Our covariate presets next to NeuralForecast and Darts on the same split, horizon and
covariates, scored the same way: every test window, in original units.

    pip install -e ".[peers]"                    # neuralforecast and darts; not in `make`
    python scripts/compare_peers.py              # pjm_load and m5_sales
    python scripts/compare_peers.py --smoke      # a few steps each, that it works (CI)

Every model forecasts ``horizon`` steps from ``lookback`` steps at every origin whose targets
lie in the test split (stride 1), with the preset's future covariates and calendar features
(the same sines and cosines ours computes) as known-in-advance inputs. Peers train on the
training split and stop early on the validation split, as ours does; NeuralForecast
(``NHITS``, ``LSTM``) through ``cross_validation(refit=False)``, Darts ``BlockRNNModel``
through ``historical_forecasts(retrain=False)`` on a target scaled with training statistics.
Seconds are wall time of training and forecasting the test windows. Prints a table and writes
JSON (``benchmarks/compare_peers.json``, committed) with the command, date, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_setup import markdown_table, preset_config, provenance, run_meta  # noqa: E402

from forecast.data.covariates import calendar_columns, calendar_features  # noqa: E402
from forecast.train import train  # noqa: E402


def long_frame(cfg) -> tuple[pd.DataFrame, list[str]]:
    """``unique_id, ds, y`` and the known-in-advance columns (covariates filled as the preset
    fills them, calendar features computed as ours computes them), ds in UTC without zone."""
    data = cfg.data
    frame = pd.read_csv(data.path)
    stamps = pd.to_datetime(frame[data.timestamp])
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert(None)
    out = pd.DataFrame(
        {"unique_id": frame[data.series_id], "ds": stamps, "y": frame[data.targets[0]]}
    )
    covariates = list(data.future_covariates or [])
    for column in covariates:
        values = frame.groupby(data.series_id)[column]
        out[column] = values.transform(lambda s: s.interpolate(limit_direction="both"))
    calendar = list(data.calendar or [])
    out[calendar_columns(calendar)] = calendar_features(out.ds.to_numpy(), calendar)
    return out, covariates + calendar_columns(calendar)


def scores(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    error = forecast - actual
    return {"mae": float(np.abs(error).mean()), "mse": float(np.square(error).mean())}


def neuralforecast_runs(frame, exog, cfg, val_size, test_size, steps) -> list[dict]:
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM, NHITS

    common = {
        "h": cfg.data.horizon, "input_size": cfg.data.lookback, "futr_exog_list": exog,
        "max_steps": steps, "val_check_steps": max(1, steps // 10),
        "early_stop_patience_steps": 3, "scaler_type": "standard", "random_seed": 42,
        "enable_progress_bar": False, "logger": False, "enable_model_summary": False,
    }  # fmt: skip
    rows = []
    for model in (NHITS(**common), LSTM(**common)):
        start = time.perf_counter()
        cv = NeuralForecast(models=[model], freq=pd.infer_freq(frame.ds[:100])).cross_validation(
            df=frame, val_size=val_size, test_size=test_size, n_windows=None, step_size=1
        )
        seconds = time.perf_counter() - start
        name = type(model).__name__
        rows.append({"model": f"NeuralForecast {name}", "seconds": seconds,
                     **scores(cv.y.to_numpy(), cv[name].to_numpy())})  # fmt: skip
    return rows


def darts_run(frame, exog, cfg, borders, epochs) -> dict:
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    lookback, horizon = cfg.data.lookback, cfg.data.horizon
    train_end, val_end, test_end = borders
    series, covariates, scale = [], [], []
    for _, group in frame.groupby("unique_id", sort=False):
        group = group.iloc[:test_end].reset_index(drop=True)
        mean, std = group.y[:train_end].mean(), group.y[:train_end].std(ddof=0) or 1.0
        scaled = group.assign(y=(group.y - mean) / std)
        # On a plain step index: Darts' date arithmetic trips over pandas 3's daily offsets.
        series.append(TimeSeries.from_dataframe(scaled, value_cols="y"))
        covariates.append(TimeSeries.from_dataframe(group, value_cols=exog))
        scale.append((mean, std))
    model = BlockRNNModel(
        input_chunk_length=lookback, output_chunk_length=horizon, model="LSTM",
        hidden_dim=64, n_rnn_layers=2, n_epochs=epochs, batch_size=128, random_state=42,
        pl_trainer_kwargs={"enable_progress_bar": False, "logger": False,
                           "enable_model_summary": False},
    )  # fmt: skip
    start = time.perf_counter()
    model.fit(
        [s[:train_end] for s in series], future_covariates=covariates,
        val_series=[s[train_end - lookback : val_end] for s in series],
        val_future_covariates=covariates,
    )  # fmt: skip
    forecasts = model.historical_forecasts(
        series, future_covariates=covariates, start=val_end, start_format="position",
        forecast_horizon=horizon, stride=1, retrain=False, last_points_only=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    actual, predicted = [], []
    for s, windows, (mean, std) in zip(series, forecasts, scale, strict=True):
        values = s.values()[:, 0]
        for window in windows:
            first = s.get_index_at_point(window.start_time())
            predicted.append(window.values()[:, 0] * std + mean)
            actual.append(values[first : first + horizon] * std + mean)
    return {"model": "Darts BlockRNNModel (LSTM)", "seconds": seconds,
            **scores(np.concatenate(actual), np.concatenate(predicted))}  # fmt: skip


def compare(preset: str, out: Path, smoke: bool) -> list[dict]:
    extra = ["trainer.max_epochs=1", "trainer.limit_train_batches=2"] if smoke else []
    cfg = preset_config(preset, 42, out, preset, extra)
    start = time.perf_counter()
    metrics = train(cfg)
    ours_seconds = time.perf_counter() - start
    unit = metrics["test_mae_orig"] / metrics["test_mae"]  # one target: its training std
    rows = [
        {"model": "forecast (ours)", "seconds": ours_seconds, "mae": metrics["test_mae_orig"],
         "mse": metrics["test_rmse_orig"] ** 2},
        {"model": "seasonal naive", "seconds": 0.0,
         "mae": metrics.get("test_mae_seasonal_naive", float("nan")) * unit,
         "mse": metrics.get("test_mse_seasonal_naive", float("nan")) * unit**2},
    ]  # fmt: skip
    frame, exog = long_frame(cfg)
    borders = list(cfg.data.split_borders)
    val_size, test_size = borders[1] - borders[0], borders[2] - borders[1]
    frame = frame.groupby("unique_id", sort=False).head(borders[2])
    rows += neuralforecast_runs(frame, exog, cfg, val_size, test_size, 5 if smoke else 1000)
    rows.append(darts_run(frame, exog, cfg, borders, 1 if smoke else 10))
    return [{"preset": preset, **row} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["pjm_load", "m5_sales"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "compare_peers.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    meta = run_meta("compare_peers.py")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in args.presets:
        rows += compare(preset, REPO / "bench" / "peers", args.smoke)  # runs: ignored by git
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(table({"meta": meta, "rows": rows}))


def table(results: dict) -> str:
    rows = [
        [r["preset"], r["model"], f"{r['mae']:.3f}", f"{r['mse']:.1f}", f"{r['seconds']:.0f}"]
        for r in results["rows"]
    ]
    header = ["preset", "model", "test MAE", "test MSE", "seconds"]
    return markdown_table(header, rows, provenance(results["meta"]))


if __name__ == "__main__":
    main()
