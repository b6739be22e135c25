"""The season of integer-step data, found in its values (issue #22, item 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast.data.seasonality import detect_season

REPO = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(0)
t = np.arange(1000)


@pytest.mark.parametrize(
    ("series", "season"),
    [
        ([np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(1000)], 24),
        ([np.sin(2 * np.pi * t / 7) + 0.3 * rng.standard_normal(1000)], 7),
        ([np.sin(2 * np.pi * np.arange(60) / 4) + 0.3 * rng.standard_normal(60)], 4),
        # a weekly echo over a daily cycle: still daily
        ([np.sin(2 * np.pi * t / 24) + 1.2 * np.sin(2 * np.pi * t / 168)], 24),
        ([rng.standard_normal(1000)], 1),  # noise
        ([np.cumsum(rng.standard_normal(1000))], 1),  # a random walk: no trough at half a period
        ([t + rng.standard_normal(1000)], 1),  # a trend
        ([np.sin(2 * np.pi * np.arange(60) / 24)], 1),  # under three periods
    ],
)
def test_a_season_is_found_where_there_is_one(series, season):
    assert detect_season(series) == season


@pytest.mark.parametrize(("file", "season"), [("m4_hourly.csv", 24), ("m4_weekly.csv", 1)])
def test_the_m4_files_show_the_periods_m4_scores_them_at(file, season):
    frame = pd.read_csv(REPO / "data" / file)
    series = [g.y.to_numpy(float) for _, g in frame.groupby("unique_id", sort=False)]
    assert detect_season(series) == season


def test_integer_step_data_gets_its_season_and_dated_data_its_frequencys(tmp_path):
    from forecast.data.datamodule import ForecastDataModule

    n = 600
    y = 10 + np.sin(2 * np.pi * np.arange(n) / 24) + 0.1 * rng.standard_normal(n)
    pd.DataFrame({"step": np.arange(n), "y": y}).to_csv(tmp_path / "s.csv", index=False)
    dm = ForecastDataModule(str(tmp_path / "s.csv"), horizon=12, timestamp="step")
    dm.setup()
    assert dm.season == 24 and dm.derived == {"season": 24, "data.lookback": 168}  # a week
    dated = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="D"), "y": y})
    dated.to_csv(tmp_path / "d.csv", index=False)
    dm = ForecastDataModule(str(tmp_path / "d.csv"), horizon=12, lookback=28)
    dm.setup()
    assert dm.season == 7 and dm.derived == {}  # days: a week, whatever the values show
