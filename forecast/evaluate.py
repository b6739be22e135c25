"""``forecast-eval``: test metrics or a rolling-origin backtest of a saved model, from its
model file alone, next to the baselines (scored by ``forecast.evaluation.scoring``).

    forecast-eval ckpt_path=logs/runs/<run>/model.pt
    forecast-eval ckpt_path=runs:/<mlflow run id> data_path=other.csv
    forecast-eval ckpt_path=... backtest.stride=24 backtest.start=2017-10-01 backtest.end=2018-02-28

Windows are rebuilt from the split settings stored in the checkpoint and scaled with the
stored training statistics: nothing is refitted, so the test numbers match training's. The
linear baseline is fitted on the training split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from forecast.config import check_config, exit_on_error, use_threads
from forecast.data.datamodule import ForecastDataModule
from forecast.evaluation.scoring import evaluate_windows
from forecast.evaluation.spans import span
from forecast.evaluation.tracking import log_evaluation
from forecast.reference import CONF_DIR
from forecast.serving.checkpoint import load_checkpoint
from forecast.training.setup import flat_params

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score the checkpoint on its test split, or on a backtest span; log and return metrics."""
    check_config(cfg)
    use_threads(cfg)
    net, spec = load_checkpoint(cfg.ckpt_path)
    datamodule = ForecastDataModule.from_spec(spec, path=cfg.data_path)
    datamodule.setup("test")
    backtest = cfg.backtest
    spanned = backtest.start is not None or backtest.end is not None
    dataset = span(datamodule, backtest.start, backtest.end) if spanned else None
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
