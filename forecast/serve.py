"""``forecast-serve``: forecasts over HTTP from one model, loaded once at start.

    forecast-serve ckpt_path=logs/runs/<run>/model.pt port=8000
    curl -X POST localhost:8000/forecast -H 'content-type: application/json' -d @request.json

The request and answer bodies are described in ``forecast.serving.app`` and at ``/docs``.
"""

from __future__ import annotations

import functools

import hydra
from omegaconf import DictConfig

from forecast.config import exit_on_error, model_uri, use_threads
from forecast.reference import SERVING_CONF_DIR
from forecast.serving.app import create_app
from forecast.serving.forecaster import Forecaster
from forecast.serving.limits import HeaderDeadline


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="serve")
@exit_on_error
def main(cfg: DictConfig) -> None:
    import uvicorn

    use_threads(cfg)
    forecaster = Forecaster.load(model_uri(cfg))
    app = create_app(
        forecaster,
        model_uri(cfg),
        cfg.max_body_bytes,
        cfg.large_body_bytes,
        cfg.max_large_requests,
        cfg.body_timeout_s,
        cfg.body_deadline_s,
    )
    uvicorn.run(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.log_level,
        http=functools.partial(HeaderDeadline, header_timeout_s=cfg.header_timeout_s),
        limit_concurrency=cfg.max_connections,
    )


if __name__ == "__main__":
    main()
