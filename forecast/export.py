"""``forecast-export``: a model for runtimes without the training stack (TorchScript, ONNX).

    forecast-export ckpt_path=logs/runs/<run>/model.pt format=torchscript output=model.ts
    forecast-export ckpt_path=models:/forecast/3 format=onnx output=model.onnx

What the exported graph takes and returns: ``forecast.serving.export``.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from forecast.config import exit_on_error, model_uri
from forecast.reference import SERVING_CONF_DIR
from forecast.serving.export import export
from forecast.serving.forecaster import Forecaster

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="export")
@exit_on_error
def main(cfg: DictConfig) -> None:
    forecaster = Forecaster.load(model_uri(cfg))
    path = export(forecaster, cfg.format, cfg.output)
    log.info("wrote %s (%s)", path, cfg.format)
    config = forecaster.net.config
    if config.quantiles or config.distribution:
        log.info(
            "the graph gives the point forecast alone (%s); quantiles and sample paths come "
            "from forecast-predict, forecast-serve or the pyfunc",
            f"the {config.distribution} distribution's mean" if config.distribution
            else "the quantile heads are left out",
        )  # fmt: skip


if __name__ == "__main__":
    main()
