"""The data contract between training and every later use of a model.

``DataSpec`` is what a model needs to know about data it never saw: which columns go in and
come out, how far back it looks and ahead it forecasts, at what frequency, how values are
scaled and how the table was split and filled. The DataModule builds it once after reading
the training file; the network is sized from it, ``model.pt`` stores it as plain values,
and evaluation, prediction, serving and export read it by attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from forecast.data.clock import local_index, stamp_columns, stamp_rows
from forecast.data.covariates import (
    calendar_columns,
    calendar_features,
    check_calendar,
    check_numeric,
    encode_categories,
)
from forecast.data.options import DataOptions, as_list
from forecast.data.scaling import Scaler, SeriesScaler
from forecast.errors import ForecastError

SCALERS = ("scaler", "future_scaler", "static_scaler")


def distinct_values(vocabulary: Any) -> bool:
    """A list of distinct numbers or texts: what a category vocabulary is (a model file's too)."""
    return (
        isinstance(vocabulary, list)
        and all(isinstance(v, str | int | float | bool) for v in vocabulary)
        and len(set(vocabulary)) == len(vocabulary)
    )


@dataclass(frozen=True)
class DataSpec(DataOptions):
    """The options as the training file resolved them (its feature and target columns, its
    frequency and zone, its absolute path), plus what was fitted on its training rows."""

    scaler: Scaler | None = None  # training statistics of every feature
    categories: dict[str, list] = field(default_factory=dict)  # categorical column: vocabulary
    future_scaler: Scaler | None = None  # of the numeric future covariates, in order
    static_scaler: Scaler | None = None  # of the numeric static covariates, in order
    integer_time: bool = False  # the time column holds integer steps, written back as such
    # data.scaling=series: each training series' statistics (``scaler`` stays the column's)
    series_scaler: SeriesScaler | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scaling is None:  # resolved before a spec is made; older files: per column
            object.__setattr__(self, "scaling", "series" if self.series_scaler else "column")
        if self.lookback is None:  # resolved against the training file before a spec is made
            raise ForecastError("a model's data description needs its lookback")
        if not self.features or not self.targets:
            raise ForecastError("no feature or target columns")
        unknown = [t for t in self.targets if t not in self.features]
        if unknown:
            raise ForecastError(f"targets {unknown} are not among the features {self.features}")
        check_calendar(self.calendar)
        self._check_scalers()
        for column, vocabulary in self.categories.items():
            if not distinct_values(vocabulary):
                raise ForecastError(
                    f"the categories of {column!r} must be distinct numbers or texts (a model "
                    f"file holds nothing else), got {vocabulary!r}"[:300]
                )
        if self.timestamp is None and (self.calendar or self.future_covariates):
            raise ForecastError(
                "data.timestamp=null numbers the rows 0, 1, ...: data.calendar and "
                "data.future_covariates need real timestamps to line up with"
            )
        both = set(self.targets) & {*self.future_covariates, *self.static_covariates}
        if both:
            raise ForecastError(f"{sorted(both)} cannot be both targets and covariates")

    def _check_scalers(self) -> None:
        if self.scaling == "series" and self.scaler is not None and self.series_scaler is None:
            raise ForecastError("a model scaled per series needs each series' statistics")
        if self.series_scaler is not None:
            self.series_scaler.check(self.n_features)
        sizes = {
            "scaler": self.n_features,
            "future_scaler": len(self.future_numeric),
            "static_scaler": len(self.static_numeric),
        }
        for name, size in sizes.items():
            scaler = getattr(self, name)
            if scaler is None:
                continue
            if len(scaler.mean) != size or len(scaler.std) != size:
                raise ForecastError(
                    f"{name} has {len(scaler.mean)} means and {len(scaler.std)} standard "
                    f"deviations for {size} columns"
                )
            if not (np.isfinite(scaler.mean).all() and np.isfinite(scaler.std).all()):
                raise ForecastError(f"{name} statistics are not all finite")
            if (np.asarray(scaler.std) <= 0).any():
                raise ForecastError(f"{name} has a standard deviation <= 0")

    @property
    def future_numeric(self) -> list[str]:
        return [c for c in self.future_covariates if c not in self.categories]

    @property
    def future_columns(self) -> list[str]:
        """The encoded columns over the lookback and the horizon: numeric future covariates
        (scaled), categorical ones and past inputs (codes), the calendar's sines and cosines."""
        categorical = [c for c in self.future_covariates if c in self.categories]
        past, calendar = self.past_categorical, calendar_columns(self.calendar)
        return self.future_numeric + categorical + past + calendar

    @property
    def hidden_columns(self) -> dict[int, int]:
        """``{position in future_columns: code}`` of each categorical past input: its values
        are not known past the lookback, so the model sees this code there instead (one past
        its vocabulary: an embedding of its own)."""
        columns = self.future_columns
        return {columns.index(c): len(self.categories[c]) for c in self.past_categorical}

    @property
    def static_numeric(self) -> list[str]:
        return [c for c in self.static_covariates if c not in self.categories]

    @property
    def static_columns(self) -> list[str]:
        categorical = [c for c in self.static_covariates if c in self.categories]
        return self.static_numeric + categorical

    def embeddings(self, columns: list[str]) -> list[tuple[int, int]]:
        """``(position, number of codes)`` of each categorical column in ``columns``: its
        categories, and a categorical past input's hidden code."""
        past, categories = self.past_categorical, self.categories
        return [
            (k, len(categories[c]) + (c in past)) for k, c in enumerate(columns) if c in categories
        ]

    def encode_future(
        self,
        columns: dict[str, np.ndarray],
        stamps: np.ndarray,
        where: str,
        rows: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(rows, len(future_columns))`` float32, into ``out`` if given (a larger table's
        rows), column by column from the raw covariate values and the timestamps (a float64
        stack first would be several times the table); ``rows`` numbers them in messages."""
        if out is None:
            out = np.empty((len(stamps), len(self.future_columns)), np.float32)
        for j, c in enumerate(self.future_numeric):
            values = check_numeric(columns[c], c, where, rows)[:, None]
            self.future_scaler.select([j]).transform(values, out=out[:, j : j + 1])
        j = len(self.future_numeric)
        for c in [*self.future_covariates, *self.past_categorical]:
            if c in self.categories:
                out[:, j] = encode_categories(columns[c], self.categories[c], c, where, rows)
                j += 1
        if self.calendar:  # in local time
            out[:, j:] = calendar_features(local_index(stamps, self.timezone), self.calendar)
        return out

    def encode_static(
        self, columns: dict[str, np.ndarray], where: str, n_series: int
    ) -> np.ndarray:
        """``(n_series, len(static_columns))`` from each series' raw static values."""
        numeric = [check_numeric(columns[c], c, where) for c in self.static_numeric]
        parts = [self.static_scaler.transform(np.stack(numeric, 1))] if numeric else []
        parts += [
            encode_categories(columns[c], self.categories[c], c, where)[:, None]
            for c in self.static_covariates
            if c in self.categories
        ]
        return np.concatenate(parts, axis=1) if parts else np.zeros((n_series, 0))

    @property
    def timestamp_columns(self) -> list[str]:
        return as_list(self.timestamp) or []

    @property
    def stamp_names(self) -> list[str]:
        """The columns forecasts write the timestamps in: a model without any numbers its
        steps in a ``step`` column, on from the history's last."""
        return self.timestamp_columns or ["step"]

    @property
    def id_columns(self) -> list[str]:
        return as_list(self.series_id) or []

    def id_values(self, key: Any) -> list:
        """A series' id as one value per id column: several columns name it by a tuple."""
        if not self.id_columns:
            return []
        return list(key) if len(self.id_columns) > 1 else [key]

    def insert_ids(self, frame: pd.DataFrame, keys: list, rows: int) -> pd.DataFrame:
        """``frame`` (``rows`` rows of each series of ``keys``, in order), the ids first."""
        values = [self.id_values(key) for key in keys]
        for position, column in enumerate(self.id_columns):
            ids = pd.Series([value[position] for value in values]).repeat(rows)
            frame.insert(position, column, ids.reset_index(drop=True))
        return frame

    def stamp_columns(self, stamps: np.ndarray) -> dict[str, Any]:
        """Timestamps as forecasts show them, in the data's columns, zone and format."""
        return stamp_columns(
            stamps, self.timestamp, self.timestamp_format, self.timezone, self.integer_time
        )

    def stamp_rows(self, stamps: np.ndarray) -> list[tuple]:
        """The same timestamps as a JSON answer's row values (clock.stamp_rows)."""
        return stamp_rows(
            stamps, self.timestamp, self.timestamp_format, self.timezone, self.integer_time
        )

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    @property
    def target_index(self) -> list[int]:
        """Position of each target among the features: the input columns forecast."""
        return [self.features.index(t) for t in self.targets]

    @property
    def target_scaler(self) -> Scaler:
        """The column scaler of the target columns alone: maps forecasts back to original
        units (those of any series with data.scaling=column)."""
        return self.scaler.select(self.target_index)

    def scaler_for(self, key: Any, history: np.ndarray) -> Scaler:
        """The statistics the series named ``key`` is scaled with: the columns' (data.scaling=
        column), the series' own from its training rows, or, for a series the model never
        saw, those of its ``history (rows, n_features)``."""
        if self.series_scaler is None:
            return self.scaler
        known = self.series_scaler.find(key)
        return Scaler.fit(history, self.scaler.std) if known is None else known

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, as ``torch.load(weights_only=True)`` accepts."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in (*SCALERS, "series_scaler"):
            out[name] = None if out[name] is None else out[name].to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSpec:
        """Older files lack the later fields: they take their defaults, and the categorical
        columns are those with a vocabulary."""
        missing = [k for k in ("features", "targets", "lookback", "horizon") if k not in values]
        if missing:  # what every file has held: no default stands in for them
            raise KeyError(f"no {missing}")
        values = {"categorical": list(values.get("categories") or {}), **values}
        for name in SCALERS:
            if values.get(name) is not None:
                values[name] = Scaler.from_dict(values[name])
        if values.get("series_scaler") is not None:
            values["series_scaler"] = SeriesScaler.from_dict(values["series_scaler"])
        return cls(**values)
