"""What an ensemble costs: training its members one after the other or at once, and
forecasting and serving with five members against one model.

- ``training``: two members on ETTh1 (default model, ``--epochs`` epochs each), in one
  ``forecast-train ensemble.size=2`` (one after the other, torch's threads on every core)
  against two ``forecast-train`` processes started together (``threads=1`` each, seeds 42
  and 43): the wall time of each way, and their ratio;
- ``inference``: ``Forecaster.forecast`` windows/s on ETTh1 test windows for one default
  model and for an ensemble of five (``mean``), per batch size, rounds alternating;
- ``serving``: the p50 latency of ``POST /forecast`` (one series, in process through the
  ASGI app) for the same two models, their requests alternating;
- ``fusion``: whether the members' LSTMs would run faster as one batched forward: the five
  members' ``nn.LSTM`` modules one after the other against one ``nn.LSTM`` holding all five
  (hidden size ``5 * H``, the members' weights on the block diagonal, so it computes the same
  outputs), for the default model and the ETT presets' segment model, per batch size.

    python scripts/benchmark_ensemble.py
    python scripts/benchmark_ensemble.py --smoke   # seconds: one epoch on a slice, tiny rounds
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_setup import (
    BENCHMARKS,
    REPO,
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
from fastapi.testclient import TestClient
from torch import nn

from forecast.model.ensemble import Ensemble
from forecast.serving.app import create_app
from forecast.serving.forecaster import Forecaster

MEMBERS = 5
BIN = Path(sys.executable).parent


def train_command(workdir: Path, epochs: int, smoke: bool, *extra: str) -> list[str]:
    data = ["data.split_borders=[1200,1600,2000]"] if smoke else []
    return [
        str(BIN / "forecast-train"), f"trainer.max_epochs={epochs}", "test=false",
        "register_model=null", "trainer.enable_progress_bar=false",
        f"logger.tracking_uri=sqlite:///{workdir / 'mlflow.db'}", f"paths.log_dir={workdir}",
        *data, *extra,
    ]  # fmt: skip


def training(epochs: int, smoke: bool, repeats: int) -> dict:
    """Wall seconds of two members one after the other, and of two processes at once, in
    ``repeats`` alternating rounds; the round with the median ratio is quoted."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        # the store and its schema first, so neither way pays for creating it
        subprocess.run(train_command(workdir, 1, True, "trainer.limit_train_batches=1"),
                       check=True, capture_output=True, env=env)  # fmt: skip

        def sequential() -> float:
            start = time.perf_counter()
            subprocess.run(train_command(workdir, epochs, smoke, "ensemble.size=2"),
                           check=True, capture_output=True, env=env)  # fmt: skip
            return time.perf_counter() - start

        def parallel() -> float:
            start = time.perf_counter()
            runs = [
                subprocess.Popen(train_command(workdir, epochs, smoke, f"seed={seed}", "threads=1"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                for seed in (42, 43)
            ]  # fmt: skip
            if any(run.wait() for run in runs):
                raise RuntimeError("a parallel member failed")
            return time.perf_counter() - start

        pairs = [(sequential(), parallel()) for _ in range(repeats)]
    one_by_one, at_once, ratio = median_round(pairs)
    return {
        "epochs": epochs,
        "sequential_s": one_by_one,
        "parallel_s": at_once,
        "parallel_over_sequential": ratio,
        "round_ratios": [p / s for s, p in pairs],
    }


def forecasters(dm) -> tuple[Forecaster, Forecaster]:
    torch.manual_seed(0)
    nets = [lit_module("lstm", dm.spec, dm.season).net.eval() for _ in range(MEMBERS)]
    return Forecaster(nets[0], dm.spec), Forecaster(Ensemble(nets, dm.spec, "mean"), dm.spec)


def inference(dm, single: Forecaster, ensemble: Forecaster, batches, seconds, rounds) -> list:
    rows = []
    for batch in batches:
        _, inputs = test_inputs(dm, batch)
        pairs = [
            (
                rate(lambda i=inputs: single.forecast(i), batch, seconds),
                rate(lambda i=inputs: ensemble.forecast(i), batch, seconds),
            )
            for _ in range(rounds)
        ]
        one, five, ratio = median_round(pairs)
        rows.append({"batch_size": batch, "single_windows_per_s": one,
                     "ensemble_windows_per_s": five, "ratio": ratio})  # fmt: skip
    return rows


def serving(single: Forecaster, ensemble: Forecaster, requests: int) -> dict:
    """p50 latency of each model's ``POST /forecast``, the two models' requests alternating so
    both see the same load on a shared machine; the first tenth of each is warm-up."""
    history = single.spec
    rows = [
        {"date": f"2018-01-{1 + h // 24:02d} {h % 24:02d}:00:00"}
        | {c: 1.0 + 0.01 * h for c in history.features}
        for h in range(history.lookback)
    ]
    body = {"series": [{"id": "a", "data": rows}]}
    clients = {
        name: TestClient(create_app(forecaster, name))
        for name, forecaster in (("single", single), ("ensemble", ensemble))
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(requests):
        for name, client in clients.items():
            start = time.perf_counter()
            assert client.post("/forecast", json=body).status_code == 200
            times[name].append((time.perf_counter() - start) * 1e3)
    latency = {f"{n}_p50_ms": statistics.median(t[requests // 10 :]) for n, t in times.items()}
    latency["ratio"] = latency["ensemble_p50_ms"] / latency["single_p50_ms"]
    return latency


def fused_lstm(lstms: list[nn.LSTM]) -> nn.LSTM:
    """One ``nn.LSTM`` whose outputs are the members' side by side: each gate's rows and each
    layer's state hold the members in turn, and a member's weights see only its own state
    (and, past the first layer, its own inputs); every other weight is zero."""
    first, size = lstms[0], len(lstms)
    hidden, layers = first.hidden_size, first.num_layers
    fused = nn.LSTM(first.input_size, size * hidden, num_layers=layers, batch_first=True)
    weights = dict(fused.named_parameters())
    with torch.no_grad():
        for weight in weights.values():
            weight.zero_()
        for layer, k, gate in itertools.product(range(layers), range(size), range(4)):
            own = dict(lstms[k].named_parameters())
            rows = slice((gate * size + k) * hidden, (gate * size + k + 1) * hidden)
            src, block = (
                slice(gate * hidden, (gate + 1) * hidden),
                slice(k * hidden, (k + 1) * hidden),
            )
            inputs = slice(None) if layer == 0 else block
            weights[f"weight_ih_l{layer}"][rows, inputs] = own[f"weight_ih_l{layer}"][src]
            weights[f"weight_hh_l{layer}"][rows, block] = own[f"weight_hh_l{layer}"][src]
            for bias in ("bias_ih", "bias_hh"):
                weights[f"{bias}_l{layer}"][rows] = own[f"{bias}_l{layer}"][src]
    return fused


@torch.no_grad()
def fusion(dm, batches: list[int], seconds: float, rounds: int) -> list:
    """LSTM windows/s: the members' ``nn.LSTM`` one by one against their fused one, on each
    model's own input sequences (``LSTMNet._to_sequences``) of ETTh1 test windows."""
    rows = []
    for model in ("lstm", "segment_lstm"):
        torch.manual_seed(0)
        nets = [lit_module(model, dm.spec, dm.season).net.eval() for _ in range(MEMBERS)]
        lstms = [net.lstm for net in nets]
        fused = fused_lstm(lstms)
        for batch in batches:
            x = nets[0]._to_sequences(dm.datasets["test"][torch.arange(batch)].x, None)
            side_by_side = torch.cat([lstm(x)[0] for lstm in lstms], dim=-1)
            torch.testing.assert_close(fused(x)[0], side_by_side)
            pairs = [
                (
                    rate(lambda x=x, lstms=lstms: [lstm(x) for lstm in lstms], batch, seconds),
                    rate(lambda x=x, fused=fused: fused(x), batch, seconds),
                )
                for _ in range(rounds)
            ]
            apart, together, ratio = median_round(pairs)
            rows.append({"model": model, "batch_size": batch, "one_by_one_windows_per_s": apart,
                         "fused_windows_per_s": together, "ratio": ratio})  # fmt: skip
    return rows


def table(results: dict) -> str:
    train = results["training"]
    rows = [
        ("training 2 members, one after the other", f"{train['sequential_s']:.1f} s", "1.00"),
        ("training 2 members at once (threads=1 each)", f"{train['parallel_s']:.1f} s",
         f"{train['parallel_over_sequential']:.2f}"),
    ]  # fmt: skip
    rows += [
        (f"forecast, batch {r['batch_size']}: 5 members vs 1 model (windows/s)",
         f"{r['ensemble_windows_per_s']:,.0f} vs {r['single_windows_per_s']:,.0f}",
         f"{r['ratio']:.2f}")
        for r in results["inference"]
    ]  # fmt: skip
    serve = results["serving"]
    rows.append(("POST /forecast p50, one series: 5 members vs 1 model",
                 f"{serve['ensemble_p50_ms']:.2f} vs {serve['single_p50_ms']:.2f} ms",
                 f"{serve['ratio']:.2f}"))  # fmt: skip
    rows += [
        (f"5 members' LSTMs ({r['model']}), batch {r['batch_size']}: fused vs one by one "
         "(windows/s)",
         f"{r['fused_windows_per_s']:,.0f} vs {r['one_by_one_windows_per_s']:,.0f}",
         f"{r['ratio']:.2f}")
        for r in results["fusion"]
    ]  # fmt: skip
    return markdown_table(
        ["what", "measured", "ratio"],
        rows,
        f"Training: {train['epochs']} epochs per member, ETTh1, default model; the round with "
        f"the median ratio of {len(train['round_ratios'])} "
        f"({', '.join(f'{r:.2f}' for r in train['round_ratios'])}).",
        provenance(results["meta"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="alternating training rounds")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "ensemble.json")
    args = parser.parse_args()
    os.chdir(REPO)  # forecast-train's default data path is the repository's data/
    epochs = 1 if args.smoke else args.epochs
    results = {"training": training(epochs, args.smoke, 1 if args.smoke else args.repeats)}
    dm = etth1()
    single, ensemble = forecasters(dm)
    batches, seconds, rounds = ([1, 32], 0.2, 1) if args.smoke else ([1, 32, 256], 1.0, 3)
    results["inference"] = inference(dm, single, ensemble, batches, seconds, rounds)
    results["serving"] = serving(single, ensemble, 20 if args.smoke else 300)
    results["fusion"] = fusion(dm, batches, seconds, rounds)
    results["meta"] = run_meta("benchmark_ensemble.py")
    print(table(results))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
