"""``Forecaster``: forecasts from a saved model file alone, no config and no training data.

forecaster = Forecaster.load("logs/runs/<run>/model.pt")  # or "runs:/<mlflow run id>"
future = forecaster.predict(history_df)  # original units, future timestamps
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from forecast.data.clock import local_index
from forecast.data.covariates import static_value
from forecast.data.reading import table_columns
from forecast.data.rules import check_series, fill_numeric
from forecast.data.scaling import SeriesScaler
from forecast.data.series import SeriesInput, prepare_series
from forecast.data.spec import DataSpec
from forecast.data.timestamps import utc_stamps
from forecast.errors import ForecastError
from forecast.serving.checkpoint import load_checkpoint


def check_future_stamps(
    given: np.ndarray, expected: np.ndarray, label: str, timezone: str | None = None
) -> None:
    """The future rows must be exactly the next ``horizon`` steps, in order. In a zone, the
    same local wall times are the same steps: a naive ``02:00`` is read as the first of the
    two a daylight-saving change repeats, yet after a history ending at that one, the
    future's ``02:00`` can only mean the second. Messages show the zone's local time."""
    shown = local_index(np.concatenate([given, expected]), timezone)
    given_at, expected_at = shown[: len(given)], shown[len(given) :]
    walls = given_at.tz_localize(None), expected_at.tz_localize(None)
    if timezone is not None and len(given) == len(expected) and (walls[0] == walls[1]).all():
        return
    if len(given) != len(expected):
        raise ForecastError(
            f"{label}: the future covariates have {len(given)} rows, the model needs the next "
            f"{len(expected)} steps ({expected_at[0]} to {expected_at[-1]})"
        )
    wrong = np.flatnonzero(given != expected)
    if wrong.size:
        k = int(wrong[0])
        raise ForecastError(
            f"{label}: future row {k} is at {given_at[k]}, expected {expected_at[k]} (the next "
            f"{len(expected)} steps after the history)"
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


def future_rows(
    columns: dict[str, np.ndarray], id_columns: list[str], n_rows: int
) -> dict[Any, np.ndarray]:
    """The future table's rows of each series id (a tuple for several id columns), found in
    one grouping pass: matching each series against every row took quadratic time."""
    if not id_columns:
        return {"": np.arange(n_rows)}
    ids = pd.DataFrame({c: columns[c] for c in id_columns})
    return ids.groupby(id_columns[0] if len(id_columns) == 1 else id_columns, sort=False).indices


class Forecaster:
    """A trained network (an ``LSTMNet`` or an ``Ensemble``) plus the data contract it was
    trained with."""

    def __init__(self, net: nn.Module, spec: DataSpec) -> None:
        self.net = net.eval()
        self.spec = spec
        self.quantiles: list[float] = list(net.config.quantiles)
        # Point forecasts first, then each target's quantiles: OT, ..., OT_q0.1, OT_q0.9
        self.columns = spec.targets + [f"{t}_q{q:g}" for t in spec.targets for q in self.quantiles]
        # The feature behind each of those columns, in that order (Forecast.flat's layout).
        targets = spec.target_index
        self.output_features = targets + [t for t in targets for _ in self.quantiles]
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
        series = prepare_series(history, spec, source="history")
        covariates = table_columns(history, spec.side_columns, "history", series.rows)
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
                    key=series.series_ids[k],
                )
            )
        stamps, forecast = self.forecast(inputs)
        # one table for every series at once: a frame per series cost 30 times the forward
        frame = pd.DataFrame(spec.stamp_columns(np.concatenate(stamps)))
        spec.insert_ids(frame, series.series_ids, spec.horizon)
        frame[self.columns] = forecast.reshape(-1, len(self.columns))
        return frame

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
        stamps, _ = utc_stamps(
            pd.DataFrame(columns), spec.timestamp_columns, spec.timestamp_format, spec.timezone,
            "future",
        )  # fmt: skip
        rows_of = future_rows(columns, spec.id_columns, len(stamps))
        out = []
        for key in series_ids:
            rows = rows_of.get(key, np.zeros(0, dtype=np.int64))
            out.append((stamps[rows], {c: columns[c][rows] for c in spec.future_covariates}))
        return out

    def checked(self, series: SeriesInput) -> SeriesInput:
        """``series`` under the training data's rules (repeated timestamps merged by the
        model's data.duplicates, and so on), its covariates kept on the rows kept."""
        checked = check_series(series.stamps, series.values, self.spec.features, series.label,
                               self.spec)  # fmt: skip
        covariates = {name: column[checked.kept] for name, column in series.covariates.items()}
        return SeriesInput(
            series.label, checked.stamps, checked.values, covariates, series.future, series.key
        )

    def forecast(self, inputs: Sequence[SeriesInput]) -> tuple[list[np.ndarray], np.ndarray]:
        """Forecasts for checked series in original units.

        Returns each series' future timestamps and the forecasts, ``(n_series, horizon,
        len(self.columns))`` in original units, from one batched forward pass.
        """
        spec = self.spec
        futures = [self.future(series.stamps[-1], series.label) for series in inputs]
        windows = [self._window(series, f) for series, f in zip(inputs, futures, strict=True)]
        x, future, static = (np.stack(parts) for parts in zip(*windows, strict=True))
        stats = SeriesScaler.stack(
            [s.key for s in inputs], [spec.scaler_for(s.key, s.values) for s in inputs]
        )
        mean, std = stats.mean, stats.std  # (n_series, n_features)
        x = ((x - mean[:, None]) / std[:, None]).astype(np.float32)  # (n_series, lookback, F)
        future, static = future.astype(np.float32), static.astype(np.float32)
        too_large = "is too large for the model once scaled"
        check_finite(x, inputs, spec.features, too_large)
        check_finite(future, inputs, spec.future_columns, too_large)
        check_finite(static[:, None], inputs, spec.static_columns, too_large)
        x, future, static = (torch.from_numpy(t) for t in (x, future, static))
        with torch.inference_mode():
            forecast = self.net.forecast(x, future, static).flat().numpy()  # scaled
        columns = self.output_features
        forecast = forecast * std[:, None, columns] + mean[:, None, columns]
        if self.net.config.floored:  # >= 0 in the network; float rounding of the scaling aside
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
            check_future_stamps(future_stamps, stamps, label, spec.timezone)
            raw = {c: np.concatenate([raw[c], future[c]]) for c in spec.future_covariates}
            for c in spec.future_numeric:
                raw[c] = fill_numeric(raw[c], spec.fill_missing, c, label)
        for c in spec.past_categorical:  # not known past the lookback: the model hides it
            seen = series.covariates[c][-lookback:]
            raw[c] = np.concatenate([seen, np.full(len(stamps), spec.categories[c][0], object)])
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
            zone = self.spec.timezone  # calendar steps are steps of the zone's wall time
            start = pd.Timestamp(last, tz="UTC").tz_convert(zone) if zone else pd.Timestamp(last)
            steps = pd.date_range(start + self.offset, periods=horizon, freq=self.offset)
            return (steps.tz_convert(None) if zone else steps).to_numpy("datetime64[ns]")
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            raise ForecastError(
                f"{label}: {horizon} steps after {pd.Timestamp(last)} reach past 2262-04-11, "
                "the last timestamp that can be held"
            ) from None
