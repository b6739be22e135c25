"""Training throughput: forecast's Lightning step vs a raw PyTorch loop, in one process.

Both loops train the identical ``LSTMNet`` (Adam, MSE, gradient clipping at 1.0) on the
identical pre-gathered ETTh1 batches, so the ratio isolates what Lightning and our module add.
The DataLoader alone is timed too: if it is far faster than a step, the model never waits.

    python scripts/benchmark_training.py                 # default model
    python scripts/benchmark_training.py --grid          # hidden x layers x proj x lookback
    python scripts/benchmark_training.py --smoke         # seconds; what CI runs
    python scripts/benchmark_training.py --device cuda --precision bf16-mixed   # cuDNN, bf16

Prints a table and writes JSON (``benchmarks/training.json``, ``training_grid.json`` with
--grid; the docs render them). Ratios are the figure to quote: absolute numbers on a shared
machine drift from run to run. Each round times both loops back to back; a row reports the
round with the median ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from bench_setup import (
    BENCHMARKS,
    etth1,
    markdown_table,
    median_round,
    provenance,
    run_meta,
    write_results,
)
from torch import nn
from torch.utils.data import DataLoader

from forecast.data.datamodule import ForecastDataModule
from forecast.model.config import LSTMConfig
from forecast.model.module import LSTMLitModule
from forecast.model.net import LSTMNet


def batches_of(dm: ForecastDataModule, n: int) -> tuple[list, float]:
    """``n`` shuffled training batches, and the DataLoader's own throughput in windows/s."""
    loader = dm.train_dataloader()
    start = time.perf_counter()
    batches = list(itertools.islice(itertools.cycle(loader), n))
    loader_rate = n * dm.options.batch_size / (time.perf_counter() - start)
    return batches, loader_rate


def raw_loop(net: LSTMNet, batches: list, warmup: int, device: str, precision: str) -> float:
    """Windows/s of a hand-written loop after ``warmup`` steps (batches already on ``device``)."""
    net = net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    net.train()
    autocast = (
        torch.autocast(device, dtype=torch.bfloat16)
        if precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    for i, (x, y, _, _) in enumerate(batches):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(net(x)[0].float(), y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
    synchronize(device)
    return sum(len(batch.x) for batch in batches[warmup:]) / (time.perf_counter() - start)


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so the clock measures it."""
    if device == "cuda":
        torch.cuda.synchronize()


class _Clock(pl.Callback):
    """Starts timing at batch ``warmup`` so start-up cost is left out, as in the raw loop."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            synchronize(module.device.type)
            self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        synchronize(module.device.type)
        self.end = time.perf_counter()


def lightning_loop(
    module: LSTMLitModule, batches: list, warmup: int, device: str, precision: str
) -> float:
    """Windows/s of ``Trainer.fit`` with forecast's module, after ``warmup`` steps."""
    clock = _Clock(warmup)
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[clock],
    )
    trainer.fit(module, DataLoader(batches, batch_size=None))
    return sum(len(batch.x) for batch in batches[warmup:]) / (clock.end - clock.start)


def measure(
    config: dict,
    batch_size: int,
    n_batches: int,
    warmup: int,
    repeats: int,
    device: str = "cpu",
    precision: str = "32-true",
) -> dict:
    lookback, horizon = config["lookback"], 96
    dm = etth1(lookback, horizon, batch_size)
    batches, loader_rate = batches_of(dm, n_batches)
    batches = [batch.__class__(*(t.to(device) for t in batch)) for batch in batches]
    sizes = {k: config[k] for k in ("hidden_size", "num_layers", "proj_size")}
    raw, ours = [], []
    for _ in range(repeats):  # alternate, so drift on a shared machine hits both alike
        torch.manual_seed(0)
        raw.append(
            raw_loop(LSTMNet(LSTMConfig(**sizes), dm.spec), batches, warmup, device, precision)
        )
        torch.manual_seed(0)
        module = LSTMLitModule(dm.spec, scheduler=None, **sizes)
        ours.append(lightning_loop(module, batches, warmup, device, precision))
    raw_rate, ours_rate, ratio = median_round(list(zip(raw, ours, strict=True)))
    return {
        **config,
        "batch_size": batch_size,
        "raw_windows_per_s": raw_rate,
        "forecast_windows_per_s": ours_rate,
        "ratio": ratio,
        "round_ratios": [o / r for o, r in zip(ours, raw, strict=True)],
        "loader_windows_per_s": loader_rate,
        "loader_over_step": loader_rate / ours_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="the full grid of issue #6")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    parser.add_argument("--out", type=Path, help="JSON; benchmarks/training[_grid].json")
    args = parser.parse_args()

    if args.grid:
        configs = [
            {"hidden_size": h, "num_layers": n, "proj_size": p, "lookback": lb}
            for h, n, p, lb in itertools.product([64, 256], [1, 3], [0, 1], [96, 512])
        ]
        for c in configs:  # proj_size as a fraction: a quarter of the hidden size when on
            c["proj_size"] = c["hidden_size"] // 4 if c["proj_size"] else 0
    else:
        configs = [{"hidden_size": 64, "num_layers": 2, "proj_size": 0, "lookback": 96}]
    if args.smoke:
        configs = [{"hidden_size": 8, "num_layers": 1, "proj_size": 0, "lookback": 96}]
        args.batches, args.warmup, args.repeats = 6, 2, 1

    pl.seed_everything(0, verbose=False)
    rows = [
        measure(c, args.batch_size, args.batches, args.warmup, args.repeats, args.device,
                args.precision)
        for c in configs
    ]  # fmt: skip
    results = {
        "meta": run_meta("benchmark_training.py"),
        "settings": {
            "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
            "precision": args.precision,
            "batch_size": args.batch_size,
            "timed_batches": args.batches - args.warmup,
            "rounds": args.repeats,
        },
        "rows": rows,
    }
    print(table(results))
    out = args.out or BENCHMARKS / ("training_grid.json" if args.grid else "training.json")
    write_results(out, results)


def table(results: dict) -> str:
    settings = results["settings"]
    rows = [
        [r["hidden_size"], r["num_layers"], r["proj_size"], r["lookback"],
         f"{r['raw_windows_per_s']:,.0f}", f"{r['forecast_windows_per_s']:,.0f}",
         f"{r['ratio']:.3f}", f"{r['loader_over_step']:,.0f}x"]
        for r in results["rows"]
    ]  # fmt: skip
    ratios = [r["ratio"] for r in results["rows"]]
    met = sum(ratio >= 0.95 for ratio in ratios)
    return markdown_table(
        ["hidden", "layers", "proj", "lookback", "raw loop windows/s", "forecast windows/s",
         "ratio", "loader / step"],
        rows,
        f"{settings['device']}, {settings['precision']}, batch {settings['batch_size']}, "
        f"{settings['rounds']} alternating rounds of {settings['timed_batches']} timed steps; "
        f"each row is the round with the median ratio. {met} of {len(ratios)} at >= 0.95 "
        f"(median {statistics.median(ratios):.3f}).",
        provenance(results["meta"]),
    )  # fmt: skip


if __name__ == "__main__":
    main()
