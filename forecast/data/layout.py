"""The first reading of a table's chunks: where each series' rows lie in the stacked table,
its id and timestamps, and what the rules changed, before anything is fitted or allocated
(the lookback derived from the series' lengths decides the splits the statistics take)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from forecast.data.chunks import Chunk
from forecast.data.clock import SeriesClock, season_from_freq
from forecast.data.options import DataOptions
from forecast.data.parquet import Unstreamable
from forecast.data.seasonality import SeasonSample
from forecast.data.splits import TestRows, rows_in_test
from forecast.errors import ForecastError


@dataclass
class Layout:
    """The stacked table as its chunks show it: series ``k`` is rows ``bounds[k]``."""

    bounds: list[tuple[int, int]] = field(default_factory=list)
    series_ids: list[Any] = field(default_factory=list)
    clock: SeriesClock = field(default_factory=SeriesClock)
    features: list[str] = field(default_factory=list)
    freq: str = ""
    timezone: str | None = None
    integer_time: bool = False
    tests: TestRows = None  # each series' rows at or after data.test_start
    changes: list[int] = field(default_factory=lambda: [0, 0, 0])  # merged, inserted, filled
    imputed_targets: bool = False  # a rule made up a target value somewhere
    # the first target's rows before validation, where the season must be found in them
    season: SeasonSample = field(default_factory=SeasonSample)

    @property
    def rows(self) -> int:
        return len(self.clock)

    @classmethod
    def scan(cls, chunks: Iterable[Chunk], options: DataOptions, source: str) -> Layout:
        layout = cls()
        for chunk in chunks:
            layout.add(chunk, options, source)
        return layout

    def add(self, chunk: Chunk, options: DataOptions, source: str) -> None:
        """The chunk's series, after those already added."""
        series = chunk.series
        if self.freq and series.freq != self.freq:
            raise ForecastError(
                f"{source}: series have different frequencies {sorted({self.freq, series.freq})}"
            )
        self.features, self.freq, self.timezone = series.features, series.freq, series.timezone
        self.integer_time = series.integer_time
        tests = rows_in_test(series.timestamps, series.bounds, options, series.timezone)
        if chunk.continues:  # more rows of the one series, at its step
            if not self.clock.join(series.timestamps):
                raise Unstreamable(f"{source}: the rows of a chunk do not go on from the last")
            start, end = self.bounds[-1]
            self.bounds[-1] = (start, end + len(series.values))
            if tests is not None:
                self.tests[-1] += tests[0]
        else:
            first = self.rows
            self.bounds += [(first + a, first + b) for a, b in series.bounds]
            self.series_ids += series.series_ids
            self.clock.extend(series.timestamps, series.bounds)
            if tests is not None:
                self.tests = self.tests or []
                self.tests += tests
        for k, count in enumerate((series.merged, series.inserted, series.filled)):
            self.changes[k] += count
        targets = [k for k, c in enumerate(series.features) if c in (options.targets or [c])]
        imputed = series.imputed is not None and series.imputed[:, targets].any()
        self.imputed_targets = self.imputed_targets or bool(imputed)
        if season_from_freq(series.freq) == 1 and series.integer_time:
            self.season.add(series, options, tests)
