"""``Forecaster``: forecasts from a saved model file alone, no config and no training data.

Python::

    forecaster = Forecaster.load("logs/runs/<run>/model.pt")  # or "runs:/<mlflow run id>"
    future = forecaster.predict(history_df)  # original units, future timestamps

Command line::

    forecast-predict ckpt_path=<model.pt | runs:/<id>/model | models:/<name>/<version>>
                     input=history.csv output=forecast.csv
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from forecast.checkpoint import load_checkpoint
from forecast.config import SERVING_CONF_DIR, exit_on_error
from forecast.data import Scaler, check_timestamps, check_values, prepare_series, read_table
from forecast.errors import ForecastError
from forecast.model import LSTMNet
from forecast.spec import DataSpec

log = logging.getLogger(__name__)


class Forecaster:
    """A trained network plus the data contract it was trained with."""

    def __init__(self, net: LSTMNet, spec: DataSpec) -> None:
        self.net = net.eval()
        self.spec = spec
        self.quantiles: list[float] = list(net.config.quantiles)
        # Point forecasts first, then each target's quantiles: OT, ..., OT_q0.1, OT_q0.9
        self.columns = spec.targets + [f"{t}_q{q:g}" for t in spec.targets for q in self.quantiles]
        targets = spec.target_scaler
        # The scaler of those columns, in that order (Forecast.flat's layout).
        self.output_scaler = Scaler(
            mean=np.concatenate([targets.mean, targets.mean.repeat(len(self.quantiles))]),
            std=np.concatenate([targets.std, targets.std.repeat(len(self.quantiles))]),
        )
        self.offset = pd.tseries.frequencies.to_offset(spec.freq)

    @classmethod
    def load(cls, uri: str | Path) -> Forecaster:
        """From a ``model.pt`` path or ``runs:/<run_id>``; the file is opened with weights_only."""
        return cls(*load_checkpoint(uri))

    def predict(self, history: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the end of each series in ``history``.

        ``history`` has the training columns (extra columns are ignored); the last
        ``lookback`` rows of each series are used. All series go through one forward pass.
        Returns one row per series and future step: [series id,] timestamp, targets, then
        ``<target>_q<level>`` columns if the model has quantiles.
        """
        spec = self.spec
        series = prepare_series(
            history,
            timestamp=spec.timestamp,
            features=spec.features,
            series_id=spec.series_id,
            fill_missing=spec.fill_missing,
            freq=spec.freq,
            source="history",
        )
        labels = [f"series {k!r}" if spec.series_id else "history" for k in series.series_ids]
        blocks = [(series.timestamps[a:b], series.values[a:b]) for a, b in series.bounds]
        futures, forecast = self.forecast(blocks, labels)
        frames = []
        for k, future in enumerate(futures):
            frame = pd.DataFrame(forecast[k], columns=self.columns)
            frame.insert(0, spec.timestamp, future)
            if spec.series_id:
                frame.insert(0, spec.series_id, series.series_ids[k])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def check(self, stamps: np.ndarray, values: np.ndarray, label: str) -> np.ndarray:
        """Apply the training data's rules to one series; returns its (filled) values."""
        values = check_values(values, self.spec.features, self.spec.fill_missing, label)
        check_timestamps(stamps, self.spec.freq, label)
        return values

    def forecast(
        self, blocks: Sequence[tuple[np.ndarray, np.ndarray]], labels: Sequence[str]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Forecasts for checked series given as ``(timestamps, values)`` in original units.

        Returns each series' future timestamps and the forecasts, ``(n_series, horizon,
        len(self.columns))`` in original units, from one batched forward pass.
        """
        lookback = self.spec.lookback
        for (_, values), label in zip(blocks, labels, strict=True):
            if len(values) < lookback:
                raise ForecastError(
                    f"{label} has {len(values)} rows, the model needs lookback={lookback}"
                )
        inputs = np.stack([values[-lookback:] for _, values in blocks])
        x = torch.from_numpy(self.spec.scaler.transform(inputs, np.float32))
        with torch.inference_mode():
            forecast = self.net.forecast(x).flat().numpy()  # scaled
        return [self.future(stamps[-1]) for stamps, _ in blocks], self.output_scaler.inverse(
            forecast
        )

    def future(self, last: np.datetime64) -> np.ndarray:
        """The ``horizon`` timestamps after ``last`` at the model's frequency."""
        if isinstance(self.offset, pd.offsets.Tick):  # fixed steps: plain arithmetic
            step = np.timedelta64(self.offset.nanos, "ns")
            return last + step * np.arange(1, self.spec.horizon + 1)
        start = pd.Timestamp(last) + self.offset
        return pd.date_range(start, periods=self.spec.horizon, freq=self.offset).to_numpy()


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """CSV or Parquet by suffix, via a temp file: an existing file is replaced only when done."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ForecastError(f"output {path}: unsupported file type, expected .csv or .parquet")
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="predict")
@exit_on_error
def main(cfg: DictConfig) -> None:
    forecaster = Forecaster.load(cfg.ckpt_path)
    future = forecaster.predict(read_table(cfg.input))
    path = write_table(future, cfg.output)
    log.info(
        "wrote %d rows (%s steps per series) to %s", len(future), forecaster.spec.horizon, path
    )


if __name__ == "__main__":
    main()
