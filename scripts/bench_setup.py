"""What the benchmark scripts share: ETTh1 on its standard split, and network settings read
from ``conf/`` itself, so a benchmark measures the model a preset trains and cannot drift
from it when the preset is retuned."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from forecast.data.datamodule import ForecastDataModule
from forecast.data.series import SeriesInput
from forecast.data.spec import DataSpec
from forecast.model.config import derived_segment
from forecast.model.module import LSTMLitModule
from forecast.reference import CONF_DIR

REPO = Path(__file__).resolve().parents[1]
ETTH1 = REPO / "data" / "ETTh1.csv"
# Results behind the README's figures, committed (scripts/readme_tables.py renders them)
BENCHMARKS = REPO / "benchmarks"
# What a script's --smoke mode trains: that it works, in seconds (CI)
SMOKE = [
    "model.hidden_size=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
]


def etth1(lookback: int = 96, horizon: int = 96, batch_size: int = 32) -> ForecastDataModule:
    """The ETTh1 DataModule with conf/data/etth1.yaml's borders, set up."""
    borders = OmegaConf.load(Path(CONF_DIR) / "data" / "etth1.yaml").split_borders
    dm = ForecastDataModule(
        str(ETTH1),
        lookback=lookback,
        horizon=horizon,
        batch_size=batch_size,
        split_ratios=None,
        split_borders=list(borders),
    )
    dm.setup()
    return dm


def test_inputs(dm: ForecastDataModule, batch: int) -> tuple[torch.Tensor, list[SeriesInput]]:
    """The first ``batch`` test windows of ``dm``: their scaled inputs, as the network takes
    them, and the same histories in original units, as ``Forecaster.forecast`` takes them."""
    x = dm.datasets["test"][torch.arange(batch)].x
    originals = dm.spec.scaler.inverse(x.double().numpy())
    stamps = dm.timestamps[:1].repeat(dm.spec.lookback)  # only the last one is used
    return x, [SeriesInput(f"series {k}", stamps, values) for k, values in enumerate(originals)]


def lit_module(model: str, spec: DataSpec, season: int = 1, **overrides: Any) -> LSTMLitModule:
    """``conf/model/<model>.yaml`` (over the ``lstm.yaml`` it extends) built for ``spec``, as
    forecast-train builds it (a ``segment_len`` left null derived for ``season``);
    ``overrides`` replace its keys (``scheduler=None``)."""
    folder = Path(CONF_DIR) / "model"
    merged = OmegaConf.merge(
        OmegaConf.load(folder / "lstm.yaml"), OmegaConf.load(folder / f"{model}.yaml")
    )
    merged.pop("defaults", None)
    if merged.segment_len is None:
        merged.segment_len = derived_segment(spec.lookback, season)
    return instantiate(merged, _convert_="all")(spec=spec, **overrides)


def train_config(overrides: Sequence[str], out: Path, name: str) -> DictConfig:
    """``forecast-train <overrides>`` as forecast-train composes it, quiet and unregistered,
    its run in ``out/logs/<name>`` and its MLflow store in ``out``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "register_model=null",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                f"paths.data_dir={REPO / 'data'}",
                f"paths.log_dir={out / 'logs'}",
                f"paths.output_dir={out / 'logs' / name}",
                f"logger.tracking_uri=sqlite:///{out / 'mlflow.db'}",
                *overrides,
            ],
        )


def preset_config(
    experiment: str, seed: int, out: Path, name: str, overrides: Sequence[str] = ()
) -> DictConfig:
    """``forecast-train experiment=<experiment> seed=<seed>``, as ``train_config``."""
    return train_config([f"experiment={experiment}", f"seed={seed}", *overrides], out, name)


def run_meta(script: str) -> dict[str, str]:
    """What a result file records of its run: the command, date, machine and commit (and
    whether code under forecast/, scripts/ or conf/ differed from it)."""
    import torch

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    # Code not yet committed would make the commit a false witness of what ran.
    edited = subprocess.run(
        ["git", "status", "--porcelain", "--", "forecast", "scripts", "conf"],
        cwd=REPO, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    commit += " with uncommitted changes" if edited else ""
    return {
        "command": shlex.join(["python", f"scripts/{script}", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "commit": commit,
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    """``results`` (with their ``meta``) as JSON: what the README and the docs render."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *notes: str) -> str:
    """A results block of the README or the docs: a Markdown table, a blank line, then
    ``notes`` (the last one usually the provenance line)."""

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(cell) for cell in cells) + " |"

    table = [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]
    return "\n".join([*table, "", *notes])


def provenance(meta: dict[str, Any]) -> str:
    """The line under a README table: how to get it again, and where it was measured."""
    return f"`{meta['command']}`, {meta['date']}, {meta['machine']}, commit {meta['commit']}."


def rate(fn: Callable[[], object], windows: int, seconds: float) -> float:
    """Windows/s of ``fn`` (``windows`` per call), called until ``seconds`` have passed, after
    one warm-up call."""
    fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls == 0:
        fn()
        calls += 1
    return calls * windows / elapsed


def median_round(pairs: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """The round whose ours/raw ratio is the median (the lower one for an even count): its
    raw and ours figures and its ratio. Each round's pair ran back to back under the same
    load, so a row quotes one round, and its ratio is its own two figures' quotient."""
    ordered = sorted(pairs, key=lambda pair: pair[1] / pair[0])
    raw, ours = ordered[(len(ordered) - 1) // 2]
    return raw, ours, ours / raw


def training_only(epochs: int = 1, callbacks: Sequence[Any] = ()) -> Any:
    """A quiet CPU ``pl.Trainer`` of ``epochs`` without validation, logger or checkpoints:
    the budgeted epochs the panel benchmarks train."""
    import pytorch_lightning as pl

    return pl.Trainer(
        max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
        callbacks=list(callbacks),
    )  # fmt: skip


def panel_model(path: Path, out: Path, horizon: int) -> Path:
    """The default model trained one budgeted epoch (2^14 windows) on a ``make_panel.py``
    file's target alone, saved to ``out``: what the forecasting benchmarks forecast with."""
    from forecast.data.datamodule import ForecastDataModule
    from forecast.serving.checkpoint import save_checkpoint

    dm = ForecastDataModule(
        str(path), timestamp="date", series_id="series", features=["y"], horizon=horizon,
        max_rows=None, max_values=None, windows_per_epoch=1 << 14, batch_size=256,
    )  # fmt: skip
    dm.setup()
    module = lit_module("segment_lstm", dm.spec, dm.season, scheduler=None)  # no validation
    training_only().fit(module, train_dataloaders=dm.train_dataloader())
    return save_checkpoint(out, module.net, dm.spec)
