"""The DataModule: reads a table, splits each series by time, scales it with training
statistics and serves its windows to Lightning."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from forecast.data.clock import season_from_freq
from forecast.data.covariates import check_numeric, covariate_columns, vocabulary
from forecast.data.options import DataOptions
from forecast.data.reading import table_columns
from forecast.data.scaling import Scaler, SeriesScaler, fitted_scaler, refuse_overflow
from forecast.data.seasonality import series_season
from forecast.data.series import Rows, SeriesFrame, prepare_series
from forecast.data.shards import Shard, read_share
from forecast.data.spec import DataSpec
from forecast.data.splits import SPLITS, derived_lookback, rows_in_test, series_segments
from forecast.data.windows import WindowDataset, batch_loader, budget
from forecast.errors import ForecastError

log = logging.getLogger(__name__)


class ForecastDataModule(pl.LightningDataModule):
    """Reads a table, splits each series by time, scales with training statistics, windows it.

    Built from the data keys (``ForecastDataModule(**options)``, as ``conf/data`` gives them),
    held as one ``DataOptions``. Validation and test windows may take their inputs from the
    last ``lookback`` rows of the split before (the standard ETT protocol), but their targets
    always lie inside the split. After ``setup``, ``spec`` is the data contract a saved model
    keeps.
    """

    def __init__(self, path: str, fitted: DataSpec | None = None, **options: Any) -> None:
        """``options`` are the other data keys; ``fitted`` is given only to score a saved
        model: its training statistics and vocabularies are reused, nothing is fitted again."""
        super().__init__()
        self.options = DataOptions(path=path, **options)
        self.fitted = fitted
        self.datasets: dict[str, WindowDataset] = {}
        self.short_series_dropped: list = []  # ids of the series left out, set by setup
        self.derived: dict[str, Any] = {}  # keys left null and the values setup chose

    @classmethod
    def from_spec(cls, spec: DataSpec, path: str | None = None) -> ForecastDataModule:
        """The data of a saved model (or ``path`` read its way), scaled with its statistics."""
        return cls(fitted=spec, **(spec.values() | {"path": path or spec.path}))

    @property
    def path(self) -> str:
        return str(self.options.path)

    def setup(self, stage: str | None = None) -> None:
        """Load, check, split and scale once; every user error surfaces here, before training."""
        if self.datasets:
            return
        options = self.options
        frame, names, self.shard = read_share(self.path, options)  # under DDP, a rank's series
        covariates = options.side_columns
        series = prepare_series(
            frame, options, source=self.path, dtype=None,  # scaled in float64
            exclude=covariates, names=names,
        )  # fmt: skip
        self.timestamps, self.bounds, self.series_ids = (
            series.timestamps, series.bounds, series.series_ids
        )  # fmt: skip
        self.tests = rows_in_test(series.timestamps, self.bounds, options, series.timezone)
        self.options = options = self._derived(series)
        self.segments, self.kept_series = series_segments(
            self.bounds, options, self.season, self._name, self.shard.part_of(self.path), self.tests
        )
        kept = set(self.kept_series)
        dropped = [i for k, i in enumerate(self.series_ids) if k not in kept]
        self.short_series_dropped = self.shard.interleaved(self.shard.gathered(dropped))
        self._changes = summed_changes(series, self.shard)
        self.covariates = raw = covariate_columns(
            table_columns(frame, covariates, self.path, series.rows), options, self.bounds,
            self._name,
        )  # fmt: skip
        self.spec = self.fitted or self._fit(series, raw)
        self.spec.stamp_columns(series.timestamps[:1])  # forecasts can write the timestamps
        self.scalers = self._scalers(series.values)  # this rank's series
        # scaled into the float32 table the windows view (in place where it is float32)
        by_series = self.spec.series_scaler is not None
        values = self.scalers.transform(series.values, self.bounds, by_series)
        self.truth = scored_targets(values, series.imputed, self.spec.target_index)
        rows = series.rows
        del series, frame
        pa.default_memory_pool().release_unused()  # the file's columns Arrow decoded
        self._tables(values, raw, rows)
        self.datasets = {
            split: self.windows(self.segments[split], self.kept_series, split != "train")
            for split in SPLITS
        }
        self.draws, self.stride, chosen = budget(self.datasets, options, self.shard)
        self.derived |= chosen

    def _tables(self, values: np.ndarray, raw: dict[str, np.ndarray], rows: Rows) -> None:
        """The tensors the windows view: ``values`` scaled, the covariates encoded."""
        spec = self.spec
        self.values = torch.from_numpy(values)  # (n_rows, n_features), scaled
        future = spec.encode_future(raw, self.timestamps, self.path, rows)
        self.future = torch.from_numpy(future)  # (n_rows, n_future), float32
        statics = {c: raw[c][[a for a, _ in self.bounds]] for c in spec.static_covariates}
        static = spec.encode_static(statics, self.path, len(self.bounds))
        self.static = torch.from_numpy(static.astype(np.float32))  # (n_series, n_static)
        for table, columns in ((self.values, spec.features),
                               (self.future, spec.future_columns),
                               (self.static, spec.static_columns)):  # fmt: skip
            refuse_overflow(table, columns, self.path)

    def _derived(self, series: SeriesFrame) -> DataOptions:
        """The options with the keys left null derived from the series (the season, the
        lookback, the scaling), each recorded in ``derived`` to be reported and logged."""
        options = self.options
        # each rank's season (detected from its rows), lengths and test rows; rank 0's season
        lengths = [end - start for start, end in self.bounds]
        every = self.shard.gathered((series_season(series, options, self.tests), lengths,
                                     self.tests))  # fmt: skip
        self.season = every[0][0]
        lengths = [n for _, each, _ in every for n in each]
        tests = None if self.tests is None else [t for *_, each in every for t in each]
        if self.season > 1 and season_from_freq(series.freq) == 1:
            self.derived["season"] = self.season
        if options.lookback is None:  # data.lookback=null: derived from the series
            lookback = derived_lookback(lengths, options, self.season, tests)
            options = replace(options, lookback=lookback)
            self.derived["data.lookback"] = lookback
        if options.scaling is None:  # data.scaling=null: per series wherever there are several
            several = len(lengths) > 1
            options = replace(options, scaling="series" if several else "column")
            if several:
                self.derived["data.scaling"] = options.scaling
        return options

    def merge_validation(self) -> None:
        """Training windows over each series' training and validation rows together
        (``refit=true``); the test split, and every statistic, stay as they were."""
        merged = [
            (start, end)
            for (start, _), (_, end) in zip(
                self.segments["train"], self.segments["val"], strict=True
            )
        ]
        self.segments["train"] = merged
        self.datasets["train"] = self.windows(merged, self.kept_series)

    def changes(self) -> list[tuple[str, int, str]]:
        """What each data option changed in the file, after setup (DataOptions.changes)."""
        return self.options.changes(*self._changes, self.short_series_dropped)

    def windows(
        self, segments: list[tuple[int, int]], series: Sequence[int], scored: bool = False
    ) -> WindowDataset:
        """The windows inside row ``segments``, the ``k``-th of series ``series[k]``. Scored
        windows (validation, test) have NaN targets where data.fill_gaps or data.fill_missing
        made the value up: a filled value is never taken for truth; training learns from it."""
        spec = self.spec
        return WindowDataset(
            self.values, segments, spec.lookback, spec.horizon, spec.target_index,
            self.future, self.static, series, self.truth if scored else None, self.shard,
        )  # fmt: skip

    def _train_rows(self) -> list[tuple[int, int] | None]:
        """Each series' training rows, None for a series left out."""
        train = dict(zip(self.kept_series, self.segments["train"], strict=True))
        return [train.get(k) for k in range(len(self.bounds))]

    def _scalers(self, values: np.ndarray) -> SeriesScaler:
        """The statistics of each series of the file, in its order (the columns' for every
        series with data.scaling=column): what scores and plots take back to the data's
        units. A saved model scales the series it knows by their training statistics, the
        others by their own training rows here."""
        spec = self.spec
        if spec.series_scaler is None:
            return SeriesScaler.stack(self.series_ids, [spec.scaler] * len(self.series_ids))
        if self.fitted is None:
            return self._own_scaler
        own = [
            spec.scaler_for(key, values[slice(*(rows or bounds))])
            for key, rows, bounds in zip(
                self.series_ids, self._train_rows(), self.bounds, strict=True
            )
        ]
        return SeriesScaler.stack(self.series_ids, own)

    def _name(self, k: int) -> str:
        """How messages name series ``k``."""
        return f"series {self.series_ids[k]!r}" if self.options.series_id else self.path

    def _fit(self, series: SeriesFrame, raw: dict[str, np.ndarray]) -> DataSpec:
        """The data contract: the options resolved against the file, every statistic and
        vocabulary from training rows only."""
        options, where = self.options, self.path
        named = options.features or []
        unknown = [c for c in options.past_categorical if named and c not in named]
        if unknown:
            raise ForecastError(
                f"data.categorical: {unknown} are not among data.features, "
                "data.future_covariates or data.static_covariates"
            )
        # each series' training rows, as views: a concatenated copy would be the table's size
        train = [series.values[a:b] for a, b in self.segments["train"]]
        shard = self.shard
        constant = constant_columns(train, series.features, shard)
        if constant:  # kept (centred, unscaled), but they can teach the model nothing
            log.warning("%s: column(s) %s are constant over the training rows", where, constant)
        firsts = [a for a, _ in self.bounds]

        def rows_of(column: str) -> list[np.ndarray]:  # a static's values, else train rows
            if column in options.static_covariates:
                return [raw[column][firsts]]
            return [raw[column][a:b] for a, b in self.segments["train"]]

        categories = {c: vocabulary(np.concatenate(rows_of(c)), shard) for c in options.categorical}
        future = [c for c in options.future_covariates if c not in categories]
        static = [c for c in options.static_covariates if c not in categories]
        for column in future:
            check_numeric(raw[column], column, where, series.rows)
        scaler = Scaler.fit(train, shard=shard)
        self._own_scaler = SeriesScaler.fit(
            series.values, self._train_rows(), self.series_ids, scaler
        ) if options.scaling == "series" else None  # fmt: skip
        return DataSpec(
            **replace(
                options, path=str(Path(where).resolve()), features=list(series.features),
                targets=options.targets or list(series.features), freq=series.freq,
                timezone=series.timezone,
            ).values(),
            scaler=scaler,
            series_scaler=self._own_scaler and self._own_scaler.every_rank(shard),
            categories=categories,
            future_scaler=fitted_scaler([rows_of(c) for c in future], shard),
            static_scaler=fitted_scaler(
                [[check_numeric(rows_of(c)[0], c, where)] for c in static], shard
            ),
            integer_time=series.integer_time,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return batch_loader(
            self.datasets["train"], self.options.batch_size, shuffle=True, draws=self.draws
        )

    def val_dataloader(self) -> DataLoader:
        return batch_loader(
            self.datasets["val"], self.options.batch_size, shuffle=False, stride=self.stride
        )

    def test_dataloader(self) -> DataLoader:
        return batch_loader(
            self.datasets["test"], self.options.batch_size, shuffle=False, stride=self.stride
        )


def scored_targets(
    values: np.ndarray, imputed: np.ndarray | None, target_index: list[int]
) -> torch.Tensor | None:
    """``(n_rows, n_targets)``: the scaled targets, NaN where a rule made the value up; None
    when every target value is the file's own (then the windows score ``values`` directly)."""
    if imputed is None or not imputed[:, target_index].any():
        return None
    targets = values[:, target_index]  # a copy: fancy indexing
    targets[imputed[:, target_index]] = np.nan
    return torch.from_numpy(targets)


def constant_columns(train: list[np.ndarray], features: list[str], shard: Shard) -> list[str]:
    """The columns whose training rows (each series' a part) hold one value, on every rank."""
    high = np.max([part.max(0) for part in train], 0).astype(np.float64)
    low = np.min([part.min(0) for part in train], 0).astype(np.float64)
    spread = (
        shard.extreme(torch.from_numpy(high), largest=True)
        - shard.extreme(torch.from_numpy(low), largest=False)
    ).numpy()
    return [column for column, width in zip(features, spread, strict=True) if width == 0]


def summed_changes(series: SeriesFrame, shard: Shard) -> tuple[int, int, int]:
    """The rows merged and inserted and the values filled by the data's rules, on every rank."""
    counts = torch.tensor([series.merged, series.inserted, series.filled], dtype=torch.float64)
    merged, inserted, filled = (int(c) for c in shard.summed(counts)[0])
    return merged, inserted, filled
