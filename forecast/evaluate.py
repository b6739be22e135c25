"""``forecast-eval``: test metrics of a saved model, from its checkpoint alone.

    forecast-eval ckpt_path=logs/runs/<run>/model.pt
    forecast-eval ckpt_path=runs:/<mlflow run id> data_path=other.csv

The test split is rebuilt from the split settings stored in the checkpoint and scaled with
the stored training statistics: nothing is refitted, so the numbers match training's.
"""

from __future__ import annotations

import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from forecast.checkpoint import load_checkpoint
from forecast.config import CONF_DIR, flat_params
from forecast.data import Scaler
from forecast.errors import exit_on_error
from forecast.model import LSTMForecaster
from forecast.windows import ForecastDataModule

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    payload = load_checkpoint(cfg.ckpt_path)
    spec = payload["data"]
    datamodule = ForecastDataModule(
        path=cfg.data_path or spec["path"],
        lookback=spec["lookback"],
        horizon=spec["horizon"],
        batch_size=cfg.batch_size,
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
    model = LSTMForecaster(**payload["net"], target_std=datamodule.target_std)
    model.net.load_state_dict(payload["state_dict"])
    logger = instantiate(cfg.logger)
    logger.log_hyperparams(flat_params(cfg))
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=[])
    metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    n_windows = len(datamodule.datasets["test"])
    lines = [f"test split of {datamodule.path}: {n_windows} windows"]
    lines += [f"  {k:<16}{v:>10.4f}" for k, v in sorted(metrics.items())]
    log.info("\n".join(lines))
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
@exit_on_error
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
