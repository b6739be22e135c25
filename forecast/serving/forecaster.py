"""``Forecaster``: forecasts from a saved model file alone, no config and no training data.

forecaster = Forecaster.load("logs/runs/<run>/model.pt")  # or "runs:/<mlflow run id>"
future = forecaster.predict(history_df)  # original units, future timestamps
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from forecast.data.clock import steps_after
from forecast.data.covariates import static_value
from forecast.data.reading import table_columns
from forecast.data.rules import check_series, fill_numeric
from forecast.data.scaling import SeriesScaler
from forecast.data.series import SeriesInput, prepare_series
from forecast.data.spec import DataSpec
from forecast.data.timestamps import utc_stamps
from forecast.errors import ForecastError
from forecast.model.config import quantile_levels
from forecast.serving.checkpoint import load_checkpoint
from forecast.serving.checks import check_finite, check_future_stamps, future_rows, served


class Forecaster:
    """A trained network (an ``LSTMNet`` or an ``Ensemble``) plus the data contract it was
    trained with."""

    def __init__(self, net: nn.Module, spec: DataSpec) -> None:
        self.net = net.eval()
        self.spec = spec
        self.quantiles: list[float] = list(net.config.quantiles)  # forecast unless others asked
        self.columns = self.columns_for(self.quantiles)
        self.offset = pd.tseries.frequencies.to_offset(spec.freq)

    def columns_for(self, levels: Sequence[float]) -> list[str]:
        """Point forecasts first, then each target's quantiles: OT, ..., OT_q0.1, OT_q0.9
        (``Forecast.flat``'s layout)."""
        targets = self.spec.targets
        return targets + [f"{t}_q{q:g}" for t in targets for q in levels]

    def levels(self, quantiles: Sequence[float] | None) -> list[float]:
        """The levels asked for (None: the model's own), checked."""
        if quantiles is None:
            return self.quantiles
        return list(quantile_levels(quantiles, "quantiles"))

    @classmethod
    def load(cls, uri: str | Path) -> Forecaster:
        """From a ``model.pt`` path or ``runs:/<run_id>``; the file is opened with weights_only."""
        return cls(*load_checkpoint(uri))

    def predict(
        self,
        history: pd.DataFrame,
        future: pd.DataFrame | None = None,
        quantiles: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the end of each series in ``history``.

        ``history`` has the training columns (extra columns are ignored); the last
        ``lookback`` rows of each series are used. A model with future covariates needs
        ``future``: for each series, its next ``horizon`` timestamps with those columns.
        All series go through one forward pass. Returns one row per series and future step:
        [series id,] timestamp, targets, then ``<target>_q<level>`` columns at ``quantiles``
        (None: the model's; a distribution model gives any, a quantile head those it learned).
        """
        levels = self.levels(quantiles)
        inputs, ids = self._inputs(history, future)
        stamps, forecast = self.forecast(inputs, levels)
        # one table for every series at once: a frame per series cost 30 times the forward
        frame = pd.DataFrame(self.spec.stamp_columns(np.concatenate(stamps)))
        self.spec.insert_ids(frame, ids, self.spec.horizon)
        columns = self.columns_for(levels)
        frame[columns] = forecast.reshape(-1, len(columns))
        return frame

    def sample(
        self,
        history: pd.DataFrame,
        future: pd.DataFrame | None = None,
        samples: int = 100,
        seed: int = 0,
    ) -> pd.DataFrame:
        """``samples`` sample paths of each series' next ``horizon`` steps from a model with a
        distribution, the same for the same ``seed``: one row per series, path and step,
        [series id,] ``sample``, timestamp and the targets, in the data's units (counts of a
        negative binomial whole numbers)."""
        inputs, ids = self._inputs(history, future)
        stamps, paths = self.paths(inputs, samples, seed)  # (n_series, samples, horizon, T)
        spec, horizon = self.spec, self.spec.horizon
        every = np.concatenate([np.tile(s, samples) for s in stamps])
        frame = pd.DataFrame(spec.stamp_columns(every))
        frame.insert(0, "sample", np.tile(np.repeat(np.arange(samples), horizon), len(stamps)))
        spec.insert_ids(frame, ids, horizon * samples)
        frame[spec.targets] = paths.reshape(-1, spec.n_targets)
        return frame

    def _inputs(
        self, history: pd.DataFrame, future: pd.DataFrame | None
    ) -> tuple[list[SeriesInput], list]:
        """``history``'s series (and their ``future`` rows) as model inputs, and their ids."""
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
        return inputs, series.series_ids

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

    def forecast(
        self, inputs: Sequence[SeriesInput], levels: Sequence[float] | None = None
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Forecasts for checked series in original units, quantiles at ``levels`` (None:
        the model's).

        Returns each series' future timestamps and the forecasts, ``(n_series, horizon,
        len(self.columns_for(levels)))`` in original units, from one batched forward pass.
        """
        levels = self.quantiles if levels is None else levels
        futures, (x, future, static), (mean, std) = self._scaled(inputs)
        with torch.inference_mode():
            forecast = self.net.forecast(x, future, static, levels).flat().numpy()  # scaled
        # The feature behind each column: the targets', then each target's once per level
        targets = self.spec.target_index
        columns = targets + [t for t in targets for _ in levels]
        forecast = forecast * std[:, None, columns] + mean[:, None, columns]
        return futures, served(
            forecast, inputs, self.columns_for(levels), self.net.config, len(targets)
        )

    def paths(
        self, inputs: Sequence[SeriesInput], samples: int, seed: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Each checked series' future timestamps and ``samples`` sample paths, ``(n_series,
        samples, horizon, n_targets)`` in original units."""
        if self.net.config.distribution is None:
            raise ForecastError(
                "samples come from a distribution: the model was trained without one "
                "(model.distribution)"
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 10_000:
            raise ForecastError(f"samples={samples!r} must be an integer in [1, 10000]")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ForecastError(f"seed={seed!r} must be an integer >= 0")
        futures, (x, future, static), (mean, std) = self._scaled(inputs)
        with torch.inference_mode():
            paths = self.net.sample(x, samples, seed, future, static).numpy()  # scaled
        targets = self.spec.target_index
        paths = paths.transpose(1, 0, 2, 3) * std[:, None, None, targets]
        paths = paths + mean[:, None, None, targets]  # (n_series, samples, horizon, targets)
        flat = paths.reshape(len(inputs), -1, len(targets))
        return futures, served(flat, inputs, self.spec.targets, self.net.config, 0).reshape(
            paths.shape
        )

    def _scaled(
        self, inputs: Sequence[SeriesInput]
    ) -> tuple[list[np.ndarray], tuple[torch.Tensor, ...], tuple[np.ndarray, np.ndarray]]:
        """The series' future timestamps, their scaled model inputs ``x, future, static``
        and their scalers' ``mean, std (n_series, n_features)``."""
        spec = self.spec
        futures = [
            steps_after(series.stamps[-1], self.offset, spec.horizon, spec.timezone, series.label)
            for series in inputs
        ]
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
        return futures, tuple(torch.from_numpy(t) for t in (x, future, static)), (mean, std)

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
