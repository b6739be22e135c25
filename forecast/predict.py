"""``forecast-predict``: forecasts for every series of a history file, written to a file.

    forecast-predict ckpt_path=<model.pt | runs:/<id>/model | models:/<name>/<version>>
                     input=history.csv [future=future.csv] output=forecast.csv

In Python, ``forecast.Forecaster`` does the same: ``Forecaster.load(uri).predict(history)``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from forecast.config import exit_on_error, model_uri, use_threads
from forecast.data.reading import read_table
from forecast.errors import ForecastError
from forecast.reference import SERVING_CONF_DIR
from forecast.serving.forecaster import Forecaster

log = logging.getLogger(__name__)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """CSV or Parquet by suffix, via a temp file: an existing file is replaced only when done."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ForecastError(f"output {path}: unsupported file type, expected .csv or .parquet")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    except OSError as err:
        with contextlib.suppress(OSError):  # a name too long cannot be unlinked either
            tmp.unlink(missing_ok=True)  # no stray temp file; an existing output stays as it was
        raise ForecastError(f"cannot write {path}: {err.strerror or err}") from None
    return path


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="predict")
@exit_on_error
def main(cfg: DictConfig) -> None:
    use_threads(cfg)
    forecaster = Forecaster.load(model_uri(cfg))
    future = None if cfg.future is None else read_table(cfg.future)
    future = forecaster.predict(read_table(cfg.input), future)
    path = write_table(future, cfg.output)
    log.info(
        "wrote %d rows (%s steps per series) to %s", len(future), forecaster.spec.horizon, path
    )


if __name__ == "__main__":
    main()
