"""The DataModule: reads a table, splits each series by time, scales it with training
statistics and serves its windows to Lightning."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from forecast.data.chunks import TableChunks, series_name
from forecast.data.clock import season_from_freq
from forecast.data.fitting import fit_spec, own_scalers
from forecast.data.layout import Layout
from forecast.data.options import DataOptions
from forecast.data.parquet import Unstreamable
from forecast.data.scaling import SeriesScaler, refuse_overflow
from forecast.data.shards import Shard
from forecast.data.spec import DataSpec
from forecast.data.splits import SPLITS, derived_lookback, series_segments
from forecast.data.windows import WindowDataset, batch_loader, budget

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
        """Load, check, split and scale once; every user error surfaces here, before training.
        The table is read a chunk of whole series at a time where it can be (``TableChunks``):
        its layout, then the training statistics, then the scaled arrays."""
        if self.datasets:
            return
        chunks = TableChunks(self.path, self.options)
        try:
            layout = Layout.scan(chunks, self.options, self.path)
        except Unstreamable:  # series interleave in the file, say: one chunk of all of it
            chunks.read_whole()
            layout = Layout.scan(chunks, self.options, self.path)
        self.shard = chunks.shard  # under DDP, a rank's series
        self.timestamps, self.bounds, self.series_ids = (
            layout.clock, layout.bounds, layout.series_ids
        )  # fmt: skip
        self.tests = layout.tests
        self.options = options = self._derived(layout)
        self.segments, self.kept_series = series_segments(
            self.bounds, options, self.season, self._name, self.shard.part_of(self.path), self.tests
        )
        kept = set(self.kept_series)
        dropped = [i for k, i in enumerate(self.series_ids) if k not in kept]
        self.short_series_dropped = self.shard.interleaved(self.shard.gathered(dropped))
        self._changes = summed_changes(layout.changes, self.shard)
        train = self._train_rows()
        own = None
        if self.fitted is None:
            self.spec, own = fit_spec(chunks, layout, train, options, self.path, self.shard)
        else:
            self.spec = self.fitted
        self.spec.stamp_columns(self.timestamps[:1])  # forecasts can write the timestamps
        self.scalers = own or self._scalers(chunks, layout, train)  # this rank's series
        self._tables(chunks, layout)
        chunks.release()
        pa.default_memory_pool().release_unused()  # the file's columns Arrow decoded
        self.datasets = {
            split: self.windows(self.segments[split], self.kept_series, split != "train")
            for split in SPLITS
        }
        self.draws, self.stride, chosen = budget(self.datasets, options, self.shard)
        self.derived |= chosen

    def _tables(self, chunks: TableChunks, layout: Layout) -> None:
        """The tensors the windows view, filled a chunk at a time: the features scaled, the
        scored targets (where a rule made values up), the covariates encoded. A table read
        whole is scaled in place where it is float32 already."""
        spec, rows = self.spec, layout.rows
        by_series = spec.series_scaler is not None
        values = None if not chunks.streamed else np.empty((rows, spec.n_features), np.float32)
        future = np.empty((rows, len(spec.future_columns)), np.float32)
        truth = np.empty((rows, spec.n_targets), np.float32) if layout.imputed_targets else None
        statics: dict[str, list] = {c: [] for c in spec.static_covariates}
        start, end = self.bounds[0]  # the rows the model's input example shows
        example = (max(start, end - spec.lookback - spec.horizon), end)
        last: dict[str, list] = {c: [] for c in spec.side_columns}
        for chunk in chunks:
            series, raw = chunk.series, chunk.raw
            at = slice(chunk.first, chunk.first + len(series.values))
            ks = slice(chunk.first_series, chunk.first_series + len(series.bounds))
            out = None if values is None else values[at]
            scaled = self.scalers.part(ks).transform(series.values, series.bounds, by_series, out)
            values = scaled if values is None else values  # the table read whole, scaled
            if truth is not None:
                scored_targets(scaled, series.imputed, spec.target_index, truth[at])
            spec.encode_future(raw, series.timestamps, self.path, chunk.rows, future[at])
            for column, each in statics.items():  # of each series starting in the chunk
                each.append(raw[column][[a for a, _ in series.bounds][chunk.continues :]])
            a, b = (max(row - chunk.first, 0) for row in example)
            for column, each in last.items():  # a copy: a view would keep the chunk alive
                each.append(raw[column][a : min(b, len(series.values))].copy())
        self.last_covariates = {c: np.concatenate(each) for c, each in last.items()}
        self.values = torch.from_numpy(values)  # (n_rows, n_features), scaled
        self.truth = None if truth is None else torch.from_numpy(truth)  # (n_rows, n_targets)
        self.future = torch.from_numpy(future)  # (n_rows, n_future), float32
        statics = {c: np.concatenate(each) for c, each in statics.items()}
        static = spec.encode_static(statics, self.path, len(self.bounds))
        self.static = torch.from_numpy(static.astype(np.float32))  # (n_series, n_static)
        for table, columns in ((self.values, spec.features),
                               (self.future, spec.future_columns),
                               (self.static, spec.static_columns)):  # fmt: skip
            refuse_overflow(table, columns, self.path)

    def _derived(self, layout: Layout) -> DataOptions:
        """The options with the keys left null derived from the series (the season, the
        lookback, the scaling), each recorded in ``derived`` to be reported and logged."""
        options = self.options
        # each rank's season (detected from its rows), lengths and test rows; rank 0's season
        lengths = [end - start for start, end in self.bounds]
        season = season_from_freq(layout.freq)
        detected = layout.season.season() if season == 1 and layout.integer_time else season
        every = self.shard.gathered((detected, lengths, self.tests))
        self.season = every[0][0]
        lengths = [n for _, each, _ in every for n in each]
        tests = None if self.tests is None else [t for *_, each in every for t in each]
        if self.season > 1 and season == 1:
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

    def _scalers(
        self, chunks: TableChunks, layout: Layout, train: list[tuple[int, int] | None]
    ) -> SeriesScaler:
        """The statistics of each series of the file a saved model scores, in its order (the
        columns' for every series with data.scaling=column): what scores and plots take back
        to the data's units."""
        spec = self.spec
        if spec.series_scaler is None:
            return SeriesScaler.stack(self.series_ids, [spec.scaler] * len(self.series_ids))
        return own_scalers(chunks, spec, train, layout)

    def _name(self, k: int) -> str:
        """How messages name series ``k``."""
        return series_name(self.series_ids[k], self.options, self.path)

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
    values: np.ndarray, imputed: np.ndarray | None, target_index: list[int], out: np.ndarray
) -> None:
    """Into ``out (n_rows, n_targets)``: the scaled targets, NaN where a rule made the value
    up (what scoring skips)."""
    out[:] = values[:, target_index]
    if imputed is not None:
        out[imputed[:, target_index]] = np.nan


def summed_changes(changes: list[int], shard: Shard) -> tuple[int, int, int]:
    """The rows merged and inserted and the values filled by the data's rules, on every rank."""
    counts = torch.tensor(changes, dtype=torch.float64)
    merged, inserted, filled = (int(c) for c in shard.summed(counts)[0])
    return merged, inserted, filled
