"""``forecast-eval``: test metrics or a rolling-origin backtest of a saved model, from its
model file alone, next to the baselines (scored by ``forecast.scoring``).

    forecast-eval ckpt_path=logs/runs/<run>/model.pt
    forecast-eval ckpt_path=runs:/<mlflow run id> data_path=other.csv
    forecast-eval ckpt_path=... backtest.stride=24 backtest.start=2017-10-01 backtest.end=2018-02-28

Windows are rebuilt from the split settings stored in the checkpoint and scaled with the
stored training statistics: nothing is refitted, so the test numbers match training's. The
linear baseline is fitted on the training split.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import matplotlib.pyplot as plt
from hydra.utils import instantiate
from mlflow.entities import Metric
from omegaconf import DictConfig
from pytorch_lightning.loggers import MLFlowLogger

from forecast.checkpoint import load_checkpoint
from forecast.config import CONF_DIR, check_config, exit_on_error, flat_params
from forecast.model import LSTMNet
from forecast.plots import error_by_step_figure, forecast_figure
from forecast.scoring import Evaluation, evaluate_windows, forecast_examples
from forecast.windows import ForecastDataModule

log = logging.getLogger(__name__)


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
    examples = forecast_examples(net, datamodule, datamodule.datasets["test"])
    figures = {
        f"plots/{prefix}_forecasts.png": forecast_figure(
            examples, datamodule.spec.targets[-1], net.config.quantiles
        ),
        f"plots/{prefix}_mse_by_step.png": error_by_step_figure(by_step),
    }
    for name, figure in figures.items():
        client.log_figure(run_id, figure, name)
        plt.close(figure)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score the checkpoint on its test split, or on a backtest span; log and return metrics."""
    check_config(cfg)
    net, spec = load_checkpoint(cfg.ckpt_path)
    datamodule = ForecastDataModule.from_spec(spec, path=cfg.data_path)
    datamodule.setup("test")
    backtest = cfg.backtest
    spanned = backtest.start is not None or backtest.end is not None
    dataset = datamodule.span(backtest.start, backtest.end) if spanned else None
    prefix = "backtest" if spanned or backtest.stride != 1 else "test"
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
