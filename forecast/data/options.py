"""How a table is read and windowed: the keys of ``conf/data/csv.yaml``, declared and checked
once.

``DataOptions`` is what the user chose; a ``DataSpec`` (``forecast.data.spec``) is the same
options resolved against the training file (its columns, frequency, zone) plus what was fitted
on it. Every part of the data path takes the one object, so a new option is one field here,
its use, its check and its yaml line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from forecast.errors import ForecastError

# data.fill_missing: NaN/inf are refused (null), or filled by one of these
FILL_METHODS = ("ffill", "interpolate")
# data.fill_gaps: missing timestamps are refused (null), or inserted and filled by one of these
GAP_METHODS = ("ffill", "interpolate", "zero")
# data.duplicates: rows repeating the previous row's timestamp are refused, or merged into one
DUPLICATE_RULES = ("error", "first", "last", "mean")
# data.short_series: a series too short for a split is refused, or left out of every split
SHORT_SERIES_RULES = ("error", "drop")
# data.scaling: one scaler per column over every series, or one per series and column
SCALINGS = ("column", "series")
MAX_STEPS = 1 << 20  # lookback, horizon and batch size: a million steps, a year of minutes


def as_list(columns: str | Sequence[str] | None) -> list[str] | None:
    """Accept one column name where a list is expected (``data.targets=OT``); names as text,
    as files have them (``data.features=[1,2]`` for columns named by position)."""
    if columns is None or isinstance(columns, str | int):
        return None if columns is None else [str(columns)]
    return [str(c) for c in columns]


def feature_columns(
    columns: Sequence[str], features: str | Sequence[str] | None, excluded: Sequence[str]
) -> list[str]:
    """The input columns: ``features`` (data.features) if named, else every column but the
    ``excluded`` ones (timestamp, series id, covariates)."""
    return as_list(features) or [c for c in columns if c not in excluded]


def one_or_many(columns: str | Sequence[str] | None) -> str | list[str] | None:
    """A column, or a list of columns that act together (a composite timestamp or id)."""
    if columns is None or isinstance(columns, str | int):
        return None if columns is None else str(columns)
    return [str(c) for c in columns]


def counting(value: Any) -> bool:
    """An integer >= 1 (YAML's true is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class DataOptions:
    """The data keys, one field each; see ``conf/data/csv.yaml`` for what each one does."""

    path: str | None = None
    lookback: int | None = None  # None: derived from the series (splits.derived_lookback)
    horizon: int = 96
    batch_size: int = 32
    timestamp: str | list[str] | None = "date"  # one column, several to combine, None: steps
    timestamp_format: str | None = None
    timezone: str | None = None
    header: bool = True
    columns: list[str] | None = None
    delimiter: str | None = None  # None: detected from the first line
    features: list[str] | None = None  # None: every column but timestamp, ids, covariates
    targets: list[str] | None = None  # None: every feature
    series_id: str | list[str] | None = None
    split_ratios: list[float] | None = field(default_factory=lambda: [0.7, 0.1, 0.2])
    split_borders: list[int] | None = None
    test_size: int | None = None  # steps from each series' end; wins over the ratios
    test_start: str | int | None = None  # or each series' rows from this time on
    val_size: int | None = None  # steps before the test; None: test_size
    val_windows: int | None = None  # or that many spans of horizon steps before the test
    fill_gaps: str | None = None
    fill_missing: str | None = None
    duplicates: str = "error"
    short_series: str = "error"
    freq: str | None = None
    future_covariates: list[str] = field(default_factory=list)
    static_covariates: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    # what a 16 GB laptop sets up (bounds.BYTES_AT_PEAK a value): about 12 GB at the peak
    max_rows: int | None = 150_000_000
    max_values: int | None = 750_000_000  # rows x columns
    scaling: str | None = None  # None: "series" for several series, else "column"
    windows_per_epoch: int | None = None  # None: every window up to windows.EPOCH_WINDOWS
    eval_stride: int | None = None  # None: 1 up to windows.EVAL_WINDOWS scored windows

    def __post_init__(self) -> None:
        normal = {
            "timestamp": one_or_many(self.timestamp),
            "series_id": one_or_many(self.series_id),
            "features": as_list(self.features),
            "targets": as_list(self.targets),
            "columns": None if self.columns is None else [str(c) for c in self.columns],
            "split_ratios": None if self.split_ratios is None else list(self.split_ratios),
            "split_borders": None if self.split_borders is None else list(self.split_borders),
        }
        normal["delimiter"] = "\t" if self.delimiter == "\\t" else self.delimiter  # from a shell
        for name in ("future_covariates", "static_covariates", "calendar", "categorical"):
            normal[name] = as_list(getattr(self, name)) or []
        for name, value in normal.items():
            object.__setattr__(self, name, value)
        self._check()

    def _check(self) -> None:
        for name in ("lookback", "horizon", "batch_size"):
            value = getattr(self, name)
            if name == "lookback" and value is None:
                continue
            if not counting(value) or value > MAX_STEPS:
                # the bound keeps a mistyped size from asking for terabytes of windows
                raise ForecastError(f"data.{name}={value!r} must be an integer in [1, {MAX_STEPS}]")
        if self.timezone is not None and (not isinstance(self.timezone, str) or not self.timezone):
            raise ForecastError(
                f"data.timezone={self.timezone!r} must name a time zone (e.g. Europe/Berlin, "
                "UTC), or be null"
            )
        self._check_splits()
        for name in ("max_rows", "max_values", "windows_per_epoch", "eval_stride"):
            value = getattr(self, name)
            if value is not None and not counting(value):
                null = "for no limit" if name.startswith("max_") else "to derive it from the data"
                raise ForecastError(
                    f"data.{name}={value!r} must be an integer >= 1, or null {null}"
                )
        rules = {
            "duplicates": (self.duplicates, DUPLICATE_RULES, False),
            "short_series": (self.short_series, SHORT_SERIES_RULES, False),
            "fill_gaps": (self.fill_gaps, GAP_METHODS, True),
            "fill_missing": (self.fill_missing, FILL_METHODS, True),
            "scaling": (self.scaling, SCALINGS, True),
        }
        for name, (value, allowed, nullable) in rules.items():
            if value not in allowed and not (nullable and value is None):
                null = ", or null" if nullable else ""
                raise ForecastError(f"data.{name}={value!r} must be one of {allowed}{null}")
        delimiter = self.delimiter
        if delimiter is not None and (
            not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n'
        ):
            raise ForecastError(
                f"data.delimiter={self.delimiter!r} must be one character (',', ';', '\\t', '|'), "
                "or null to detect it from the file's first line"
            )
        if self.freq is not None:
            try:
                if not isinstance(self.freq, str):
                    raise ValueError
                pd.tseries.frequencies.to_offset(self.freq)
            except ValueError:
                raise ForecastError(
                    f"data.freq={self.freq!r} is not a pandas frequency "
                    "(e.g. h, 15min, D, W-SUN, MS)"
                ) from None

    @property
    def past_categorical(self) -> list[str]:
        """Categorical columns that are neither future nor static covariates: inputs observed
        with the series (a wind direction), embedded over the lookback and hidden past it, so
        a forecast needs nothing beyond the history."""
        known = {*self.future_covariates, *self.static_covariates}
        return [c for c in self.categorical if c not in known]

    @property
    def side_columns(self) -> list[str]:
        """The columns read beside the numeric features, as they are in the file: future and
        static covariates and the categorical past inputs."""
        return [*self.future_covariates, *self.static_covariates, *self.past_categorical]

    def _check_splits(self) -> None:
        for name in ("test_size", "val_size", "val_windows"):
            value = getattr(self, name)
            if value is not None and (not counting(value) or value > MAX_STEPS):
                raise ForecastError(
                    f"data.{name}={value!r} must be an integer in [1, {MAX_STEPS}], or null"
                )
        if self.test_start is not None and self.test_size is not None:
            raise ForecastError("data.test_size and data.test_start both place the test: set one")
        counted = self.test_size is not None or self.test_start is not None
        for name in ("val_size", "val_windows"):
            if getattr(self, name) is not None and not counted:
                raise ForecastError(
                    f"data.{name} counts steps before the test: set data.test_size or "
                    "data.test_start"
                )
        if self.val_size is not None and self.val_windows is not None:
            raise ForecastError(
                "data.val_size and data.val_windows both size the validation: set one"
            )
        if counted and self.split_borders is not None:
            raise ForecastError(
                "data.test_size and data.test_start place the test in each series, "
                "data.split_borders by row from its start: set one (data.split_borders=null)"
            )

    @property
    def validation_size(self) -> int | None:
        """Validation steps before a ``test_size`` test: ``val_windows`` spans of the horizon,
        or ``val_size``, or as many as the test."""
        if self.val_windows is not None:
            return self.val_windows * self.horizon
        return self.val_size or self.test_size

    def values(self) -> dict[str, Any]:
        """The options as keywords (of a DataSpec too: its options, without what was fitted)."""
        return {f.name: getattr(self, f.name) for f in fields(DataOptions)}

    def changes(self, merged: int, inserted: int, filled: int, dropped: list) -> list:
        """What each option changed in the file: ``(metric, count, line)`` each, the metric
        logged to MLflow (0 when nothing changed) and the line the report prints when
        something did."""
        shown = ", ".join(repr(k) for k in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        return [
            ("data_duplicates_merged", merged,
             f"rows with a repeated timestamp merged (data.duplicates={self.duplicates})"),
            ("data_gaps_inserted", inserted,
             f"rows inserted at missing timestamps (data.fill_gaps={self.fill_gaps})"),
            ("data_values_filled", filled,
             f"missing values filled (data.fill_missing={self.fill_missing})"),
            ("data_series_dropped", len(dropped),
             f"series too short for a split left out (data.short_series=drop): {shown}"),
        ]  # fmt: skip
