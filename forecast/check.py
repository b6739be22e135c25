"""``forecast-check``: what the loader sees in a data file, and the keys that fix what it
refuses. The same config as ``forecast-train``; nothing is trained.

    forecast-check data=csv data.path=raw.csv data.series_id=store

Prints each series' rows, span, gaps, duplicates and missing values, each column's type and
missing values, the windows of every split, then every problem with the config key that
fixes it (for series too short: a lookback and horizon that fit every series). Exits 1 when
training with this config would be refused (the loader itself is the judge), 0 when it
would start.

Built for large files: one pass of array operations over all rows, whatever the number of
series, beside the read itself (the benchmark pages measure it).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from forecast.config import check_config, exit_on_error
from forecast.data.advice import Problem, problems, report, verdict, window_lines, with_lookback
from forecast.data.datamodule import ForecastDataModule
from forecast.data.options import DataOptions
from forecast.data.profile import profile
from forecast.data.reading import read_table
from forecast.errors import ForecastError
from forecast.reference import CONF_DIR


def check(cfg: DictConfig) -> int:
    """Print what the data holds and every problem with its fix; 1 if training would stop."""
    check_config(cfg)
    values = OmegaConf.to_container(cfg.data, resolve=True)
    options = DataOptions(**{k: v for k, v in values.items() if k != "_target_"})
    source = str(options.path)
    frame = read_table(options.path, options)
    try:
        found = profile(frame, options, source)
    except ForecastError as err:  # the timestamps themselves: nothing else can be measured
        print(f"{source}: {len(frame):,} rows, columns {list(frame.columns)}")
        print(f"problem: {err}\nforecast-check: training would stop on the problem above")
        return 1
    options = with_lookback(found, options)
    windows, short = window_lines(found, options)
    listed = problems(found, frame, options) + short
    if not any(p.stops for p in listed):
        # the loader has the last word: covariates, categories, what a profile misses
        try:
            ForecastDataModule(**options.values()).setup()
        except ForecastError as err:
            listed.append(Problem(str(err), "", True))
    print("\n".join([*report(found, options, source), "", windows, "", *verdict(listed, options)]))
    return 1 if any(p.stops for p in listed) else 0


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="check")
@exit_on_error
def main(cfg: DictConfig) -> None:
    sys.exit(check(cfg))


if __name__ == "__main__":
    main()
