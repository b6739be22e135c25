"""M4 Hourly and Weekly by the competition's protocol, with forecast-train's defaults: train on
all but the last H steps of each series (``data.test_size=H``), forecast those H steps once,
score each series and average (sMAPE, MASE, OWA against Naive2: forecast/evaluation/m4.py),
next to the official results of the data README.

    python scripts/m4_benchmark.py                                   # both, the default model
    python scripts/m4_benchmark.py --frequencies weekly --label segments \\
        --override model=segment_lstm data.lookback=52 model.segment_len=13

The command a user types is ``forecast-train data=csv data.path=m4_hourly.csv
data.timestamp=step data.series_id=unique_id data.horizon=48 data.test_size=48
data.split_ratios=null`` plus the ``--override`` keys, which the JSON records.

``--log`` measures what a log transform of the targets would give, which ``forecast`` does
not have yet: the file is written with ``log1p(y)``, and the forecasts and their quantiles are
taken back through ``expm1`` before they are scored (M4's values are all positive).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import (
    BENCHMARKS,
    REPO,
    SMOKE,
    markdown_table,
    provenance,
    run_meta,
    train_config,
    write_results,
)

from forecast.evaluation.m4 import msis, owa, score_panel
from forecast.serving.forecaster import Forecaster
from forecast.train import train

# frequency: (file, horizon H, period for MASE and Naive2's season)
FREQUENCIES = {"hourly": ("m4_hourly.csv", 48, 24), "weekly": ("m4_weekly.csv", 13, 1)}
# M4's 95% prediction interval
INTERVAL = (0.025, 0.975)
# The official 95% intervals' MSIS and ACD = |coverage - 0.95| (the data README)
OFFICIAL_INTERVALS = {
    "hourly": {"best (id 238)": (6.139, 0.002), "ARIMA": (7.538, 0.001),
               "ES-RNN (Smyl)": (7.928, 0.040), "ETS": (17.487, 0.001), "Naive": (71.245, 0.011)},
    "weekly": {"best (id 36)": (16.200, 0.012), "ARIMA": (19.575, 0.005),
               "ES-RNN (Smyl)": (22.034, 0.021), "ETS": (20.386, 0.014), "Naive": (26.358, 0.001)},
}  # fmt: skip
# The official sMAPE / MASE / OWA (shared/data/README.md, from M4's "Evaluation and Ranks.xlsx")
OFFICIAL = {
    "hourly": {
        "best submission (id 238)": (8.913, 0.801, 0.410),
        "ES-RNN (Smyl)": (9.328, 0.893, 0.440),
        "FFORMA": (11.506, 0.819, 0.484),
        "Theta": (18.138, 2.455, 1.006),
        "seasonal naive": (13.912, 1.193, 0.627),
        "Naive2": (18.383, 2.395, 1.000),
    },
    "weekly": {
        "best submission (id 235)": (6.582, 2.107, 0.739),
        "ES-RNN (Smyl)": (7.817, 2.356, 0.851),
        "FFORMA": (7.625, 2.108, 0.796),
        "Theta": (9.093, 2.637, 0.971),
        "seasonal naive": (9.161, 2.777, 1.000),
        "Naive2": (9.161, 2.777, 1.000),
    },
}


def split(frame: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each series' history (all but its last ``horizon`` rows) and its test rows."""
    position = frame.groupby("unique_id", sort=False).cumcount(ascending=False)
    return frame[position >= horizon], frame[position < horizon]


def scores(history: pd.DataFrame, test: pd.DataFrame, forecast: pd.DataFrame, period: int):
    """Per-series scores of ``forecast`` and of the seasonal naive forecast."""
    ids = list(dict.fromkeys(test.unique_id))
    insample = {k: g.y.to_numpy(float) for k, g in history.groupby("unique_id", sort=False)}
    actual = {k: g.y.to_numpy(float) for k, g in test.groupby("unique_id", sort=False)}
    predicted = {k: g.y.to_numpy(float) for k, g in forecast.groupby("unique_id", sort=False)}
    horizon = len(actual[ids[0]])
    naive = {k: np.resize(insample[k][-period:], horizon) for k in ids}
    panel = [actual[k] for k in ids], [insample[k] for k in ids]
    model = score_panel(panel[0], [predicted[k] for k in ids], panel[1], period)
    seasonal = score_panel(panel[0], [naive[k] for k in ids], panel[1], period)
    return model, seasonal


def intervals(
    history: pd.DataFrame, test: pd.DataFrame, forecast: pd.DataFrame, period: int
) -> dict[str, float]:
    """With the 95% interval's quantiles in ``forecast`` (a model with them, or with a
    distribution): M4's MSIS averaged over series, and the coverage of every test value."""
    bounds = [f"y_q{q:g}" for q in INTERVAL]
    if not set(bounds) <= set(forecast.columns):
        return {}
    insample = {k: g.y.to_numpy(float) for k, g in history.groupby("unique_id", sort=False)}
    each, hits = [], []
    for k, actual in test.groupby("unique_id", sort=False):
        rows = forecast[forecast.unique_id == k]
        y, lower, upper = (a.to_numpy(float) for a in (actual.y, *(rows[b] for b in bounds)))
        each.append(msis(y, lower, upper, insample[k], period))
        hits.append((lower <= y) & (y <= upper))
    return {"msis": float(np.mean(each)), "coverage": float(np.concatenate(hits).mean())}


def run(
    name: str, data_dir: Path, overrides: list[str], out: Path, limit: int | None, log: bool
) -> dict:
    file, horizon, period = FREQUENCIES[name]
    frame = pd.read_csv(data_dir / file)
    if limit:
        frame = frame[frame.unique_id.isin(frame.unique_id.unique()[:limit])]
    path = out / file
    out.mkdir(parents=True, exist_ok=True)
    trained = frame.assign(y=np.log1p(frame.y)) if log else frame
    trained.to_csv(path, index=False)
    keys = [
        "data=csv", f"data.path={path}", "data.timestamp=step", "data.series_id=unique_id",
        f"data.horizon={horizon}", f"data.test_size={horizon}", "data.split_ratios=null",
    ]  # fmt: skip
    cfg = train_config([*keys, *overrides], out, name)
    start = time.perf_counter()
    metrics = train(cfg)
    history, test = split(frame, horizon)
    forecaster = Forecaster.load(out / "logs" / name / "model.pt")
    levels = None if forecaster.net.config.distribution is None else INTERVAL
    given = history.assign(y=np.log1p(history.y)) if log else history  # as it was trained
    forecast = forecaster.predict(given, quantiles=levels)
    if log:
        for column in [c for c in forecast.columns if c == "y" or c.startswith("y_q")]:
            forecast[column] = np.expm1(forecast[column])
    seconds = time.perf_counter() - start
    model, seasonal = scores(history, test, forecast, period)
    return intervals(history, test, forecast, period) | {
        "frequency": name, "series": int(frame.unique_id.nunique()), "horizon": horizon,
        "command": "forecast-train " + " ".join([*keys, *overrides]), "log": log,
        "smape": model.smape.mean(), "mase": model.mase.mean(), "owa": owa(model),
        "smape_seasonal_naive": seasonal.smape.mean(), "mase_seasonal_naive": seasonal.mase.mean(),
        "owa_seasonal_naive": owa(seasonal),
        "smape_naive2": model.smape_naive2.mean(), "mase_naive2": model.mase_naive2.mean(),
        "seconds": seconds, "test_mse": metrics.get("test_mse"),
        "test_mse_linear": metrics.get("test_mse_linear"),
        "test_mse_seasonal_naive": metrics.get("test_mse_seasonal_naive"),
    }  # fmt: skip


def table(results: dict) -> str:
    rows = []
    for run_ in results["runs"]:
        name = run_["frequency"]
        label = f"forecast ({results['label']})"
        rows.append([name, label, f"{run_['smape']:.3f}", f"{run_['mase']:.3f}",
                     f"{run_['owa']:.3f}", f"{run_['seconds'] / 60:.1f}"])  # fmt: skip
        rows.append([name, "seasonal naive (computed here)", f"{run_['smape_seasonal_naive']:.3f}",
                     f"{run_['mase_seasonal_naive']:.3f}", f"{run_['owa_seasonal_naive']:.3f}",
                     ""])  # fmt: skip
        rows.append([name, "Naive2 (computed here)", f"{run_['smape_naive2']:.3f}",
                     f"{run_['mase_naive2']:.3f}", "1.000", ""])  # fmt: skip
        for method, (s, m, o) in OFFICIAL[name].items():
            rows.append([name, f"{method} (official)", f"{s:.3f}", f"{m:.3f}", f"{o:.3f}", ""])
    header = ["M4", "method", "sMAPE", "MASE", "OWA", "min (2 cores)"]
    return markdown_table(header, rows, provenance(results["meta"]))


def interval_table(*every: dict) -> str:
    """The 95% intervals' MSIS and coverage of each result file's runs (with OWA, the same
    forecasts' point score), next to the official ones."""
    rows = []
    for name in FREQUENCIES:
        for results in every:
            for run_ in (r for r in results["runs"] if r["frequency"] == name and "msis" in r):
                rows.append([name, f"forecast ({results['label']})", f"{run_['msis']:.3f}",
                             f"{run_['coverage']:.3f}", f"{abs(run_['coverage'] - 0.95):.3f}",
                             f"{run_['owa']:.3f}", f"{run_['seconds'] / 60:.1f}"])  # fmt: skip
        if rows and rows[-1][0] == name:
            for method, (score, acd) in OFFICIAL_INTERVALS[name].items():
                rows.append([name, f"{method} (official)", f"{score:.3f}", "", f"{acd:.3f}",
                             "", ""])  # fmt: skip
    header = ["M4 95% interval", "method", "MSIS", "coverage", "ACD", "OWA", "min (2 cores)"]
    return markdown_table(header, rows, *(provenance(results["meta"]) for results in every))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frequencies", nargs="+", default=list(FREQUENCIES))
    parser.add_argument("--override", nargs="*", default=[])
    parser.add_argument("--label", default="defaults")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--log", action="store_true", help="train on log1p(y), score expm1")
    parser.add_argument("--smoke", action="store_true", help="5 series, a few batches")
    args = parser.parse_args()
    overrides = [*args.override, *(SMOKE if args.smoke else [])]
    out = args.out or BENCHMARKS / f"m4_{args.label}.json"
    results = {"meta": run_meta("m4_benchmark.py"), "label": args.label, "runs": []}
    for name in args.frequencies:
        folder = REPO / "bench" / "m4" / args.label  # runs: ignored by git
        limit = 5 if args.smoke else None
        results["runs"].append(run(name, args.data_dir, overrides, folder, limit, args.log))
        print(f"M4 {name}: OWA {results['runs'][-1]['owa']:.3f}", flush=True)
        write_results(out, results)
    print(table(results))
    if all("msis" in run_ for run_ in results["runs"]):
        print(interval_table(results))


if __name__ == "__main__":
    main()
