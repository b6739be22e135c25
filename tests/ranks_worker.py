"""Run by torchrun in tests/test_distributed.py: one rank's DataModule over its series and
every sum that becomes a figure, pickled to ``<out>/rank<k>.pkl`` (outside torchrun: the
whole table in one process, to ``<out>/whole.pkl``)."""

import pickle
import sys
from pathlib import Path

import torch
from torch import distributed as dist

from forecast.data.datamodule import ForecastDataModule
from forecast.evaluation.scoring import evaluate_windows, mean_loss
from forecast.model.baselines import LinearBaseline
from forecast.model.ensemble import candidate_sums, fit_combination
from forecast.model.losses import ForecastLoss
from forecast.model.net import LSTMConfig, LSTMNet

# each case: the file, and its data keys beside lookback 24, horizon 6 and series_id=site
CASES = {
    "series_scaled": ("panel.parquet", {"future_covariates": ["temp"]}),
    "column_scaled": ("panel.csv", {"scaling": "column"}),
    "covariates": ("rich.parquet", {
        "future_covariates": ["temp", "event"], "static_covariates": ["store", "size"],
        "categorical": ["event", "store"], "calendar": ["hour"], "features": ["load", "price"],
        "test_start": "2024-01-08 00:00", "short_series": "drop",
    }),
    "one_series": ("one.parquet", {}),  # fewer series than ranks: each rank holds all of it
}  # fmt: skip


def figures(path: str, **keys) -> dict:
    dm = ForecastDataModule(path, lookback=24, horizon=6, series_id="site", **keys)
    dm.setup()
    torch.manual_seed(0)  # the same weights on every rank and in one process
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1), dm.spec).eval()
    test, val = dm.datasets["test"], dm.datasets["val"]
    ensemble = fit_combination([net], dm.spec, "validation", 24, dm.datasets["train"], val)
    return {
        "series": list(dm.series_ids),
        "windows": {split: len(d) for split, d in dm.datasets.items()},
        "spec": dm.spec.to_dict(),
        "linear": LinearBaseline.fit(dm.datasets["train"]).weight,
        "candidates": candidate_sums(ensemble, val),
        "weights": ensemble.weights.clone(),
        "val_loss": mean_loss(net, val, ForecastLoss("mse")),
        "test": evaluate_windows(net, dm, test, season=24).metrics("test"),
        "test_windows": len(evaluate_windows(net, dm, test, season=24).windows),
        "dropped": dm.short_series_dropped,
        "changes": dm.changes(),
    }


if __name__ == "__main__":
    out, data = Path(sys.argv[1]), Path(sys.argv[2])
    ranks = dist.is_torchelastic_launched()
    if ranks:
        dist.init_process_group("gloo")
    result = {case: figures(str(data / file), **keys) for case, (file, keys) in CASES.items()}
    name = f"rank{dist.get_rank()}" if ranks else "whole"
    (out / f"{name}.pkl").write_bytes(pickle.dumps(result))
