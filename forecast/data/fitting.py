"""The second reading of a table's chunks: every statistic and vocabulary a model keeps,
from the training rows only, summed a chunk at a time (``Moments``) and over every DDP rank,
so that no split and no float64 copy of the table is ever made to fit them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from forecast.data.chunks import Chunk
from forecast.data.covariates import check_numeric, vocabulary
from forecast.data.layout import Layout
from forecast.data.options import DataOptions
from forecast.data.scaling import Moments, Scaler, SeriesScaler
from forecast.data.shards import Shard
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError

log = logging.getLogger(__name__)

Rows = tuple[int, int] | None  # a series' training rows in the stacked table, None: left out


class Statistics:
    """Sums over the training rows of the chunks added: the features' (the columns' and,
    with ``own``, each series'), their extremes, the categories seen, the numeric future
    covariates', and each series' static values."""

    def __init__(self, options: DataOptions, width: int, series: int, own: bool) -> None:
        self.options = options
        self.column = Moments.empty(width)
        self.high, self.low = np.full(width, -np.inf), np.full(width, np.inf)
        # each series' row count, mean and squared deviations (arrays: 10^5 series' Moments
        # objects would be tens of MB)
        self.own = (np.zeros(series), np.zeros((series, width)), np.zeros((series, width)))
        self.own = self.own if own else None
        self.seen: dict[str, list[np.ndarray]] = {c: [] for c in options.categorical}
        numeric = [c for c in options.future_covariates if c not in options.categorical]
        self.future = {c: Moments.empty(1) for c in numeric}
        self.static: dict[str, list[np.ndarray]] = {c: [] for c in options.static_covariates}

    def add(self, chunk: Chunk, train: Sequence[Rows], where: str) -> None:
        """``chunk``, whose series ``k`` has the training rows ``train[k]``."""
        values, raw, n = chunk.series.values, chunk.raw, len(chunk.series.values)
        spans = [rows and (max(rows[0] - chunk.first, 0), min(rows[1] - chunk.first, n))
                 for rows in train]  # the chunk's part of them  # fmt: skip
        spans = [None if rows is None or rows[0] >= rows[1] else rows for rows in spans]
        kept = [rows for rows in spans if rows is not None]
        for a, b in kept:
            part = values[a:b]
            self.column.add(part)
            self.high = np.maximum(self.high, part.max(0))
            self.low = np.minimum(self.low, part.min(0))
        for j, rows in enumerate(spans if self.own is not None else []):
            if rows is None:
                continue
            k, (count, mean, m2) = chunk.first_series + j, self.own
            # more rows of a series begun in the chunk before (one series without ids)
            piece = Moments(count[k], mean[k].copy(), m2[k].copy())
            piece.merge(Moments.empty(values.shape[1]).add(values[slice(*rows)]))
            count[k], mean[k], m2[k] = piece.count, piece.mean, piece.m2
        firsts = [a for a, _ in chunk.series.bounds][chunk.continues :]  # series starting here
        for column, seen in self.seen.items():
            rows = ([raw[column][firsts]] if column in self.static
                    else [raw[column][a:b] for a, b in kept])  # fmt: skip
            seen.append(pd.unique(np.concatenate(rows)))
        for column, moments in self.future.items():
            check_numeric(raw[column], column, where, chunk.rows)
            for a, b in kept:
                moments.add(raw[column][a:b, None])
        for column, values_of in self.static.items():
            values_of.append(raw[column][firsts])

    def series_scaler(self, keys: list, column: Scaler) -> SeriesScaler | None:
        """Each series' statistics (None unless ``own``): a series left out of training
        takes the ``column`` statistics, a column constant over its rows their spread."""
        if self.own is None:
            return None
        count, mean, m2 = self.own
        trained = count[:, None] > 0
        std = np.sqrt(m2 / np.maximum(count, 1)[:, None])
        std = np.where(trained & (std > 0), std, column.std)
        return SeriesScaler(list(keys), np.where(trained, mean, column.mean), std)

    def constant_columns(self, features: list[str], shard: Shard) -> list[str]:
        """The columns whose training rows hold one value, on every rank."""
        high = shard.extreme(torch.from_numpy(self.high.astype(np.float64)), largest=True)
        low = shard.extreme(torch.from_numpy(self.low.astype(np.float64)), largest=False)
        spread = (high - low).numpy()
        return [column for column, width in zip(features, spread, strict=True) if width == 0]


def fit_spec(
    chunks: Iterable[Chunk],
    layout: Layout,
    train: Sequence[Rows],
    options: DataOptions,
    where: str,
    shard: Shard,
) -> tuple[DataSpec, SeriesScaler | None]:
    """The data contract: the options resolved against the file, every statistic and
    vocabulary from the training rows ``train[k]`` of each series ``k``; and, with
    data.scaling=series, this rank's series' own statistics."""
    named = options.features or []
    unknown = [c for c in options.past_categorical if named and c not in named]
    if unknown:
        raise ForecastError(
            f"data.categorical: {unknown} are not among data.features, "
            "data.future_covariates or data.static_covariates"
        )
    stats = Statistics(
        options, len(layout.features), len(layout.bounds), own=options.scaling == "series"
    )
    for chunk in chunks:
        stats.add(chunk, train[chunk.first_series :][: len(chunk.series.bounds)], where)
    constant = stats.constant_columns(layout.features, shard)
    if constant:  # kept (centred, unscaled), but they can teach the model nothing
        log.warning("%s: column(s) %s are constant over the training rows", where, constant)
    scaler = stats.column.across(shard).scaler()
    own = stats.series_scaler(layout.series_ids, scaler)
    categories = {c: vocabulary(np.concatenate(seen), shard) for c, seen in stats.seen.items()}
    static = [
        Moments.empty(1).add(check_numeric(np.concatenate(stats.static[c]), c, where)[:, None])
        for c in options.static_covariates
        if c not in categories
    ]
    spec = DataSpec(
        **replace(
            options, path=str(Path(where).resolve()), features=list(layout.features),
            targets=options.targets or list(layout.features), freq=layout.freq,
            timezone=layout.timezone,
        ).values(),
        scaler=scaler,
        series_scaler=own and own.every_rank(shard),
        categories=categories,
        future_scaler=columns_scaler(list(stats.future.values()), shard),
        static_scaler=columns_scaler(static, shard),
        integer_time=layout.integer_time,
    )  # fmt: skip
    return spec, own


def columns_scaler(columns: list[Moments], shard: Shard) -> Scaler | None:
    """One scaler of several columns' statistics (each over every rank's rows); None
    without any."""
    if not columns:
        return None
    fitted = [moments.across(shard).scaler() for moments in columns]
    return Scaler(*(np.concatenate([getattr(f, s) for f in fitted]) for s in ("mean", "std")))


def own_scalers(
    chunks: Iterable[Chunk], spec: DataSpec, train: Sequence[Rows], layout: Layout
) -> SeriesScaler:
    """The statistics of each series of a file a saved model scores: those it was trained
    with for the series it knows, their own training rows' for the others (or all their
    rows, for a series too short for a split)."""
    own = []
    for chunk in chunks:
        values, k0 = chunk.series.values, chunk.first_series
        for k in range(k0, k0 + len(chunk.series.bounds)):
            a, b = train[k] or layout.bounds[k]
            own.append(
                spec.scaler_for(layout.series_ids[k], values[a - chunk.first : b - chunk.first])
            )
    return SeriesScaler.stack(layout.series_ids, own)
