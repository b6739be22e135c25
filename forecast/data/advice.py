"""``forecast-check``'s verdict on a profiled table: every problem the loader would meet, with
the key that fixes it, the windows of each split, and the tables it prints."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecast.data.options import DataOptions, as_list
from forecast.data.profile import (
    Profile,
    covariate_columns,
    feature_candidates,
    fixed_step,
    is_numeric,
)
from forecast.data.reading import file_rows
from forecast.data.splits import (
    SPLITS,
    TestRows,
    derived_lookback,
    fitting_window,
    series_options,
    split_ranges,
    start_stamp,
)
from forecast.data.windows import window_count
from forecast.errors import ForecastError

SHOWN = 10  # series listed one by one; the rest are summed up


@dataclass
class Problem:
    text: str
    fix: str  # the keys that fix it
    stops: bool  # whether training with this config would stop on it
    key: str | None = None  # the data key that handles it once set


def problems(found: Profile, frame: pd.DataFrame, options: DataOptions) -> list[Problem]:
    """Each problem the profile shows, in the order the loader meets them."""
    out = [*series_of(found, frame, options), *text_columns(frame, options)]
    counting = counters(frame, options)
    if counting and not any(p.text.startswith("non-numeric") for p in out):
        features = feature_candidates(frame, options, as_list(options.series_id) or [])
        out.append(Problem(
            f"column(s) {counting} count the rows (1, 2, 3, ...): a row number, not a measurement",
            f"data.features={_listed([c for c in features if c not in counting])} leaves them out",
            False,
        ))  # fmt: skip
    if found.duplicates.sum():
        out.append(Problem(
            f"{int(found.duplicates.sum())} row(s) repeat the timestamp of the row before",
            "data.duplicates=first, last or mean merges them",
            options.duplicates == "error",
            "duplicates",
        ))  # fmt: skip
    if found.unsorted.sum():
        first = file_rows(str(options.path), options.header)(found.first_unsorted)
        out.append(Problem(
            f"{int(found.unsorted.sum())} row(s) are earlier than the row before, the first "
            f"at {first}",
            "no key: sort the rows of each series by time",
            True,
        ))  # fmt: skip
    if found.off_grid.sum():
        out.append(Problem(
            f"{int(found.off_grid.sum())} step(s) are not a whole number of {found.freq}",
            "data.freq names the data's frequency (e.g. h, 15min, D, W-SUN, MS)",
            True,
        ))  # fmt: skip
    if found.missing_steps.sum():
        out.append(Problem(
            f"{int(found.missing_steps.sum())} timestamp(s) missing at {found.freq} in "
            f"{int((found.missing_steps > 0).sum())} series",
            "data.fill_gaps=ffill, interpolate or zero inserts and fills them",
            options.fill_gaps is None,
            "fill_gaps",
        ))  # fmt: skip
    if found.missing_values.sum():
        out.append(Problem(
            f"{int(found.missing_values.sum())} NaN/inf value(s) in the features",
            "data.fill_missing=interpolate (or ffill) fills them",
            options.fill_missing is None,
            "fill_missing",
        ))  # fmt: skip
    return out


def series_of(found: Profile, frame: pd.DataFrame, options: DataOptions) -> list[Problem]:
    """A table without data.series_id whose timestamps repeat once per value of a text or
    integer column holds several series: that column names them."""
    stamps = as_list(options.timestamp) or []
    if options.series_id or not stamps or not (found.duplicates.sum() or found.unsorted.sum()):
        return []
    for column in frame.columns:
        kind = frame[column].dtype.kind
        if column in stamps or (is_numeric(frame[column]) and kind not in "iu"):
            continue
        groups = frame[column].nunique()
        if 1 < groups <= len(frame) // 2 and not frame.duplicated([column, *stamps]).any():
            return [Problem(
                f"the timestamps repeat once per value of column {column!r}: a table of "
                f"{groups} series",
                f"data.series_id={column}",
                True,
            )]  # fmt: skip
    return []


def counters(frame: pd.DataFrame, options: DataOptions) -> list[str]:
    """Feature columns that count the rows (1, 2, 3, ...): a row number, not a measurement."""
    out = []
    for column in feature_candidates(frame, options, as_list(options.series_id) or []):
        values = frame[column].to_numpy()
        if values.dtype.kind in "iu" and len(values) > 2 and (np.diff(values) == 1).all():
            out.append(column)
    return out


def text_columns(frame: pd.DataFrame, options: DataOptions) -> list[Problem]:
    """Text columns among the features: the loader refuses them."""
    id_columns = as_list(options.series_id) or []
    features = feature_candidates(frame, options, id_columns)
    covariates = covariate_columns(options)
    named = options.features or frame.columns
    skip = {*(as_list(options.timestamp) or []), *id_columns, *covariates}
    text = [c for c in named if c in frame.columns and not is_numeric(frame[c]) and c not in skip]
    if not text:
        return []
    counting = counters(frame, options)
    kept = _listed([c for c in features if c not in covariates and c not in counting])
    why = f" (and the row counter(s) {counting})" if counting else ""
    return [Problem(
        f"non-numeric column(s) {text}",
        f"data.categorical={_listed(text)} takes them as categories observed with the "
        "series (name them in data.future_covariates or data.static_covariates too if known "
        f"ahead or fixed per series); data.features={kept} leaves them out{why}",
        True,
    )]  # fmt: skip


def _listed(columns: list[str]) -> str:
    return "[" + ",".join(columns) + "]"


def with_lookback(found: Profile, options: DataOptions) -> DataOptions:
    """``options`` with ``data.lookback=null`` resolved as training resolves it."""
    if options.lookback is not None:
        return options
    lengths = [int(n) for n in found.loaded_rows]
    lookback = derived_lookback(lengths, options, found.season, profile_tests(found, options))
    return replace(options, lookback=lookback)


def profile_tests(found: Profile, options: DataOptions) -> TestRows:
    """Each series' rows from ``data.test_start`` on, as the loader will count them (gaps
    filled): from its last timestamp and the frequency."""
    if options.test_start is None:
        return None
    if found.freq is None:
        raise ForecastError(
            "data.test_start: the test rows cannot be counted without a frequency; set data.freq"
        )
    first, step = start_stamp(options.test_start, options.timezone), fixed_step(found.freq)
    if step is not None:  # hours, days: by arithmetic, for any number of series at once
        rows = (found.last - first).astype(np.int64) // step + 1
        return np.where(found.last >= first, rows, 0).tolist()
    return [  # months, quarters: by the calendar
        len(pd.date_range(first, last, freq=found.freq)) if last >= first else 0
        for last in pd.DatetimeIndex(found.last)
    ]


def window_table(found: Profile, options: DataOptions) -> tuple[dict[str, int], list, tuple | None]:
    """Windows of each split over the series (their rows after gap filling), the series too
    short for a split, and a lookback and horizon that fit every series."""
    lookback, horizon = options.lookback, options.horizon
    windows = dict.fromkeys(SPLITS, 0)
    short, fits = [], []
    of = series_options(options, profile_tests(found, options))
    for k, (key, n) in enumerate(zip(found.ids, found.loaded_rows, strict=True)):
        own = of(k)
        if own is None:  # ends before data.test_start
            short.append(key)
            fits.append(None)
            continue
        fits.append(fitting_window(int(n), own, found.season))
        try:
            ranges = split_ranges(int(n), own)
        except ForecastError:
            short.append(key)
            continue
        counts = {split: window_count(b - a, lookback, horizon) for split, (a, b) in ranges.items()}
        if min(counts.values()) < 1:
            short.append(key)
        else:
            for split, c in counts.items():
                windows[split] += c
    fit = None
    if all(fits):
        fit = (min(f[0] for f in fits), min(f[1] for f in fits))
        season = found.season
        if season > 1 and fit[0] >= season:
            fit = (fit[0] - fit[0] % season, fit[1])
    return windows, short, fit


def report(found: Profile, options: DataOptions, source: str) -> list[str]:
    """The per-series and per-column tables."""
    steps = not as_list(options.timestamp)  # rows numbered 0, 1, ... (held as nanoseconds)
    frequency = "integer steps" if steps else found.freq or "not inferred"
    lines = [f"{source}: {int(found.rows.sum()):,} rows, {len(found.ids):,} series, "
             f"frequency {frequency}"]  # fmt: skip
    ends = pd.DatetimeIndex(np.r_[found.first, found.last])
    stamp_format = "%Y-%m-%d" if (ends == ends.normalize()).all() else "%Y-%m-%d %H:%M:%S"
    first, last = (
        (found.first.view(np.int64), found.last.view(np.int64))
        if steps
        else (
            ends[: len(found.ids)].strftime(stamp_format),
            ends[len(found.ids) :].strftime(stamp_format),
        )
    )
    table = pd.DataFrame({
        "series": [str(k) for k in found.ids],
        "rows": found.rows,
        "first": first,
        "last": last,
        "missing steps": found.missing_steps,
        "duplicates": found.duplicates,
        "unsorted": found.unsorted,
        "NaN": found.missing_values,
    })  # fmt: skip
    if not options.series_id:
        table = table.drop(columns="series")
    lines.append(table.head(SHOWN).to_string(index=False))
    if len(table) > SHOWN:
        rest = table.iloc[SHOWN:]
        lines.append(
            f"... {len(rest):,} more series: rows {rest['rows'].min()} to {rest['rows'].max()}, "
            f"{int(rest['missing steps'].sum())} missing steps, "
            f"{int(rest['duplicates'].sum())} duplicates, {int(rest['NaN'].sum())} NaN"
        )
    for key, after, missing in found.gaps:
        name = f"series {key!r}: " if options.series_id else ""
        lines.append(f"gap: {name}{missing} step(s) missing after {after}")
    columns = pd.DataFrame(found.columns, columns=["column", "type", "NaN", "constant"])
    lines += ["", columns.to_string(index=False)]
    return lines


def window_lines(found: Profile, options: DataOptions) -> tuple[str, list[Problem]]:
    """The line of each split's windows, and the problem of series too short for them."""
    windows, short, fit = window_table(found, options)
    line = f"windows (lookback {options.lookback}, horizon {options.horizon}): " + ", ".join(
        f"{split} {count:,}" for split, count in windows.items()
    )
    if not short:
        return line, []
    fixes = [
        f"data.lookback={fit[0]} data.horizon={fit[1]} fit every split of every series"
    ] if fit else []  # fmt: skip
    if options.series_id:
        fixes.append("data.short_series=drop leaves them out")
    shown = ", ".join(repr(k) for k in short[:5]) + (", ..." if len(short) > 5 else "")
    stops = options.short_series == "error" or len(short) == len(found.ids)
    return line, [Problem(
        f"{len(short)} series too short for lookback + horizon in a split: {shown}",
        "; ".join(fixes),
        stops,
        "short_series",
    )]  # fmt: skip


def verdict(listed: list[Problem], options: DataOptions) -> list[str]:
    """Each problem with its fix (or the key that handles it), then whether training would
    start."""
    lines = []
    for problem in listed:
        if not problem.stops and problem.key is None:  # training would go on, unhelped
            lines.append(f"note: {problem.text}\n    fix: {problem.fix}")
        elif not problem.stops:
            value = getattr(options, problem.key)
            lines.append(f"handled: {problem.text} (data.{problem.key}={value})")
        else:
            lines.append(
                f"problem: {problem.text}" + (f"\n    fix: {problem.fix}" if problem.fix else "")
            )
    stops = any(p.stops for p in listed)
    lines.append(
        "forecast-check: training would stop on the problems above"
        if stops
        else "forecast-check: training would start"
    )
    return lines
