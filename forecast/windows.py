"""Sliding windows as index arithmetic over one array, and the DataModule that serves them.

A window starting at row ``s`` is input rows ``[s, s + lookback)`` and target rows
``[s + lookback, s + lookback + horizon)``. ``Tensor.unfold`` exposes every such window as a
view of the scaled array, so the dataset holds O(rows) memory, never O(rows x lookback); a
batch is gathered from that view in one indexing operation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch import distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from forecast.covariates import check_numeric, fill_numeric, static_value, vocabulary
from forecast.data import (
    SHORT_SERIES_RULES,
    Scaler,
    SeriesFrame,
    as_list,
    file_rows,
    prepare_series,
    read_table,
    season_from_freq,
    split_borders,
    table_columns,
)
from forecast.errors import ForecastError
from forecast.spec import DataSpec

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
# Marks the future covariates' rows in a table that holds a history too (the MLflow model's input).
FUTURE_FLAG = "is_future"
# Timestamps as example inputs write them: with the UTC offset, if they have a zone.
STAMP_TEXT = "%Y-%m-%d %H:%M:%S%z"


class Batch(NamedTuple):
    """Windows of the data: what a model reads and what it must forecast. Without
    covariates, ``future`` and ``static`` have a last axis of 0."""

    x: torch.Tensor  # (batch, lookback, n_features): past inputs, scaled
    y: torch.Tensor  # (batch, horizon, n_targets)
    future: torch.Tensor  # (batch, lookback + horizon, n_future): known in advance
    static: torch.Tensor  # (batch, n_static)


class WindowDataset(Dataset):
    """Windows inside row segments of ``values``; no window crosses a segment's end.

    ``values`` is ``(n_rows, n_features)`` and ``future`` ``(n_rows, n_future)``, row for row;
    ``segments`` are ``(start, end)`` row ranges, one per series and split, and ``series``
    the row of ``static (n_series, n_static)`` of each (segment ``k`` is series ``k`` by
    default). Indexing with an int gives one window, unbatched; with a 1-D tensor of indices
    a ``Batch`` of them, gathered from views in one operation per array.
    """

    def __init__(
        self,
        values: torch.Tensor,
        segments: Sequence[tuple[int, int]],
        lookback: int,
        horizon: int,
        target_index: Sequence[int],
        future: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
        series: Sequence[int] | None = None,
    ) -> None:
        self.lookback, self.horizon = lookback, horizon
        self.target_index = torch.as_tensor(list(target_index))
        # (n_rows - lookback - horizon + 1, lookback + horizon, n_features), a view
        self.windows = values.unfold(0, lookback + horizon, 1).transpose(1, 2)
        future = values.new_zeros(len(values), 0) if future is None else future
        self.future_windows = future.unfold(0, lookback + horizon, 1).transpose(1, 2)
        counts = [window_count(end - start, lookback, horizon) for start, end in segments]
        if min(counts, default=0) < 1:
            raise ValueError(f"every segment needs lookback + horizon rows; window counts {counts}")
        self.first_row = torch.as_tensor([start for start, _ in segments])
        self.ends = torch.as_tensor(np.cumsum(counts))  # window index where each segment ends
        self.series = torch.as_tensor(range(len(segments)) if series is None else list(series))
        n_series = int(self.series.max()) + 1
        self.static = values.new_zeros(n_series, 0) if static is None else static

    def __len__(self) -> int:
        return int(self.ends[-1])

    def _locate(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment of each window and its offset inside that segment."""
        segment = torch.searchsorted(self.ends, index, right=True)
        before = torch.where(segment > 0, self.ends[segment - 1], 0)
        return segment, index - before

    def starts(self, index: torch.Tensor) -> torch.Tensor:
        """First row of each window: segment start plus offset inside the segment."""
        segment, offset = self._locate(index)
        return self.first_row[segment] + offset

    def strided(self, stride: int) -> torch.Tensor:
        """Indices of every ``stride``-th window of each segment, counting from its first."""
        if stride < 1:
            raise ForecastError(f"stride must be >= 1, got {stride}")
        index = torch.arange(len(self))
        return index[self._locate(index)[1] % stride == 0]

    def __getitem__(self, index: int | torch.Tensor) -> Batch:
        index = torch.as_tensor(index)
        if index.ndim == 0 and not -len(self) <= int(index) < len(self):
            raise IndexError(f"window {int(index)} out of range for {len(self)} windows")
        segment, offset = self._locate(index % len(self))
        start = self.first_row[segment] + offset
        window = self.windows[start]
        return Batch(
            x=window[..., : self.lookback, :],
            y=window[..., self.lookback :, self.target_index],
            future=self.future_windows[start],
            static=self.static[self.series[segment]],
        )


def window_count(n_rows: int, lookback: int, horizon: int) -> int:
    return max(0, n_rows - lookback - horizon + 1)


def split_ranges(
    n_rows: int, ratios: Sequence[float] | None, borders: Sequence[int] | None, lookback: int
) -> dict[str, tuple[int, int]]:
    """Each split's rows in a series of ``n_rows``, counted from its first: validation and
    test windows take their inputs from the ``lookback`` rows before their split, never from
    before the series (nor from the series before it)."""
    train_end, val_end, test_end = split_borders(n_rows, ratios, borders)
    return {
        "train": (0, train_end),
        "val": (max(0, train_end - lookback), val_end),
        "test": (max(0, val_end - lookback), test_end),
    }


def fitting_window(
    n_rows: int,
    ratios: Sequence[float] | None,
    borders: Sequence[int] | None,
    lookback: int,
    horizon: int,
    season: int = 1,
) -> tuple[int, int] | None:
    """The largest lookback and horizon, at most the given ones, for which every split of a
    series of ``n_rows`` rows holds a window: the horizon fits the validation and test rows
    (their windows borrow the lookback from the split before), lookback plus horizon the
    training rows; the lookback a whole number of seasons where it holds one. None when not
    even a lookback and horizon of 1 fit."""
    try:
        train_end, val_end, test_end = split_borders(n_rows, ratios, borders)
    except ForecastError:
        return None
    horizon = min(horizon, val_end - train_end, test_end - val_end)
    lookback = min(lookback, train_end - horizon)
    if horizon < 1 or lookback < 1:
        return None
    if season > 1 and lookback >= season:
        lookback -= lookback % season
    return lookback, horizon


class ShardedBatches(Sampler[torch.Tensor]):
    """Index batches, split across DDP ranks.

    Training: rank ``r`` of ``w`` takes shuffled batches ``r, r + w, ...``, all ranks the same
    number (gradient all-reduce needs it), dropping at most ``w - 1`` batches of an epoch; the
    shuffle is seeded by seed and epoch, so ranks agree on it. Evaluation: rank ``r`` takes
    the ``r``-th of ``w`` contiguous slices of the windows, so every window is scored exactly
    once (no padding, unlike DistributedSampler: distributed test scores are exact) and
    every rank has at least one batch.
    """

    def __init__(self, n_windows: int, batch_size: int, shuffle: bool) -> None:
        self.n_windows, self.batch_size, self.shuffle = n_windows, batch_size, shuffle
        self.seed, self.epoch = torch.initial_seed(), 0
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if distributed else 0
        self.world = dist.get_world_size() if distributed else 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[torch.Tensor]:
        if not self.shuffle:
            start, end = (self.n_windows * k // self.world for k in (self.rank, self.rank + 1))
            return list(torch.arange(start, end).split(self.batch_size))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        batches = list(torch.randperm(self.n_windows, generator=generator).split(self.batch_size))
        return batches[self.rank :: self.world][: len(batches) // self.world]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def batch_loader(dataset: WindowDataset, batch_size: int, shuffle: bool) -> DataLoader:
    """Hand whole index batches to the dataset so a batch is one gather, not ``batch`` copies.

    Every window is used: the last, smaller batch is kept (dropping it skews test scores).
    """
    batches = ShardedBatches(len(dataset), batch_size, shuffle)
    return DataLoader(dataset, sampler=batches, batch_size=None)


class ForecastDataModule(pl.LightningDataModule):
    """Reads a table, splits each series by time, scales with training statistics, windows it.

    Validation and test windows may take their inputs from the last ``lookback`` rows of the
    split before (the standard ETT protocol), but their targets always lie inside the split.
    After ``setup``, ``spec`` is the data contract a saved model keeps.
    """

    def __init__(
        self,
        path: str,
        lookback: int = 96,
        horizon: int = 96,
        batch_size: int = 32,
        timestamp: Sequence[str] | str | None = "date",
        timestamp_format: str | None = None,
        timezone: str | None = None,
        features: Sequence[str] | str | None = None,
        targets: Sequence[str] | str | None = None,
        series_id: Sequence[str] | str | None = None,
        split_ratios: Sequence[float] | None = (0.7, 0.1, 0.2),
        split_borders: Sequence[int] | None = None,
        fill_missing: str | None = None,
        fill_gaps: str | None = None,
        duplicates: str = "error",
        short_series: str = "error",
        freq: str | None = None,
        future_covariates: Sequence[str] | str | None = None,
        static_covariates: Sequence[str] | str | None = None,
        calendar: Sequence[str] | str | None = None,
        categorical: Sequence[str] | str | None = None,
        max_rows: int | None = None,
        header: bool = True,
        columns: Sequence[str] | None = None,
        fitted: DataSpec | None = None,
    ) -> None:
        """``fitted`` is given only to score a saved model: its training statistics and
        vocabularies are reused, nothing is fitted again."""
        super().__init__()
        self.path = path
        self.lookback = lookback
        self.horizon = horizon
        self.batch_size = batch_size
        self.timestamp = (
            timestamp if timestamp is None or isinstance(timestamp, str) else list(timestamp)
        )
        self.timestamp_format = timestamp_format
        self.timezone = timezone
        self.series_id = (
            series_id if series_id is None or isinstance(series_id, str) else list(series_id)
        )
        self.feature_columns = as_list(features)
        self.target_columns = as_list(targets)
        self.split_ratios = None if split_ratios is None else list(split_ratios)
        self.split_borders = None if split_borders is None else list(split_borders)
        self.fill_missing = fill_missing
        self.fill_gaps = fill_gaps
        self.duplicates = duplicates
        # What each data option changed, set by setup: rows merged (data.duplicates), rows
        # inserted (data.fill_gaps), values filled (data.fill_missing).
        self.duplicates_merged = self.gaps_inserted = self.values_filled = 0
        if short_series not in SHORT_SERIES_RULES:
            rules = " or ".join(SHORT_SERIES_RULES)
            raise ForecastError(f"data.short_series={short_series!r} must be {rules}")
        self.short_series = short_series
        self.short_series_dropped: list = []  # ids of the series left out, set by setup
        self.freq = freq
        self.future_covariates = as_list(future_covariates) or []
        self.static_covariates = as_list(static_covariates) or []
        self.calendar = as_list(calendar) or []
        self.categorical = as_list(categorical) or []
        self.max_rows = max_rows
        self.header = header
        self.columns = None if columns is None else list(columns)
        self.fitted = fitted
        self.datasets: dict[str, WindowDataset] = {}

    @classmethod
    def from_spec(cls, spec: DataSpec, path: str | None = None) -> ForecastDataModule:
        """The data of a saved model (or ``path`` read its way), scaled with its statistics."""
        return cls(
            path=path or spec.path,
            lookback=spec.lookback,
            horizon=spec.horizon,
            timestamp=spec.timestamp,
            timestamp_format=spec.timestamp_format,
            timezone=spec.timezone,
            features=spec.features,
            targets=spec.targets,
            series_id=spec.series_id,
            split_ratios=spec.split_ratios,
            split_borders=spec.split_borders,
            fill_missing=spec.fill_missing,
            fill_gaps=spec.fill_gaps,
            duplicates=spec.duplicates,
            short_series=spec.short_series,
            freq=spec.freq,
            future_covariates=spec.future_covariates,
            static_covariates=spec.static_covariates,
            calendar=spec.calendar,
            categorical=list(spec.categories),
            header=spec.header,
            columns=spec.columns,
            fitted=spec,
        )

    def setup(self, stage: str | None = None) -> None:
        """Load, check, split and scale once; every user error surfaces here, before training."""
        if self.datasets:
            return
        if self.lookback < 1 or self.horizon < 1:
            raise ForecastError(
                f"lookback ({self.lookback}) and horizon ({self.horizon}) must be >= 1"
            )
        frame = read_table(self.path, self.max_rows, self.header, self.columns)
        covariates = [*self.future_covariates, *self.static_covariates]
        series = prepare_series(
            frame,
            dtype=np.float64,  # scaled in float64, then kept as float32
            timestamp=self.timestamp,
            features=self.feature_columns,
            series_id=self.series_id,
            fill_missing=self.fill_missing,
            fill_gaps=self.fill_gaps,
            duplicates=self.duplicates,
            timestamp_format=self.timestamp_format,
            timezone=self.timezone,
            freq=self.freq,
            source=str(self.path),
            exclude=covariates,
            names=file_rows(self.path, self.header),
        )
        self.duplicates_merged = series.merged
        self.gaps_inserted, self.values_filled = series.inserted, series.filled
        self.data_freq = series.freq
        self.timestamps, self.bounds, self.series_ids = (
            series.timestamps,
            series.bounds,
            series.series_ids,
        )
        self.segments, self.kept_series = self._segments()
        kept = set(self.kept_series)
        self.short_series_dropped = [i for k, i in enumerate(self.series_ids) if k not in kept]
        train = [series.values[a:b] for a, b in self.segments["train"]]
        self.covariates = raw = self._covariate_columns(frame, series.rows, covariates)
        self.spec = self.fitted or self._fit(series, train, raw)
        self.spec.stamp_columns(series.timestamps[:1])  # forecasts can write the timestamps
        # Scaled from float64 into the float32 table the windows view; the float64 one goes.
        values = self.spec.scaler.transform(series.values, np.float32)
        rows = series.rows
        del series, train, frame
        self.values = torch.from_numpy(values)  # (n_rows, n_features), scaled
        where = str(self.path)
        future = self.spec.encode_future(raw, self.timestamps, where, rows)
        self.future = torch.from_numpy(future.astype(np.float32))  # (n_rows, n_future)
        statics = {c: raw[c][[a for a, _ in self.bounds]] for c in self.static_covariates}
        static = self.spec.encode_static(statics, where, len(self.bounds))
        self.static = torch.from_numpy(static.astype(np.float32))  # (n_series, n_static)
        self.datasets = {
            split: self._windows(self.segments[split], self.kept_series) for split in SPLITS
        }

    def changes(self) -> list[tuple[str, int, str]]:
        """What each data option changed in the file, after setup: ``(metric, count, line)``
        each, the metric logged to MLflow (0 when nothing changed) and the line printed by
        the report when something did."""
        dropped = self.short_series_dropped
        shown = ", ".join(repr(k) for k in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        return [
            (
                "data_duplicates_merged",
                self.duplicates_merged,
                f"rows with a repeated timestamp merged (data.duplicates={self.duplicates})",
            ),
            (
                "data_gaps_inserted",
                self.gaps_inserted,
                f"rows inserted at missing timestamps (data.fill_gaps={self.fill_gaps})",
            ),
            (
                "data_values_filled",
                self.values_filled,
                f"missing values filled (data.fill_missing={self.fill_missing})",
            ),
            (
                "data_series_dropped",
                len(dropped),
                f"series too short for a split left out (data.short_series=drop): {shown}",
            ),
        ]

    def _windows(self, segments: list[tuple[int, int]], series: Sequence[int]) -> WindowDataset:
        return WindowDataset(
            self.values,
            segments,
            self.lookback,
            self.horizon,
            self.spec.target_index,
            self.future,
            self.static,
            series,
        )

    def _covariate_columns(
        self, frame: pd.DataFrame, rows: np.ndarray | None, columns: list[str]
    ) -> dict[str, np.ndarray]:
        """Raw values of each covariate in the stacked rows' order; statics checked constant."""
        raw = table_columns(frame, columns, str(self.path), rows)
        for column in self.future_covariates:
            if column not in self.categorical and self.fill_missing:
                raw[column] = np.concatenate([
                    fill_numeric(raw[column][a:b], self.fill_missing, column, self._name(k))
                    for k, (a, b) in enumerate(self.bounds)
                ])  # fmt: skip
        for column in self.static_covariates:
            for k, (a, b) in enumerate(self.bounds):
                static_value(raw[column][a:b], column, self._name(k))
        return raw

    def _name(self, k: int) -> str:
        """How messages name series ``k``."""
        return f"series {self.series_ids[k]!r}" if self.series_id else str(self.path)

    def _fit(
        self, series: SeriesFrame, train: list[np.ndarray], raw: dict[str, np.ndarray]
    ) -> DataSpec:
        """The data contract, with every statistic and vocabulary from training rows only."""
        unknown = [c for c in self.categorical if c not in raw]
        if unknown:
            raise ForecastError(
                f"data.categorical: {unknown} are not among the future or static covariates"
            )
        train_rows = (  # an index only where covariates need one: it is 8 bytes a row
            np.concatenate([np.arange(a, b) for a, b in self.segments["train"]])
            if self.future_covariates
            else None
        )
        firsts = [a for a, _ in self.bounds]
        categories = {
            c: vocabulary(raw[c][firsts] if c in self.static_covariates else raw[c][train_rows])
            for c in self.categorical
        }
        where = str(self.path)
        train_values = train[0] if len(train) == 1 else np.concatenate(train)
        spread = np.ptp(train_values, axis=0)
        constant = [f for f, width in zip(series.features, spread, strict=True) if width == 0]
        if constant:  # kept (centred, unscaled), but they can teach the model nothing
            log.warning("%s: column(s) %s are constant over the training rows", where, constant)
        future_numeric = [c for c in self.future_covariates if c not in categories]
        static_numeric = [c for c in self.static_covariates if c not in categories]
        future = [check_numeric(raw[c][train_rows], c, where) for c in future_numeric]
        static = [check_numeric(raw[c][firsts], c, where) for c in static_numeric]
        return DataSpec(
            features=list(series.features),
            targets=self.target_columns or list(series.features),
            lookback=self.lookback,
            horizon=self.horizon,
            freq=series.freq,
            timezone=series.timezone,
            timestamp=self.timestamp,
            timestamp_format=self.timestamp_format,
            series_id=self.series_id,
            fill_missing=self.fill_missing,
            fill_gaps=self.fill_gaps,
            duplicates=self.duplicates,
            short_series=self.short_series,
            split_ratios=self.split_ratios,
            split_borders=self.split_borders,
            path=str(Path(self.path).resolve()),
            scaler=Scaler.fit(train_values),
            future_covariates=self.future_covariates,
            static_covariates=self.static_covariates,
            calendar=self.calendar,
            categories=categories,
            future_scaler=Scaler.fit(np.stack(future, 1)) if future else None,
            static_scaler=Scaler.fit(np.stack(static, 1)) if static else None,
            header=self.header,
            columns=self.columns,
        )

    def _segments(self) -> tuple[dict[str, list[tuple[int, int]]], list[int]]:
        """Row ranges of every split of every series, checked to hold at least one window,
        and the indices of the series kept: a series too short for a split is an error, or
        with ``short_series="drop"`` left out of every split."""
        segments: dict[str, list[tuple[int, int]]] = {split: [] for split in SPLITS}
        kept = []
        for k, (start, end) in enumerate(self.bounds):
            ranges = split_ranges(end - start, self.split_ratios, self.split_borders, self.lookback)
            ranges = {split: (start + a, start + b) for split, (a, b) in ranges.items()}
            short = [
                (split, b - a)
                for split, (a, b) in ranges.items()
                if window_count(b - a, self.lookback, self.horizon) < 1
            ]
            if short and self.short_series == "drop":
                continue
            if short:
                split, rows = short[0]
                name = f"series {self.series_ids[k]!r}" if self.series_id else str(self.path)
                hints = self._fitting_hint(end - start, "it")
                if self.series_id:
                    hints.append("data.short_series=drop leaves such series out")
                raise ForecastError(
                    f"{name}: the {split} split has {rows} rows (with the lookback it may "
                    f"borrow), fewer than lookback + horizon = {self.lookback + self.horizon}"
                    + "".join(f"; {hint}" for hint in hints)
                )
            kept.append(k)
            for split, segment in ranges.items():
                segments[split].append(segment)
        if not kept:
            longest = max(end - start for start, end in self.bounds)
            hints = self._fitting_hint(longest, "the longest series")
            raise ForecastError(
                f"{self.path}: every series is shorter than its splits need "
                f"(lookback + horizon = {self.lookback + self.horizon} rows per split)"
                + "".join(f"; {hint}" for hint in hints)
            )
        return segments, kept

    def _fitting_hint(self, n_rows: int, which: str) -> list[str]:
        """A lookback and horizon that fit a series of ``n_rows`` rows, as a hint, if any do."""
        season = season_from_freq(self.data_freq)
        ratios, borders = self.split_ratios, self.split_borders
        fit = fitting_window(n_rows, ratios, borders, self.lookback, self.horizon, season)
        return [f"data.lookback={fit[0]} data.horizon={fit[1]} fit {which}"] if fit else []

    def span(self, start: str | None, end: str | None) -> WindowDataset:
        """Windows of every series whose forecast targets all lie in ``[start, end]``.

        Inputs may reach back ``lookback`` rows before ``start``; a span over the training
        rows measures in-sample fit, which is the caller's choice to make.
        """
        bounds = [pd.Timestamp(t).to_datetime64() if t is not None else None for t in (start, end)]
        segments, series = [], []
        for k, (a, b) in enumerate(self.bounds):
            stamps = self.timestamps[a:b]
            first = a if bounds[0] is None else a + int(np.searchsorted(stamps, bounds[0]))
            last = b if bounds[1] is None else a + int(np.searchsorted(stamps, bounds[1], "right"))
            segment = (max(a, first - self.lookback), last)
            if window_count(segment[1] - segment[0], self.lookback, self.horizon) > 0:
                segments.append(segment)
                series.append(k)
        if not segments:
            raise ForecastError(
                f"no series has lookback + horizon = {self.lookback + self.horizon} rows with "
                f"targets between {start} and {end}"
            )
        return self._windows(segments, series)

    def describe_windows(self, dataset: WindowDataset, index: torch.Tensor) -> pd.DataFrame:
        """Series and forecast origin (first target timestamp) of each window in ``index``."""
        rows = (dataset.starts(index) + self.lookback).numpy()
        frame = pd.DataFrame({"origin": self.timestamps[rows]})
        if self.series_id:
            starts = [a for a, _ in self.bounds]
            series = np.searchsorted(starts, rows, side="right") - 1
            ids = [self.spec.id_values(self.series_ids[k]) for k in series]
            for position, column in enumerate(self.spec.id_columns):
                frame.insert(position, column, [key[position] for key in ids])
        return frame

    def example_input(self) -> pd.DataFrame:
        """The first series as a user would send it to the MLflow model: its last
        ``lookback`` rows, and with future covariates the ``horizon`` rows after them, marked
        ``is_future`` (their feature columns empty)."""
        start, end = self.bounds[0]
        ahead = self.horizon if self.spec.future_covariates else 0
        rows = slice(max(start, end - ahead - self.lookback), end)
        original = self.spec.scaler.inverse(self.values[rows].double().numpy())
        frame = pd.DataFrame(original, columns=self.spec.features)
        for column, values in self.covariates.items():
            frame[column] = values[rows]
        stamps = self.spec.stamp_columns(self.timestamps[rows])
        for position, (column, values) in enumerate(stamps.items()):
            if isinstance(values, pd.DatetimeIndex):  # as text, which JSON and CSV both keep
                values = values.strftime(self.spec.timestamp_format or STAMP_TEXT)
            frame.insert(position, column, values)
        self.spec.insert_ids(frame, self.series_ids[0])
        if ahead:
            frame[FUTURE_FLAG] = np.arange(len(frame)) >= len(frame) - ahead
            frame.loc[frame[FUTURE_FLAG], self.spec.features] = np.nan
        return frame

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.datasets["train"], self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self.datasets["val"], self.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(self.datasets["test"], self.batch_size, shuffle=False)
