"""``Forecaster``: forecasts from a saved model file alone, no config and no training data.

Python::

    forecaster = Forecaster.load("logs/runs/<run>/model.pt")  # or "runs:/<mlflow run id>"
    future = forecaster.predict(history_df)  # original units, future timestamps

Command line::

    forecast-predict model=<model.pt | runs:/<id>/model | models:/<name>/<version>>
                     input=history.csv output=forecast.csv
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from forecast.checkpoint import build_net, load_checkpoint
from forecast.config import SERVING_CONF_DIR
from forecast.data import Scaler, check_timestamps, check_values, prepare_series, read_table
from forecast.errors import ForecastError, exit_on_error
from forecast.model import LSTMNet

log = logging.getLogger(__name__)


class Forecaster:
    """A trained network plus the data conventions it was trained with (checkpoint ``data``)."""

    def __init__(self, net: LSTMNet, spec: dict[str, Any]) -> None:
        self.net = net.eval()
        self.spec = spec
        self.scaler = Scaler.from_dict(spec["scaler"])
        self.features: list[str] = spec["features"]
        self.targets: list[str] = spec["targets"]
        self.lookback: int = spec["lookback"]
        self.horizon: int = spec["horizon"]
        self.freq: str = spec["freq"]
        self.timestamp: str = spec["timestamp"]
        self.series_id: str | None = spec["series_id"]
        self.target_index = [self.features.index(t) for t in self.targets]
        self.quantiles: list[float] = list(net.quantiles)
        # Point forecasts first, then each target's quantiles: OT, ..., OT_q0.1, OT_q0.9
        self.columns = self.targets + [f"{t}_q{q:g}" for t in self.targets for q in self.quantiles]
        self.target_mean = self.scaler.mean[self.target_index]
        self.target_std = self.scaler.std[self.target_index]
        repeats = len(self.quantiles)
        self.column_mean = np.concatenate([self.target_mean, self.target_mean.repeat(repeats)])
        self.column_std = np.concatenate([self.target_std, self.target_std.repeat(repeats)])
        self.offset = pd.tseries.frequencies.to_offset(self.freq)

    @classmethod
    def load(cls, uri: str | Path) -> Forecaster:
        """From a ``model.pt`` path or ``runs:/<run_id>``; the file is opened with weights_only."""
        payload = load_checkpoint(uri)
        return cls(build_net(payload), payload["data"])

    def predict(self, history: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the end of each series in ``history``.

        ``history`` has the training columns (extra columns are ignored); the last
        ``lookback`` rows of each series are used. All series go through one forward pass.
        Returns one row per series and future step: [series id,] timestamp, targets, then
        ``<target>_q<level>`` columns if the model has quantiles.
        """
        series = prepare_series(
            history,
            timestamp=self.timestamp,
            features=self.features,
            series_id=self.series_id,
            fill_missing=self.spec.get("fill_missing"),
            freq=self.freq,
            source="history",
        )
        labels = [f"series {k!r}" if self.series_id else "history" for k in series.series_ids]
        blocks = [(series.timestamps[a:b], series.values[a:b]) for a, b in series.bounds]
        futures, forecast = self.forecast(blocks, labels)
        frames = []
        for k, future in enumerate(futures):
            frame = pd.DataFrame(forecast[k], columns=self.columns)
            frame.insert(0, self.timestamp, future)
            if self.series_id:
                frame.insert(0, self.series_id, series.series_ids[k])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def check(self, stamps: np.ndarray, values: np.ndarray, label: str) -> np.ndarray:
        """Apply the training data's rules to one series; returns its (filled) values."""
        values = check_values(values, self.features, self.spec.get("fill_missing"), label)
        check_timestamps(stamps, self.freq, label)
        return values

    def forecast(
        self, blocks: Sequence[tuple[np.ndarray, np.ndarray]], labels: Sequence[str]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Forecasts for checked series given as ``(timestamps, values)`` in original units.

        Returns each series' future timestamps and the forecasts, ``(n_series, horizon,
        len(self.columns))`` in original units, from one batched forward pass.
        """
        for (_, values), label in zip(blocks, labels, strict=True):
            if len(values) < self.lookback:
                raise ForecastError(
                    f"{label} has {len(values)} rows, the model needs lookback={self.lookback}"
                )
        inputs = np.stack([values[-self.lookback :] for _, values in blocks])
        x = torch.from_numpy(self.scaler.transform(inputs, np.float32))
        with torch.inference_mode():
            out = self.net.decode(x)[0]  # (n_series, horizon, n_targets, 1 + Q), scaled
        point, quantiles = out[..., 0], out[..., 1:].flatten(2)
        forecast = torch.cat([point, quantiles], dim=2).numpy()
        forecast = forecast * self.column_std + self.column_mean
        return [self.future(stamps[-1]) for stamps, _ in blocks], forecast

    def future(self, last: np.datetime64) -> np.ndarray:
        """The ``horizon`` timestamps after ``last`` at the model's frequency."""
        if isinstance(self.offset, pd.offsets.Tick):  # fixed steps: plain arithmetic
            step = np.timedelta64(self.offset.nanos, "ns")
            return last + step * np.arange(1, self.horizon + 1)
        start = pd.Timestamp(last) + self.offset
        return pd.date_range(start, periods=self.horizon, freq=self.offset).to_numpy()


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
    forecaster = Forecaster.load(cfg.model)
    future = forecaster.predict(read_table(cfg.input))
    path = write_table(future, cfg.output)
    log.info("wrote %d rows (%s steps per series) to %s", len(future), forecaster.horizon, path)


if __name__ == "__main__":
    main()
