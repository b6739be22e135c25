"""Windows by time: the series and origin of each, and backtest spans (the windows whose
forecast targets lie between two timestamps)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import Tensor

from forecast.data.datamodule import ForecastDataModule
from forecast.data.windows import WindowDataset, window_count
from forecast.errors import ForecastError


def span(datamodule: ForecastDataModule, start: str | None, end: str | None) -> WindowDataset:
    """Windows of every series whose forecast targets all lie in ``[start, end]``.

    Inputs may reach back ``lookback`` rows before ``start``; a span over the training rows
    measures in-sample fit, which is the caller's choice to make.
    """
    lookback, horizon = datamodule.spec.lookback, datamodule.spec.horizon
    bounds = [pd.Timestamp(t).to_datetime64() if t is not None else None for t in (start, end)]
    segments, series = [], []
    for k, (a, b) in enumerate(datamodule.bounds):
        stamps = datamodule.timestamps[a:b]
        first = a if bounds[0] is None else a + int(np.searchsorted(stamps, bounds[0]))
        last = b if bounds[1] is None else a + int(np.searchsorted(stamps, bounds[1], "right"))
        segment = (max(a, first - lookback), last)
        if window_count(segment[1] - segment[0], lookback, horizon) > 0:
            segments.append(segment)
            series.append(k)
    if not segments:
        raise ForecastError(
            f"no series has lookback + horizon = {lookback + horizon} rows with "
            f"targets between {start} and {end}"
        )
    return datamodule.windows(segments, series, scored=True)


def window_origins(
    datamodule: ForecastDataModule, dataset: WindowDataset, index: Tensor
) -> pd.DataFrame:
    """Series and forecast origin (first target timestamp) of each window in ``index``."""
    spec = datamodule.spec
    rows = (dataset.starts(index) + spec.lookback).numpy()
    frame = pd.DataFrame({"origin": datamodule.timestamps[rows]})
    if spec.series_id:
        starts = [a for a, _ in datamodule.bounds]
        series = np.searchsorted(starts, rows, side="right") - 1
        ids = [spec.id_values(datamodule.series_ids[k]) for k in series]
        for position, column in enumerate(spec.id_columns):
            frame.insert(position, column, [key[position] for key in ids])
    return frame
