"""Inference throughput: forecast's batched prediction vs the raw model forward, in one process.

``Forecaster.forecast`` is what the CLI and the server run per request: scale the raw
histories, one forward pass, unscale, build future timestamps. The raw figure is
``net(x)`` alone on pre-scaled tensors under ``torch.inference_mode``. Both see the same ETTh1
test windows, at several batch sizes; the ratio is the share of the raw speed a user gets.

    python scripts/benchmark_inference.py          # batch sizes 1, 32, 256, 1024
    python scripts/benchmark_inference.py --smoke  # seconds; what CI runs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from bench_setup import (
    BENCHMARKS,
    etth1,
    lit_module,
    markdown_table,
    median_round,
    provenance,
    rate,
    run_meta,
    test_inputs,
    write_results,
)

from forecast.data.datamodule import ForecastDataModule
from forecast.serving.forecaster import Forecaster

MODELS = ("lstm", "segment_lstm")  # conf/model: the plain LSTM and the default model


def measure(name: str, batch: int, dm: ForecastDataModule, seconds: float, rounds: int) -> dict:
    torch.manual_seed(0)
    net = lit_module(name, dm.spec, dm.season).net.eval()
    forecaster = Forecaster(net, dm.spec)
    x, inputs = test_inputs(dm, batch)

    def raw() -> None:
        with torch.inference_mode():
            net(x)

    def ours() -> None:
        forecaster.forecast(inputs)

    pairs = [(rate(raw, batch, seconds), rate(ours, batch, seconds)) for _ in range(rounds)]
    raw_rate, ours_rate, ratio = median_round(pairs)
    return {
        "model": name,
        "batch_size": batch,
        "raw_windows_per_s": raw_rate,
        "forecast_windows_per_s": ours_rate,
        "ratio": ratio,
        "round_ratios": [o / r for r, o in pairs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/ours rounds")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "inference.json")
    args = parser.parse_args()
    sizes, models = ([1, 32, 256, 1024], MODELS) if not args.smoke else ([4], ["lstm"])
    if args.smoke:
        args.seconds, args.rounds = 0.05, 1
    dm = etth1()
    rows = [measure(m, b, dm, args.seconds, args.rounds) for m in models for b in sizes]
    results = {
        "meta": run_meta("benchmark_inference.py"),
        "settings": {"seconds": args.seconds, "rounds": args.rounds},
        "rows": rows,
    }
    print(table(results))
    write_results(args.out, results)


def table(results: dict) -> str:
    rows = [
        [r["model"], r["batch_size"], f"{r['raw_windows_per_s']:,.0f}",
         f"{r['forecast_windows_per_s']:,.0f}", f"{r['ratio']:.2f}"]
        for r in results["rows"]
    ]  # fmt: skip
    settings = results["settings"]
    return markdown_table(
        ["model (conf/model)", "batch", "raw forward windows/s", "forecast windows/s", "ratio"],
        rows,
        f"{settings['rounds']} alternating rounds of {settings['seconds']:g} s each; each row is "
        "the round with the median ratio.",
        provenance(results["meta"]),
    )


if __name__ == "__main__":
    main()
