"""The data contract between training and every later use of a model.

``DataSpec`` is what a model needs to know about data it never saw: which columns go in and
come out, how far back it looks and ahead it forecasts, at what frequency, how values are
scaled and how the table was split and filled. The DataModule builds it once after reading
the training file; the network is sized from it, ``model.pt`` stores it as plain values,
and evaluation, prediction, serving and export read it by attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from forecast.data import Scaler
from forecast.errors import ForecastError


@dataclass(frozen=True)
class DataSpec:
    features: list[str]  # input columns, in the order of the input's last axis
    targets: list[str]  # forecast columns, a subset of the features
    lookback: int
    horizon: int
    freq: str | None = None  # pandas frequency of the timestamps
    timestamp: str = "date"
    series_id: str | None = None
    fill_missing: str | None = None
    split_ratios: list[float] | None = None
    split_borders: list[int] | None = None
    path: str | None = None  # the training file, for forecast-eval's default
    scaler: Scaler | None = None  # training statistics of every feature

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ForecastError(f"{name} must be an integer >= 1, got {value!r}")
        unknown = [t for t in self.targets if t not in self.features]
        if unknown:
            raise ForecastError(f"targets {unknown} are not among the features {self.features}")
        if not self.targets:
            raise ForecastError("no target columns")

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
        """The scaler of the target columns alone: maps forecasts back to original units."""
        return self.scaler.select(self.target_index)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, as ``torch.load(weights_only=True)`` accepts."""
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scaler"}
        return {**plain, "scaler": None if self.scaler is None else self.scaler.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSpec:
        scaler = values.get("scaler")
        plain = {k: v for k, v in values.items() if k != "scaler"}
        return cls(**plain, scaler=None if scaler is None else Scaler.from_dict(scaler))
