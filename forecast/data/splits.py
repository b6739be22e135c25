"""Chronological splits of each series, and how many windows each split holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from forecast.data.options import DataOptions
from forecast.data.windows import window_count
from forecast.errors import ForecastError

SPLITS = ("train", "val", "test")


def split_borders(n_rows: int, options: DataOptions) -> tuple[int, int, int]:
    """End rows (exclusive) of train, val and test for one series of ``n_rows`` rows.

    ``data.test_size`` counts the test from the series' end, and ``data.val_size`` (or
    ``data.val_windows`` spans of the horizon, or the test size) the validation before it,
    the same steps in every series whatever its length: "forecast the last H steps", M4's
    and M5's protocol; what is left trains (nothing, in a series too short, which the
    caller refuses or drops). Else explicit
    ``data.split_borders`` win over ``data.split_ratios``; rows after the test border are
    never used (the ETT protocol leaves the last 4 months out).
    """
    if options.test_size is not None:
        val_end = max(0, n_rows - options.test_size)
        return max(0, val_end - options.validation_size), val_end, n_rows
    ratios, borders = options.split_ratios, options.split_borders
    if borders is not None:
        train_end, val_end, test_end = (int(b) for b in borders)
        if not 0 < train_end < val_end < test_end <= n_rows:
            raise ForecastError(
                f"split_borders {list(borders)} must be increasing and at most the series "
                f"length {n_rows}; for your own file start from data=csv, which splits by "
                "data.split_ratios"
            )
        return train_end, val_end, test_end
    if ratios is None or len(ratios) != 3 or min(ratios) <= 0 or sum(ratios) > 1 + 1e-9:
        raise ForecastError(f"split_ratios {ratios} must be 3 positive numbers summing to <= 1")
    train_end = int(n_rows * ratios[0])
    val_end = train_end + int(n_rows * ratios[1])
    return train_end, val_end, min(n_rows, val_end + int(n_rows * ratios[2]))


def split_ranges(n_rows: int, options: DataOptions) -> dict[str, tuple[int, int]]:
    """Each split's rows in a series of ``n_rows``, counted from its first: validation and
    test windows take their inputs from the ``lookback`` rows before their split, never from
    before the series (nor from the series before it)."""
    train_end, val_end, test_end = split_borders(n_rows, options)
    lookback = options.lookback
    return {
        "train": (0, train_end),
        "val": (max(0, train_end - lookback), val_end),
        "test": (max(0, val_end - lookback), test_end),
    }


def fitting_window(n_rows: int, options: DataOptions, season: int = 1) -> tuple[int, int] | None:
    """The largest lookback and horizon, at most the options', for which every split of a
    series of ``n_rows`` rows holds a window: the horizon fits the validation and test rows
    (their windows borrow the lookback from the split before), lookback plus horizon the
    training rows; the lookback a whole number of seasons where it holds one. None when not
    even a lookback and horizon of 1 fit."""
    try:
        train_end, val_end, test_end = split_borders(n_rows, options)
    except ForecastError:
        return None
    horizon = min(options.horizon, val_end - train_end, test_end - val_end)
    lookback = min(options.lookback, train_end - horizon)
    if horizon < 1 or lookback < 1:
        return None
    if season > 1 and lookback >= season:
        lookback -= lookback % season
    return lookback, horizon


# data.lookback=null: the lookback the benchmarks measure, where every series allows it; where
# a season is a day of hours (or half hours), a week of them, for the weekly cycle of what
# people do (M4 Hourly: OWA 0.553 at 96 hours, 0.496 at 168; benchmarks/m4_defaults.json)
PREFERRED_LOOKBACK = 96
DAY_SEASONS = (24, 48)
# Without a season, a lookback that only the series' lengths bound is a multiple of this, so
# that model.segment_len=null (a quarter of it) reads it in equal parts: M4 Weekly's 93-step
# series allow 54, and 52 in segments of 13 gave OWA 0.697 where 54 in segments of 9 gave 0.752
SEGMENTS = 4


def preferred_lookback(season: int) -> int:
    """The lookback ``data.lookback=null`` asks for, before the series' lengths bound it."""
    return 7 * season if season in DAY_SEASONS else PREFERRED_LOOKBACK


def derived_lookback(
    lengths: Sequence[int], options: DataOptions, season: int = 1, tests: TestRows = None
) -> int:
    """The lookback for ``data.lookback=null``: ``preferred_lookback``, or, where a series of
    ``lengths`` is too short for that and the horizon in its splits, the longest lookback that
    fits every series (a whole number of seasons where it holds one, else of ``SEGMENTS``). A
    series in which not even the horizon fits is left to the short-series rule (refused, or
    dropped)."""
    preferred = preferred_lookback(season)
    of = series_options(replace(options, lookback=preferred), tests)
    fits = [fitting_window(n, own, season) for k, n in enumerate(lengths) if (own := of(k))]
    usable = [lookback for lookback, horizon in filter(None, fits) if horizon == options.horizon]
    lookback = min(usable, default=preferred)
    if season <= 1 and lookback >= 2 * SEGMENTS:  # equal segments, model.segment_len=null's
        lookback -= lookback % SEGMENTS
    return lookback


TestRows = list[int] | None  # with data.test_start: each series' rows from then on


def rows_in_test(
    timestamps: np.ndarray, bounds: Sequence[tuple[int, int]], options: DataOptions,
    timezone: str | None = None,
) -> TestRows:  # fmt: skip
    """Each series' rows at or after ``data.test_start`` (its test), None without one."""
    if options.test_start is None:
        return None
    first = start_stamp(options.test_start, timezone)
    return [int(b - a - np.searchsorted(timestamps[a:b], first)) for a, b in bounds]


def start_stamp(when: str | int, timezone: str | None) -> np.datetime64:
    """``data.test_start`` as the UTC ``datetime64[ns]`` timestamps are held in: read in the
    data's zone (``timezone``), an integer as a step of integer steps."""
    try:
        stamp = pd.Timestamp(when, unit="ns") if isinstance(when, int) else pd.Timestamp(when)
    except (ValueError, TypeError):
        raise ForecastError(f"data.test_start={when!r} is not a timestamp") from None
    if stamp.tzinfo is None and timezone is not None and not isinstance(when, int):
        stamp = stamp.tz_localize(timezone)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def series_options(options: DataOptions, tests: TestRows) -> Callable[[int], DataOptions | None]:
    """Series ``k``'s split options: with ``data.test_start``, its own ``test_size`` (its rows
    from then on; None for a series that ends before it), else ``options`` for every series."""
    if tests is None:
        return lambda k: options
    each: dict[int, DataOptions] = {}  # by test rows: most series end together
    unset = replace(options, test_start=None)

    def of(k: int) -> DataOptions | None:
        rows = tests[k]
        if rows > 0 and rows not in each:
            each[rows] = replace(unset, test_size=rows)
        return each.get(rows)

    return of


Segments = dict[str, list[tuple[int, int]]]  # split: each kept series' row range


def series_segments(
    bounds: Sequence[tuple[int, int]], options: DataOptions, season: int,
    name: Callable[[int], str], where: str, tests: TestRows = None,
) -> tuple[Segments, list[int]]:  # fmt: skip
    """Row ranges of every split of every series (``bounds``: each series' rows), checked to
    hold at least one window, and the indices of the series kept: a series too short for a
    split is an error naming it (``name(k)``) and a lookback and horizon that fit it, or
    with ``short_series="drop"`` left out of every split."""
    segments: Segments = {split: [] for split in SPLITS}
    kept = []
    need = options.lookback + options.horizon
    of = series_options(options, tests)
    for k, (start, end) in enumerate(bounds):
        own = of(k)
        if own is None:  # ends before data.test_start
            if options.short_series == "drop":
                continue
            raise ForecastError(
                f"{name(k)} ends before data.test_start={options.test_start}: it has no test; "
                "data.short_series=drop leaves such series out"
            )
        ranges = {s: (start + a, start + b) for s, (a, b) in split_ranges(end - start, own).items()}
        short = [
            (split, b - a)
            for split, (a, b) in ranges.items()
            if window_count(b - a, options.lookback, options.horizon) < 1
        ]
        if short and options.short_series == "drop":
            continue
        if short:
            split, rows = short[0]
            hints = fitting_hint(end - start, own, season, "it")
            if options.series_id:
                hints.append("data.short_series=drop leaves such series out")
            raise ForecastError(
                f"{name(k)}: the {split} split has {rows} rows (with the lookback it may "
                f"borrow), fewer than lookback + horizon = {need}"
                + "".join(f"; {hint}" for hint in hints)
            )
        kept.append(k)
        for split, segment in ranges.items():
            segments[split].append(segment)
    if not kept:
        longest = max(end - start for start, end in bounds)
        hints = fitting_hint(longest, options, season, "the longest series")
        raise ForecastError(
            f"{where}: every series is shorter than its splits need (lookback + horizon = "
            f"{need} rows per split)" + "".join(f"; {hint}" for hint in hints)
        )
    return segments, kept


def fitting_hint(n_rows: int, options: DataOptions, season: int, which: str) -> list[str]:
    """A lookback and horizon that fit a series of ``n_rows`` rows, as a hint, if any do."""
    fit = fitting_window(n_rows, options, season)
    return [f"data.lookback={fit[0]} data.horizon={fit[1]} fit {which}"] if fit else []
