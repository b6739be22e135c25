"""CPU choices for training: threads, batch size, torch.compile, bf16 autocast, contiguity.

One factor at a time against the baseline (the benchmark presets' model, batch 128, all
threads, eager float32, batches as the DataModule gathers them). Each variant is timed right
after a fresh baseline measurement and reported as their ratio, so machine drift cancels.
Throughput is training windows/s of a plain PyTorch step (forward, MAE loss, backward,
clipping, Adam): the framework's own overhead is benchmark_training.py's subject.

    python scripts/benchmark_cpu.py
    python scripts/benchmark_cpu.py --smoke
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from pathlib import Path

import torch
from bench_setup import (
    BENCHMARKS,
    etth1,
    lit_module,
    markdown_table,
    provenance,
    run_meta,
    write_results,
)
from omegaconf import OmegaConf
from torch import nn

from forecast.data.datamodule import ForecastDataModule
from forecast.reference import CONF_DIR

PRESET = "segment_lstm"  # the presets' network, at the width they train it
PRESET_WIDTH = OmegaConf.load(Path(CONF_DIR) / "experiment" / "ett_base.yaml").model.hidden_size
VARIANTS = {
    "threads=1": {"threads": 1},
    "batch=32": {"batch": 32},
    "batch=512": {"batch": 512},
    "torch.compile": {"compile": True},
    "bf16 autocast": {"bf16": True},
    "x.contiguous()": {"contiguous": True},
}


def throughput(
    dm: ForecastDataModule,
    seconds: float,
    *,
    threads: int,
    batch: int,
    compile: bool = False,
    bf16: bool = False,
    contiguous: bool = False,
) -> float:
    """Training windows/s over ``seconds`` after a few warm-up steps."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = lit_module(PRESET, dm.spec, dm.season, hidden_size=PRESET_WIDTH).net.train()
    step_net = torch.compile(net) if compile else net
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    dataset = dm.datasets["train"]
    order = torch.randperm(len(dataset)).split(batch)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    windows, start = 0, None
    for i, index in enumerate(itertools.cycle(order)):
        if i == 3:  # warm-up done (compilation included)
            windows, start = 0, time.perf_counter()
        elif start is not None and time.perf_counter() - start > seconds:
            break
        x, y, _, _ = dataset[index]
        if contiguous:
            x = x.contiguous()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = nn.functional.l1_loss(step_net(x)[0].float(), y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        windows += len(index)
    torch.set_num_threads(previous)
    return windows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "cpu.json")
    args = parser.parse_args()
    variants = {"threads=1": VARIANTS["threads=1"]} if args.smoke else VARIANTS
    seconds = 0.2 if args.smoke else args.seconds
    dm = etth1()
    base = {"threads": torch.get_num_threads(), "batch": 128}
    rows = []
    for name, change in variants.items():
        baseline = throughput(dm, seconds, **base)
        try:
            variant, error = throughput(dm, seconds, **(base | change)), None
        except Exception as err:  # e.g. no C++ compiler for torch.compile: report, go on
            variant, error = float("nan"), f"{type(err).__name__}: {str(err)[:200]}"
        rows.append({"variant": name, "baseline_windows_per_s": baseline,
                     "variant_windows_per_s": variant, "ratio": variant / baseline,
                     "error": error})  # fmt: skip
    results = {
        "meta": run_meta("benchmark_cpu.py"),
        "settings": {"model": PRESET, "batch": 128, "threads": base["threads"], "seconds": seconds},
        "rows": rows,
    }
    print(table(results))
    write_results(args.out, results)


def table(results: dict) -> str:
    rows = [
        [
            r["variant"] + (f" ({r['error']})" if r["error"] else ""),
            f"{r['baseline_windows_per_s']:,.0f}",
            f"{r['variant_windows_per_s']:,.0f}",
            f"{r['ratio']:.2f}",
        ]
        for r in results["rows"]
    ]
    settings = results["settings"]
    return markdown_table(
        ["variant", "baseline windows/s", "variant windows/s", "ratio"],
        rows,
        f"Baseline: conf/model/{settings['model']}.yaml, batch {settings['batch']}, "
        f"{settings['threads']} threads, eager float32; {settings['seconds']:g} s per measurement.",
        provenance(results["meta"]),
    )


if __name__ == "__main__":
    main()
