"""Scoring a model next to baselines, and ``forecast-eval``: test metrics or a rolling-origin
backtest of a saved model, from its checkpoint alone.

    forecast-eval ckpt_path=logs/runs/<run>/model.pt
    forecast-eval ckpt_path=runs:/<mlflow run id> data_path=other.csv
    forecast-eval ckpt_path=... backtest.stride=24 backtest.start=2017-10-01 backtest.end=2018-02-28

Windows are rebuilt from the split settings stored in the checkpoint and scaled with the
stored training statistics: nothing is refitted, so the test numbers match training's. The
linear baseline is fitted on the training split; MASE divides a forecast's MAE by the MAE of
the one-season-back forecast over the training split (in-sample, as Hyndman and Koehler
define it), so a MASE below 1 beats what seasonality alone explains.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import matplotlib.pyplot as plt
import pandas as pd
import torch
from hydra.utils import instantiate
from mlflow.entities import Metric
from omegaconf import DictConfig
from pytorch_lightning.loggers import MLFlowLogger
from torch import Tensor

from forecast.baselines import LinearBaseline, repeat_last, season_from_freq, seasonal_naive
from forecast.checkpoint import build_net, load_checkpoint
from forecast.config import CONF_DIR, flat_params
from forecast.data import Scaler
from forecast.errors import ForecastError, exit_on_error
from forecast.model import LSTMNet, interval_hits, pinball_loss
from forecast.plots import error_by_step_figure, forecast_figure
from forecast.windows import ForecastDataModule, WindowDataset

log = logging.getLogger(__name__)


@dataclass
class Scores:
    """Squared and absolute errors summed per horizon step and target: every metric, the
    per-step error curve included, comes from these sums, so batching cannot change them."""

    squared: Tensor  # (horizon, n_targets), float64
    absolute: Tensor
    windows: int = 0

    @classmethod
    def empty(cls, horizon: int, n_targets: int) -> Scores:
        zeros = torch.zeros(horizon, n_targets, dtype=torch.float64)
        return cls(zeros, zeros.clone())

    def update(self, forecast: Tensor, y: Tensor) -> None:
        error = (forecast - y).double()
        self.squared += error.square().sum(0)
        self.absolute += error.abs().sum(0)
        self.windows += len(y)

    def metrics(self, target_std: Tensor, mase_scale: Tensor) -> dict[str, float]:
        mse_by_target = self.squared.sum(0) / (self.windows * self.squared.shape[0])
        mae_by_target = self.absolute.sum(0) / (self.windows * self.absolute.shape[0])
        return {
            "mse": mse_by_target.mean().item(),
            "mae": mae_by_target.mean().item(),
            "rmse": mse_by_target.mean().sqrt().item(),
            "mae_orig": (mae_by_target * target_std).mean().item(),
            "rmse_orig": (mse_by_target * target_std**2).mean().sqrt().item(),
            "mase": (mae_by_target / mase_scale).mean().item(),
        }

    def mse_by_step(self) -> Tensor:
        return self.squared.mean(1) / self.windows


@dataclass
class Evaluation:
    """The model's and each baseline's scores on one set of windows, plus per-window errors."""

    scores: dict[str, Scores]
    target_std: Tensor
    mase_scale: Tensor
    season: int
    windows: pd.DataFrame  # one row per window: [series,] origin, mse, mae of the model
    quantiles: list[float] = field(default_factory=list)
    pinball: float = float("nan")
    coverage: float = float("nan")

    def metrics(self, prefix: str) -> dict[str, float]:
        """``<prefix>_mse`` ... for the model, ``<prefix>_mse_<baseline>`` for baselines."""
        out = {}
        for name, scores in self.scores.items():
            keep = scores.metrics(self.target_std, self.mase_scale)
            if name == "model":
                out |= {f"{prefix}_{k}": v for k, v in keep.items()}
            else:
                out |= {f"{prefix}_{k}_{name}": keep[k] for k in ("mse", "mae", "mase")}
        if self.quantiles:
            out |= {f"{prefix}_pinball": self.pinball, f"{prefix}_coverage": self.coverage}
        return out

    def table(self) -> str:
        lines = [f"{'':<16}{'MSE':>9}{'MAE':>9}{'MASE':>9}   ({len(self.windows)} windows)"]
        for name, scores in self.scores.items():
            m = scores.metrics(self.target_std, self.mase_scale)
            lines.append(f"{name:<16}{m['mse']:>9.4f}{m['mae']:>9.4f}{m['mase']:>9.4f}")
        if self.quantiles:
            nominal = self.quantiles[-1] - self.quantiles[0]
            lines.append(
                f"quantiles {self.quantiles}: pinball {self.pinball:.4f}, coverage "
                f"{self.coverage:.3f} of a nominal {nominal:.2f}"
            )
        return "\n".join(lines)

    def by_step(self) -> pd.DataFrame:
        """MSE per horizon step (rows) for the model and each baseline (columns)."""
        curves = {name: s.mse_by_step().numpy() for name, s in self.scores.items()}
        frame = pd.DataFrame(curves)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="step")
        return frame


def mase_scale(datamodule: ForecastDataModule, season: int) -> Tensor:
    """Per target: mean |y_t - y_{t-season}| over the training rows of every series."""
    values = datamodule.values[:, datamodule.target_index].double()
    diffs = [
        (values[a + season : b] - values[a : b - season]).abs()
        for a, b in datamodule.segments["train"]
        if b - a > season
    ]
    if not diffs:
        raise ForecastError(f"no training series is longer than the season ({season} steps)")
    return torch.cat(diffs).mean(0).clamp_min(1e-8)


@torch.no_grad()
def evaluate_windows(
    net: LSTMNet,
    datamodule: ForecastDataModule,
    dataset: WindowDataset,
    season: int | None = None,
    stride: int = 1,
    batch_size: int = 1024,
) -> Evaluation:
    """Score ``net`` and the baselines on ``dataset``'s windows, every ``stride``-th origin."""
    horizon, targets = datamodule.horizon, datamodule.target_index
    season = season or season_from_freq(datamodule.series.freq)
    baselines = {"naive": repeat_last(horizon, targets)}
    if season <= datamodule.lookback:
        baselines["seasonal_naive"] = seasonal_naive(horizon, targets, season)
    else:
        log.warning("season %d > lookback %d: no seasonal naive", season, datamodule.lookback)
    baselines["linear"] = LinearBaseline.fit(datamodule.datasets["train"])
    scores = {name: Scores.empty(horizon, len(targets)) for name in ["model", *baselines]}
    pinball = covered = 0.0
    index = dataset.strided(stride)
    window_errors = []
    net.eval()
    for batch in index.split(batch_size):
        x, y = dataset[batch]
        out = net.decode(x)[0]
        forecast, quantiles = out[..., 0], out[..., 1:]
        scores["model"].update(forecast, y)
        for name, baseline in baselines.items():
            scores[name].update(baseline(x), y)
        if net.quantiles:
            pinball += pinball_loss(quantiles, y, net.quantiles).item() * y.numel()
            covered += interval_hits(quantiles, y).sum().item()
        error = forecast - y
        window_errors.append(torch.stack([error.square().mean((1, 2)), error.abs().mean((1, 2))]))
    errors = torch.cat(window_errors, dim=1).numpy()
    values = len(index) * horizon * len(targets)
    return Evaluation(
        scores=scores,
        target_std=torch.tensor(datamodule.target_std, dtype=torch.float64),
        mase_scale=mase_scale(datamodule, season),
        season=season,
        windows=datamodule.describe_windows(dataset, index).assign(mse=errors[0], mae=errors[1]),
        quantiles=list(net.quantiles),
        pinball=pinball / values if net.quantiles else float("nan"),
        coverage=covered / values if net.quantiles else float("nan"),
    )


def log_evaluation(
    logger: MLFlowLogger,
    evaluation: Evaluation,
    prefix: str,
    net: LSTMNet,
    datamodule: ForecastDataModule,
    output_dir: Path,
) -> None:
    """The per-step error curve (as metric history and CSV), per-window errors and the two
    figures, into the run and ``output_dir``; the summary metrics are the caller's to log."""
    client, run_id = logger.experiment, logger.run_id
    by_step = evaluation.by_step()
    now = int(time.time() * 1000)
    curves = [  # MLflow's metric history, one point per horizon step, sent in one call
        Metric(f"{prefix}_mse_by_step_{name}", float(value), now, int(step))
        for name, curve in by_step.items()
        for step, value in curve.items()
    ]
    client.log_batch(run_id, metrics=curves)
    folder = output_dir / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    by_step.to_csv(folder / f"{prefix}_mse_by_step.csv")
    evaluation.windows.to_csv(folder / f"{prefix}_windows.csv", index=False)
    client.log_artifacts(run_id, str(folder), "evaluation")
    figures = {
        f"plots/{prefix}_forecasts.png": forecast_figure(net, datamodule),
        f"plots/{prefix}_mse_by_step.png": error_by_step_figure(by_step),
    }
    for name, figure in figures.items():
        client.log_figure(run_id, figure, name)
        plt.close(figure)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score the checkpoint on its test split, or on a backtest span; log and return metrics."""
    payload = load_checkpoint(cfg.ckpt_path)
    spec = payload["data"]
    datamodule = ForecastDataModule(
        path=cfg.data_path or spec["path"],
        lookback=spec["lookback"],
        horizon=spec["horizon"],
        timestamp=spec["timestamp"],
        features=spec["features"],
        targets=spec["targets"],
        series_id=spec["series_id"],
        split_ratios=spec["split_ratios"],
        split_borders=spec["split_borders"],
        fill_missing=spec["fill_missing"],
        freq=spec["freq"],
        scaler=Scaler.from_dict(spec["scaler"]),
    )
    datamodule.setup("test")
    backtest = cfg.backtest
    spanned = backtest.start is not None or backtest.end is not None
    dataset = datamodule.span(backtest.start, backtest.end) if spanned else None
    prefix = "backtest" if spanned or backtest.stride != 1 else "test"
    net = build_net(payload)
    evaluation = evaluate_windows(
        net, datamodule, dataset or datamodule.datasets["test"], cfg.season, backtest.stride
    )
    logger = instantiate(cfg.logger)
    logger.log_hyperparams(flat_params(cfg))
    metrics = evaluation.metrics(prefix)
    logger.log_metrics(metrics)
    log_evaluation(logger, evaluation, prefix, net, datamodule, Path(cfg.paths.output_dir))
    logger.finalize("success")
    where = "test split" if dataset is None else f"span {backtest.start} .. {backtest.end}"
    log.info(
        "%s of %s, every %d-th origin, season %d:\n%s",
        where, datamodule.path, backtest.stride, evaluation.season, evaluation.table(),
    )  # fmt: skip
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
@exit_on_error
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
