"""The seasonal period of data whose steps say nothing of the calendar (integer steps, as M4
ships its series), found in the values: what the seasonal naive baseline, MASE and a derived
lookback need, where a frequency (hours: 24) would otherwise give it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecast.data.options import DataOptions
from forecast.data.series import SeriesFrame
from forecast.data.splits import TestRows, series_options, split_borders

TCRIT = 1.645  # M4's seasonality test: the one-sided 90% normal quantile
# The periods data comes in: a year of quarters, of months, of weeks, of days; a week of days,
# of hours; a day of hours, of half hours, of 15 and 10 minutes. Testing these alone, rather
# than every lag, keeps chance peaks of noise from reading as a season.
PERIODS = (4, 7, 12, 24, 48, 52, 96, 144, 168, 365)
# and rise this much from half the period (a trough, where a cycle is): 6 standard errors at
# 1,000 steps, and what a trend or a random walk, whose autocorrelation only falls, never does
MIN_SWING = 0.2
MAX_SERIES = 500  # series looked at, evenly spread over a panel
NEAR_BEST = 0.9  # a shorter period whose autocorrelation is this close to the best one wins


def mean_autocorrelation(series: Sequence[np.ndarray], max_lag: int) -> np.ndarray:
    """Lags 0..``max_lag`` of each series' autocorrelation (by FFT), averaged over series."""
    total, count = np.zeros(max_lag + 1), 0
    for values in series:
        centred = np.asarray(values, dtype=np.float64) - np.mean(values)
        # zero-padded to a power of two of at least 2n: the linear (not circular) sums, and
        # an FFT size without large prime factors, which pocketfft is many times slower on
        size = 1 << (2 * len(centred) - 1).bit_length()
        power = np.abs(np.fft.rfft(centred, size)) ** 2
        acf = np.fft.irfft(power)[: max_lag + 1]
        if acf[0] > 0:
            total, count = total + acf / acf[0], count + 1
    return total / max(count, 1)


def bartlett_limit(acf: np.ndarray, n: float) -> np.ndarray:
    """M4's 90% limit of the autocorrelation at each lag of ``acf`` (index 0 unused), for a
    series of ``n`` steps: Bartlett's variance from the lower lags' autocorrelations."""
    variance = np.cumsum(np.r_[1.0, 2 * acf[1:-1] ** 2])
    return np.r_[np.nan, TCRIT / np.sqrt(n) * np.sqrt(variance)]


def detect_season(series: Sequence[np.ndarray], lengths: Sequence[int] | None = None) -> int:
    """The period of ``PERIODS`` at which the series' mean autocorrelation passes M4's 90%
    test (Bartlett's limit) and rises ``MIN_SWING`` from half the period, the shortest within
    ``NEAR_BEST`` of the strongest, so that hourly data with a weekly echo is still daily; 1
    where none does (noise, a trend, a random walk, series under 3 periods long, as M4
    asks). ``lengths``: of every series, where ``series`` are an even sample of them."""
    lengths = [len(v) for v in series] if lengths is None else lengths
    if not lengths:
        return 1
    max_lag = min(lengths) // 3
    candidates = [p for p in PERIODS if p <= max_lag]
    if not candidates:
        return 1
    step = max(1, len(series) // MAX_SERIES)
    acf = mean_autocorrelation(series[::step], max(candidates))
    limit = bartlett_limit(acf, np.median(lengths))
    passing = [p for p in candidates if acf[p] > max(limit[p], acf[p // 2] + MIN_SWING)]
    if not passing:
        return 1
    best = max(acf[p] for p in passing)
    return next(p for p in passing if acf[p] >= NEAR_BEST * best)


class SeasonSample:
    """The first target's rows before validation of an even spread of series, every
    ``step``-th (at most ``2 * MAX_SERIES`` of them, so a panel of 10^5 series costs no
    copy of its values), and every such series' length: what ``detect_season`` reads where
    steps say nothing of the calendar (integer steps), gathered a chunk at a time."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.step = 1

    def add(self, series: SeriesFrame, options: DataOptions, tests: TestRows = None) -> None:
        """``series``' rows before validation (``tests``: their rows from data.test_start)."""
        first = (options.targets or series.features)[0]
        if first not in series.features:  # refused by name once the spec is made
            return
        target, of = series.features.index(first), series_options(options, tests)
        for k, (a, b) in enumerate(series.bounds):
            own = of(k)
            before = split_borders(b - a, own)[0] if own else 0
            if not before:
                continue
            if len(self.lengths) % self.step == 0:
                self.rows.append(series.values[a : a + before, target].copy())
            self.lengths.append(before)
            if len(self.rows) > 2 * MAX_SERIES:
                self.rows, self.step = self.rows[::2], self.step * 2

    def season(self) -> int:
        return detect_season(self.rows, self.lengths)
