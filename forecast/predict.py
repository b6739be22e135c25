"""``Forecaster``: forecasts from a saved model file alone, no config and no training data.

from forecast import Forecaster
forecaster = Forecaster.load("logs/runs/<run>/model.pt")   # or "runs:/<mlflow run id>"
future = forecaster.predict(history_df)                    # original units, future timestamps
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from forecast.checkpoint import build_net, load_checkpoint
from forecast.data import Scaler, prepare_series
from forecast.errors import ForecastError
from forecast.model import LSTMNet


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

    @classmethod
    def load(cls, uri: str | Path) -> Forecaster:
        """From a ``model.pt`` path or ``runs:/<run_id>``; the file is opened with weights_only."""
        payload = load_checkpoint(uri)
        return cls(build_net(payload), payload["data"])

    def predict(self, history: pd.DataFrame) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the end of each series in ``history``.

        ``history`` has the training columns (extra columns are ignored); the last
        ``lookback`` rows of each series are used. All series go through one forward pass.
        Returns one row per series and future step: [series id,] timestamp, targets.
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
        for k, (start, end) in enumerate(series.bounds):
            if end - start < self.lookback:
                name = f"series {series.series_ids[k]!r}" if self.series_id else "history"
                raise ForecastError(
                    f"{name} has {end - start} rows, the model needs lookback={self.lookback}"
                )
        inputs = np.stack([series.values[end - self.lookback : end] for _, end in series.bounds])
        x = torch.from_numpy(self.scaler.transform(inputs).astype(np.float32))
        with torch.inference_mode():
            forecast = self.net(x)[0].numpy()  # (n_series, horizon, n_targets)
        mean, std = self.scaler.mean[self.target_index], self.scaler.std[self.target_index]
        forecast = forecast * std + mean
        return self._frame(forecast, series.timestamps, series.bounds, series.series_ids)

    def _frame(
        self,
        forecast: np.ndarray,
        timestamps: np.ndarray,
        bounds: list[tuple[int, int]],
        series_ids: list[Any],
    ) -> pd.DataFrame:
        offset = pd.tseries.frequencies.to_offset(self.freq)
        frames = []
        for k, (_, end) in enumerate(bounds):
            future = pd.date_range(
                pd.Timestamp(timestamps[end - 1]) + offset, periods=self.horizon, freq=offset
            )
            frame = pd.DataFrame(forecast[k], columns=self.targets)
            frame.insert(0, self.timestamp, future)
            if self.series_id:
                frame.insert(0, self.series_id, series_ids[k])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)
