"""``forecast-check``: what the loader sees in a data file, and the keys that fix what it
refuses. The same config as ``forecast-train``; nothing is trained.

    forecast-check data=csv data.path=raw.csv data.series_id=store

Prints each series' rows, span, gaps, duplicates and missing values, each column's type and
missing values, the windows of every split, then every problem with the config key that
fixes it (for series too short: a lookback and horizon that fit every series). Exits 1 when
training with this config would be refused (the loader itself is the judge), 0 when it
would start.

Built for large files: one pass of array operations over all rows, whatever the number of
series, beside the read itself (README, "Bringing your own data", measures it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import hydra
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from forecast.config import CONF_DIR, check_config, exit_on_error
from forecast.data import (
    INFER_ROWS,
    as_list,
    feature_columns,
    head_frequency,
    read_table,
    read_timestamps,
    season_from_freq,
    usual_step,
)
from forecast.errors import ForecastError
from forecast.windows import (
    SPLITS,
    ForecastDataModule,
    fitting_window,
    split_ranges,
    window_count,
)

SHOWN = 10  # series listed one by one; the rest are summed up


@dataclass
class Profile:
    """What a table holds, per series (arrays in order of first appearance) and per column."""

    ids: list
    rows: np.ndarray
    first: np.ndarray  # datetime64[ns], the earliest timestamp of each series
    last: np.ndarray
    duplicates: np.ndarray  # rows repeating the timestamp of the row before
    unsorted: np.ndarray  # rows earlier than the row before
    missing_steps: np.ndarray  # timestamps absent between first and last at the frequency
    off_grid: np.ndarray  # steps that are not a whole number of the frequency
    missing_values: np.ndarray  # NaN/inf among the features, per series
    freq: str | None
    # the first gaps: (series, the timestamp before, steps missing)
    gaps: list[tuple] = field(default_factory=list)
    # each column: name, type, NaN count, whether constant
    columns: list[tuple[str, str, int, bool]] = field(default_factory=list)


def profile(frame: pd.DataFrame, data: DictConfig, source: str) -> Profile:
    """Every statistic at once, vectorized over rows: the series are laid out contiguously (by
    one stable sort of their codes, when the file interleaves them), so neighbours in a series
    are neighbours in the arrays."""
    id_columns = as_list(data.series_id) or []
    stamp_columns = as_list(data.timestamp) or []
    missing = [c for c in [*stamp_columns, *id_columns] if c not in frame.columns]
    if missing:
        raise ForecastError(
            f"{source}: column(s) {missing} not found (data.timestamp, data.series_id); "
            f"available: {list(frame.columns)}"
        )
    stamps = read_timestamps(
        frame,
        stamp_columns,
        data.get("timestamp_format"),
        data.get("timezone"),
        source,
        id_columns,
    )
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert(None)
    stamps = stamps.to_numpy("datetime64[ns]")
    codes = np.zeros(len(frame), dtype=np.int64)
    if id_columns:  # numbered in order of first appearance
        codes = frame.groupby(id_columns, sort=False, dropna=False).ngroup().to_numpy()
    # A long table usually holds each series in one block already: then no sort, no copies.
    grouped = bool((codes[1:] >= codes[:-1]).all())
    order = slice(None) if grouped else np.argsort(codes, kind="stable")
    ids = [""]
    if id_columns:
        first_rows = (
            np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
            if grouped
            else np.unique(codes, return_index=True)[1]
        )
        keys = frame[id_columns].iloc[first_rows].itertuples(index=False, name=None)
        ids = [key[0] if len(id_columns) == 1 else key for key in keys]
    codes, stamps = codes[order], stamps[order]
    rows = np.bincount(codes, minlength=len(ids))
    starts = np.r_[0, np.cumsum(rows)[:-1]]
    nanos = stamps.view(np.int64)
    steps = np.diff(nanos)  # steps[i]: row i to row i + 1, of series codes[i + 1]
    series_of = codes[1:]
    freq = data.get("freq") or _infer_freq(stamps[: min(rows[0], INFER_ROWS)], steps)
    step = _fixed_step(freq)
    # A step from one series into the next is no step at all: made one of the usual size, it
    # counts as nothing below, and the large arrays are never copied to leave it out.
    steps[starts[1:] - 1] = step or 1

    def count(where: np.ndarray) -> np.ndarray:
        return np.bincount(series_of[where], minlength=len(ids))

    missing_steps = np.zeros(len(ids), dtype=np.int64)
    off_grid = np.zeros(len(ids), dtype=np.int64)
    gaps: list[tuple] = []
    if step:
        unusual = np.flatnonzero(steps != step)  # few in any file worth training on
        odd = unusual[steps[unusual] > 0]
        off_grid = count(odd[steps[odd] % step != 0])
        wide = odd[steps[odd] > step]
        missing = steps[wide] // step - 1
        missing_steps = np.bincount(series_of[wide], missing, minlength=len(ids)).astype(int)
        gaps = [
            (ids[series_of[p]], pd.Timestamp(stamps[p]), int(m))
            for p, m in zip(wide[:3], missing[:3], strict=True)
        ]
    elif freq:  # calendar steps: each series against its own calendar
        for k, (a, n) in enumerate(zip(starts, rows, strict=True)):
            block = np.unique(stamps[a : a + n])
            calendar = pd.date_range(block[0], block[-1], freq=freq)
            missing_steps[k] = max(0, len(calendar) - len(block))
            off_grid[k] = len(np.setdiff1d(block, calendar.to_numpy("datetime64[ns]")))
    bad_rows = np.zeros(len(frame), dtype=np.int64)  # NaN/inf among the features, per row
    for column in _features(frame, data, id_columns):
        bad_rows += ~np.isfinite(frame[column].to_numpy(np.float64, na_value=np.nan))
    first = np.minimum.reduceat(nanos, starts).view("datetime64[ns]")
    last = np.maximum.reduceat(nanos, starts).view("datetime64[ns]")
    return Profile(
        ids=ids,
        rows=rows,
        first=first,
        last=last,
        duplicates=count(np.flatnonzero(steps == 0)),
        unsorted=count(np.flatnonzero(steps < 0)),
        missing_steps=missing_steps,
        off_grid=off_grid,
        missing_values=np.bincount(codes, weights=bad_rows[order], minlength=len(ids)).astype(int),
        freq=freq,
        gaps=gaps,
        columns=_columns(frame),
    )


def _infer_freq(head: np.ndarray, steps: np.ndarray) -> str | None:
    """The first series' frequency as the loader infers it, else the most common of the first
    steps."""
    inferred = head_frequency(np.unique(head))  # in order, without repeats, as the loader
    if inferred is not None:
        return inferred
    first = steps[: 100 * INFER_ROWS]
    step = usual_step(first[first > 0])
    return None if step is None else pd.tseries.frequencies.to_offset(pd.Timedelta(step)).freqstr


def _fixed_step(freq: str | None) -> int | None:
    """Nanoseconds per step of a fixed-length frequency (hours, days); None for calendar ones."""
    if freq is None:
        return None
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value
    except ValueError:  # months, quarters, weeks anchored on a weekday
        return None


def _features(frame: pd.DataFrame, data: DictConfig, id_columns: list[str]) -> list[str]:
    """The numeric columns the loader would take as features."""
    skip = [*(as_list(data.timestamp) or []), *id_columns, *_covariates(data)]
    columns = feature_columns(frame.columns, data.get("features"), skip)
    return [c for c in columns if c in frame.columns and _numeric(frame[c])]


def _covariates(data: DictConfig) -> set[str]:
    return {
        *(as_list(data.get("future_covariates")) or []),
        *(as_list(data.get("static_covariates")) or []),
    }


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and column.dtype != bool


def _columns(frame: pd.DataFrame) -> list[tuple[str, str, int, bool]]:
    out = []
    for name in frame.columns:
        column = frame[name]
        kind = "number" if _numeric(column) else str(column.dtype)
        missing = int(column.isna().sum())
        if _numeric(column):
            values = column.to_numpy(np.float64, na_value=np.nan)
            finite = values[np.isfinite(values)]
            missing = int(len(values) - len(finite))
            constant = len(finite) > 0 and finite.min() == finite.max()
        else:
            constant = column.nunique(dropna=True) <= 1
        out.append((str(name), kind, missing, bool(constant)))
    return out


@dataclass
class Problem:
    text: str
    fix: str  # the keys that fix it
    stops: bool  # whether training with this config would stop on it
    key: str | None = None  # the data key that handles it once set


def problems(found: Profile, frame: pd.DataFrame, data: DictConfig) -> list[Problem]:
    """Each problem the profile shows, in the order the loader meets them."""
    out = []
    id_columns = as_list(data.series_id) or []
    features = _features(frame, data, id_columns)
    named = as_list(data.get("features"))
    text = [c for c in (named or frame.columns) if c in frame.columns and not _numeric(frame[c])]
    text = [c for c in text if c not in {*(as_list(data.timestamp) or []), *id_columns}]
    covariates = {
        *(as_list(data.get("future_covariates")) or []),
        *(as_list(data.get("static_covariates")) or []),
    }
    text = [c for c in text if c not in covariates]
    if text:
        out.append(Problem(
            f"non-numeric column(s) {text}",
            f"data.features={_listed([c for c in features if c not in covariates])} leaves them "
            "out; data.static_covariates or data.future_covariates with data.categorical uses "
            "them as categories",
            True,
        ))  # fmt: skip
    if found.duplicates.sum():
        out.append(Problem(
            f"{int(found.duplicates.sum())} row(s) repeat the timestamp of the row before",
            "data.duplicates=first, last or mean merges them",
            data.get("duplicates", "error") == "error",
            "duplicates",
        ))  # fmt: skip
    if found.unsorted.sum():
        out.append(Problem(
            f"{int(found.unsorted.sum())} row(s) are earlier than the row before",
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
            data.get("fill_gaps") is None,
            "fill_gaps",
        ))  # fmt: skip
    if found.missing_values.sum():
        out.append(Problem(
            f"{int(found.missing_values.sum())} NaN/inf value(s) in the features",
            "data.fill_missing=interpolate (or ffill) fills them",
            data.get("fill_missing") is None,
            "fill_missing",
        ))  # fmt: skip
    return out


def _listed(columns: list[str]) -> str:
    return "[" + ",".join(columns) + "]"


def window_table(found: Profile, data: DictConfig) -> tuple[dict[str, int], list, tuple | None]:
    """Windows of each split over the series (their rows after gap filling), the series too
    short for a split, and a lookback and horizon that fit every series."""
    lookback, horizon = data.lookback, data.horizon
    ratios, borders = (  # plain lists: OmegaConf's are slow to read, once per series
        None if data.get(key) is None else list(data.get(key))
        for key in ("split_ratios", "split_borders")
    )
    season = season_from_freq(found.freq) if found.freq else 1
    windows = dict.fromkeys(SPLITS, 0)
    short, fits = [], []
    for key, n in zip(found.ids, found.rows - found.duplicates + found.missing_steps, strict=True):
        try:
            ranges = split_ranges(int(n), ratios, borders, lookback)
        except ForecastError:
            short.append(key)
            continue
        counts = {split: window_count(b - a, lookback, horizon) for split, (a, b) in ranges.items()}
        if min(counts.values()) < 1:
            short.append(key)
        else:
            for split, c in counts.items():
                windows[split] += c
        fits.append(fitting_window(int(n), ratios, borders, lookback, horizon, season))
    fit = None
    if all(fits):
        fit = (min(f[0] for f in fits), min(f[1] for f in fits))
        if season > 1 and fit[0] >= season:
            fit = (fit[0] - fit[0] % season, fit[1])
    return windows, short, fit


def report(found: Profile, data: DictConfig, source: str) -> list[str]:
    """The per-series and per-column tables."""
    steps = not as_list(data.timestamp)  # rows numbered 0, 1, ... (held as nanoseconds)
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
    if not data.series_id:
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
        name = f"series {key!r}: " if data.series_id else ""
        lines.append(f"gap: {name}{missing} step(s) missing after {after}")
    columns = pd.DataFrame(found.columns, columns=["column", "type", "NaN", "constant"])
    lines += ["", columns.to_string(index=False)]
    return lines


def check(cfg: DictConfig) -> int:
    """Print what the data holds and every problem with its fix; 1 if training would stop."""
    check_config(cfg)
    data = cfg.data
    source = str(data.path)
    frame = read_table(
        data.path, data.get("max_rows"), data.get("header", True), data.get("columns")
    )
    lines: list[str] = []
    try:
        found = profile(frame, data, source)
    except ForecastError as err:  # the timestamps themselves: nothing else can be measured
        print(f"{source}: {len(frame):,} rows, columns {list(frame.columns)}")
        print(f"problem: {err}\nforecast-check: training would stop on the problem above")
        return 1
    lines += report(found, data, source)
    listed = problems(found, frame, data)
    windows, short, fit = window_table(found, data)
    lines.append("")
    lines.append(
        f"windows (lookback {data.lookback}, horizon {data.horizon}): "
        + ", ".join(f"{split} {count:,}" for split, count in windows.items())
    )
    fits = (
        f"data.lookback={fit[0]} data.horizon={fit[1]} fit every split of every series"
        if fit
        else None
    )
    if short:
        shown = ", ".join(repr(k) for k in short[:5]) + (", ..." if len(short) > 5 else "")
        stops = data.get("short_series", "error") == "error" or len(short) == len(found.ids)
        fixes = [fits] if fits else []
        if data.series_id:
            fixes.append("data.short_series=drop leaves them out")
        listed.append(Problem(
            f"{len(short)} series too short for lookback + horizon in a split: {shown}",
            "; ".join(fixes),
            stops,
            "short_series",
        ))  # fmt: skip
    stops = any(p.stops for p in listed)
    if not stops:  # the loader has the last word: covariates, categories, what a profile misses
        try:
            datamodule: ForecastDataModule = instantiate(data)
            datamodule.setup()
        except ForecastError as err:
            listed.append(Problem(str(err), "", True))
            stops = True
    lines.append("")
    for problem in listed:
        if not problem.stops:
            lines.append(f"handled: {problem.text} (data.{problem.key}={data.get(problem.key)})")
        else:
            lines.append(
                f"problem: {problem.text}" + (f"\n    fix: {problem.fix}" if problem.fix else "")
            )
    lines.append(
        "forecast-check: training would stop on the problems above"
        if stops
        else "forecast-check: training would start"
    )
    print("\n".join(lines))
    return 1 if stops else 0


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="check")
@exit_on_error
def main(cfg: DictConfig) -> None:
    sys.exit(check(cfg))


if __name__ == "__main__":
    main()
