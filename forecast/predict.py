"""``Forecaster``: forecasts from a saved model file alone, no config and no training data.

Python::

    forecaster = Forecaster.load("logs/runs/<run>/model.pt")  # or "runs:/<mlflow run id>"
    future = forecaster.predict(history_df)  # original units, future timestamps

Command line::

    forecast-predict ckpt_path=<model.pt | runs:/<id>/model | models:/<name>/<version>>
                     input=history.csv [future=future.csv] output=forecast.csv
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from forecast.checkpoint import load_checkpoint
from forecast.config import SERVING_CONF_DIR, exit_on_error
from forecast.covariates import fill_numeric, static_value
from forecast.data import (
    Scaler,
    check_series,
    prepare_series,
    read_table,
    read_timestamps,
    table_columns,
    to_nanoseconds,
)
from forecast.errors import ForecastError
from forecast.model import LSTMNet
from forecast.spec import DataSpec

log = logging.getLogger(__name__)


@dataclass
class SeriesInput:
    """One series to forecast, as read from a file or a request (values in original units)."""

    label: str  # how messages name it
    stamps: np.ndarray  # (rows,) datetime64[ns], checked
    values: np.ndarray  # (rows, n_features), checked
    covariates: dict[str, np.ndarray] = field(default_factory=dict)  # raw, over the rows
    # The future covariates' rows: (timestamps, {column: values}); None without.
    future: tuple[np.ndarray, dict[str, np.ndarray]] | None = None


def parse_stamps(columns: dict[str, np.ndarray], spec: DataSpec, source: str) -> np.ndarray:
    """The timestamps of a history's or future's rows, read as the training file's were (its
    format, its zone), as UTC ``datetime64[ns]``."""
    stamps = read_timestamps(
        pd.DataFrame(columns), spec.timestamp_columns, spec.timestamp_format, spec.timezone, source
    )
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert(None)
    return to_nanoseconds(stamps.to_numpy(), source, str(spec.timestamp))


def check_future_stamps(given: np.ndarray, expected: np.ndarray, label: str) -> None:
    """The future rows must be exactly the next ``horizon`` steps, in order."""
    if len(given) != len(expected):
        raise ForecastError(
            f"{label}: the future covariates have {len(given)} rows, the model needs the next "
            f"{len(expected)} steps ({pd.Timestamp(expected[0])} to {pd.Timestamp(expected[-1])})"
        )
    wrong = np.flatnonzero(given != expected)
    if wrong.size:
        k = int(wrong[0])
        raise ForecastError(
            f"{label}: future row {k} is at {pd.Timestamp(given[k])}, expected "
            f"{pd.Timestamp(expected[k])} (the next {len(expected)} steps after the history)"
        )


def check_finite(
    values: np.ndarray, inputs: Sequence[SeriesInput], columns: list[str], problem: str
) -> None:
    """``values (n_series, steps, columns)``: a non-finite one is a ForecastError naming its
    series, step and column (inputs as huge as 1e30 overflow float32 once scaled)."""
    bad = ~np.isfinite(values)
    if bad.any():
        k, step, column = (int(i[0]) for i in np.nonzero(bad))
        raise ForecastError(
            f"{inputs[k].label}: column {columns[column]!r} at step {step} {problem} "
            "(check the input for values of extreme size)"
        )


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

    def predict(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the end of each series in ``history``.

        ``history`` has the training columns (extra columns are ignored); the last
        ``lookback`` rows of each series are used. A model with future covariates needs
        ``future``: for each series, its next ``horizon`` timestamps with those columns.
        All series go through one forward pass. Returns one row per series and future step:
        [series id,] timestamp, targets, then ``<target>_q<level>`` columns if the model has
        quantiles.
        """
        spec = self.spec
        series = prepare_series(
            history,
            timestamp=spec.timestamp,
            features=spec.features,
            series_id=spec.series_id,
            fill_missing=spec.fill_missing,
            fill_gaps=spec.fill_gaps,
            duplicates=spec.duplicates,
            timestamp_format=spec.timestamp_format,
            timezone=spec.timezone,
            freq=spec.freq,
            source="history",
        )
        covariates = table_columns(
            history, [*spec.future_covariates, *spec.static_covariates], "history", series.rows
        )
        futures = self._future_tables(future, series.series_ids)
        inputs = []
        for k, (a, b) in enumerate(series.bounds):
            inputs.append(
                SeriesInput(
                    label=f"series {series.series_ids[k]!r}" if spec.series_id else "history",
                    stamps=series.timestamps[a:b],
                    values=series.values[a:b],
                    covariates={c: v[a:b] for c, v in covariates.items()},
                    future=futures[k],
                )
            )
        stamps, forecast = self.forecast(inputs)
        frames = []
        for k, future_stamps in enumerate(stamps):
            frame = spec.insert_ids(
                pd.DataFrame(spec.stamp_columns(future_stamps)), series.series_ids[k]
            )
            frame[self.columns] = forecast[k]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _future_tables(
        self, future: pd.DataFrame | None, series_ids: list
    ) -> list[tuple[np.ndarray, dict[str, np.ndarray]] | None]:
        """Each series' future rows as ``(timestamps, covariate columns)``, None without."""
        spec = self.spec
        if not spec.future_covariates:
            return [None] * len(series_ids)
        if future is None:
            raise ForecastError(
                f"the model takes future covariates {spec.future_covariates}: give the next "
                f"{spec.horizon} rows of each series with them (future=...)"
            )
        keys = [*spec.timestamp_columns, *spec.id_columns]
        columns = table_columns(future, [*keys, *spec.future_covariates], "future")
        stamps = parse_stamps(columns, spec, "future")
        out = []
        for key in series_ids:
            rows = np.ones(len(stamps), dtype=bool)
            for column, part in zip(spec.id_columns, spec.id_values(key), strict=True):
                rows &= columns[column] == part
            out.append((stamps[rows], {c: columns[c][rows] for c in spec.future_covariates}))
        return out

    def check(
        self, stamps: np.ndarray, values: np.ndarray, label: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply the training data's rules to one series: the kept rows' positions (repeated
        timestamps merged by the model's data.duplicates), their timestamps and values."""
        spec = self.spec
        checked = check_series(
            stamps,
            values,
            spec.features,
            label,
            fill_missing=spec.fill_missing,
            fill_gaps=spec.fill_gaps,
            duplicates=spec.duplicates,
            freq=spec.freq,
        )
        return checked.kept, checked.stamps, checked.values

    def forecast(self, inputs: Sequence[SeriesInput]) -> tuple[list[np.ndarray], np.ndarray]:
        """Forecasts for checked series in original units.

        Returns each series' future timestamps and the forecasts, ``(n_series, horizon,
        len(self.columns))`` in original units, from one batched forward pass.
        """
        spec = self.spec
        futures = [self.future(series.stamps[-1], series.label) for series in inputs]
        windows = [self._window(series, f) for series, f in zip(inputs, futures, strict=True)]
        x, future, static = (np.stack(parts) for parts in zip(*windows, strict=True))
        x = spec.scaler.transform(x, np.float32)
        check_finite(x, inputs, spec.features, "is too large for the model once scaled")
        x = torch.from_numpy(x)
        future, static = (torch.from_numpy(t.astype(np.float32)) for t in (future, static))
        with torch.inference_mode():
            forecast = self.net.forecast(x, future, static).flat().numpy()  # scaled
        forecast = self.output_scaler.inverse(forecast)
        if self.net.config.counts:  # >= 0 in the network; float rounding of the scaling aside
            forecast = np.maximum(forecast, 0.0)
        # Never serve or write what is not a number: say which series instead.
        check_finite(forecast, inputs, self.columns, "of the forecast is not finite")
        return futures, forecast

    def _window(
        self, series: SeriesInput, stamps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One series' model inputs: raw past values ``(lookback, n_features)``, encoded
        future covariates ``(lookback + horizon, n_future)`` and statics ``(n_static,)``."""
        spec, label, lookback = self.spec, series.label, self.spec.lookback
        if len(series.values) < lookback:
            raise ForecastError(
                f"{label} has {len(series.values)} rows, the model needs lookback={lookback}"
            )
        raw = {c: series.covariates[c][-lookback:] for c in spec.future_covariates}
        if spec.future_covariates:
            future_stamps, future = series.future
            check_future_stamps(future_stamps, stamps, label)
            raw = {c: np.concatenate([raw[c], future[c]]) for c in spec.future_covariates}
            for c in spec.future_numeric:
                raw[c] = fill_numeric(raw[c], spec.fill_missing, c, label)
        all_stamps = np.concatenate([series.stamps[-lookback:], stamps])
        encoded = spec.encode_future(raw, all_stamps, label)
        statics = {c: static_value(series.covariates[c], c, label) for c in spec.static_covariates}
        static = spec.encode_static(statics, label, 1)[0]
        return series.values[-lookback:], encoded, static

    def future(self, last: np.datetime64, label: str) -> np.ndarray:
        """The ``horizon`` timestamps after ``last`` at the model's frequency."""
        horizon = self.spec.horizon
        try:
            if isinstance(self.offset, pd.offsets.Tick):  # fixed steps: plain arithmetic
                end = int(last.astype(np.int64)) + horizon * self.offset.nanos
                if end > np.iinfo(np.int64).max:  # numpy would wrap around silently
                    raise OverflowError
                step = np.timedelta64(self.offset.nanos, "ns")
                return last + step * np.arange(1, horizon + 1)
            start = pd.Timestamp(last) + self.offset
            return pd.date_range(start, periods=horizon, freq=self.offset).to_numpy()
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            raise ForecastError(
                f"{label}: {horizon} steps after {pd.Timestamp(last)} reach past 2262-04-11, "
                "the last timestamp that can be held"
            ) from None


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
        tmp.unlink(missing_ok=True)  # no stray temp file; an existing output stays as it was
        raise ForecastError(f"cannot write {path}: {err.strerror or err}") from None
    return path


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="predict")
@exit_on_error
def main(cfg: DictConfig) -> None:
    forecaster = Forecaster.load(cfg.ckpt_path)
    future = None if cfg.future is None else read_table(cfg.future)
    future = forecaster.predict(read_table(cfg.input), future)
    path = write_table(future, cfg.output)
    log.info(
        "wrote %d rows (%s steps per series) to %s", len(future), forecaster.spec.horizon, path
    )


if __name__ == "__main__":
    main()
