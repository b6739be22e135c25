"""M4's point scores against values worked by hand (issue #22, item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.evaluation.m4 import mase, msis, naive2, owa, score_panel, seasonal, smape


def test_smape_and_mase_by_hand():
    assert smape(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(200 * 2 / 6 / 2)
    # in-sample steps of 1, 2, 3: scale 2; errors 1 and 3: MAE 2
    insample = np.array([1.0, 2.0, 4.0, 7.0])
    assert mase(np.array([8.0, 10.0]), np.array([7.0, 7.0]), insample, 1) == pytest.approx(1.0)
    # at period 2: |4 - 1|, |7 - 2| -> scale 4
    assert mase(np.array([8.0, 10.0]), np.array([7.0, 7.0]), insample, 2) == pytest.approx(0.5)


def test_msis_by_hand():
    """Width 2 at both steps; the second misses by 1 below: 2 + 2 / 0.05 x 1 = 42. Mean 22,
    over the in-sample scale 2 (steps of 1, 2, 3 at period 1)."""
    actual, lower, upper = np.array([5.0, 2.0]), np.array([4.0, 3.0]), np.array([6.0, 5.0])
    insample = np.array([1.0, 2.0, 4.0, 7.0])
    assert msis(actual, lower, upper, insample, 1) == pytest.approx(11.0)
    assert msis(actual, lower, upper, insample, 1, alpha=0.2) == pytest.approx((2 + 12) / 2 / 2)


def test_naive2_continues_a_multiplicative_season_and_is_naive_without_one():
    pattern = np.array([0.5, 1.0, 1.5, 1.0])  # mean 1
    series = 10 * np.tile(pattern, 6)  # 24 steps, an exact multiplicative season
    assert seasonal(series, 4)
    np.testing.assert_allclose(naive2(series, 6, 4), 10 * np.tile(pattern, 2)[:6])
    # the same season, ending mid-period: the forecast picks it up where the series stops
    np.testing.assert_allclose(naive2(series[:-1], 3, 4), 10 * pattern[[3, 0, 1]])
    ramp = np.arange(1.0, 30.0)
    assert not seasonal(ramp, 1) and not seasonal(ramp[:8], 4)  # period 1; under 3 periods
    np.testing.assert_array_equal(naive2(ramp, 3, 1), [29.0, 29.0, 29.0])


def test_owa_of_naive2_itself_is_one_and_halves_with_half_the_errors():
    rng = np.random.default_rng(0)
    insamples = [rng.uniform(10, 20, 30) for _ in range(3)]
    actuals = [rng.uniform(10, 20, 5) for _ in range(3)]
    references = [naive2(x, 5, 1) for x in insamples]
    assert owa(score_panel(actuals, references, insamples, 1)) == pytest.approx(1.0)
    halfway = [a + (r - a) / 2 for a, r in zip(actuals, references, strict=True)]
    scores = score_panel(actuals, halfway, insamples, 1)
    np.testing.assert_allclose(scores.mase, scores.mase_naive2 / 2)
    assert owa(scores) < 1.0


@pytest.mark.parametrize(
    ("file", "horizon", "period", "official"),
    [
        ("m4_hourly.csv", 48, 24, {"naive2": (18.383, 2.395), "seasonal": (13.912, 1.193)}),
        ("m4_weekly.csv", 13, 1, {"naive2": (9.161, 2.777), "seasonal": (9.161, 2.777)}),
    ],
)
def test_the_benchmarks_score_as_m4_published_them(file, horizon, period, official):
    """Naive2 and seasonal naive on the shipped M4 files give the official sMAPE and MASE to
    the published three decimals: the metrics, the seasonality test and the decomposition
    are M4's."""
    from pathlib import Path

    import pandas as pd

    frame = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / file)
    position = frame.groupby("unique_id", sort=False).cumcount(ascending=False)
    groups = {
        "history": frame[position >= horizon].groupby("unique_id", sort=False),
        "test": frame[position < horizon].groupby("unique_id", sort=False),
    }
    insamples = [g.y.to_numpy(float) for _, g in groups["history"]]
    actuals = [g.y.to_numpy(float) for _, g in groups["test"]]
    seasonal_naive = [np.resize(x[-period:], horizon) for x in insamples]
    scores = score_panel(actuals, seasonal_naive, insamples, period)
    assert round(scores.smape_naive2.mean(), 3) == official["naive2"][0]
    assert round(scores.mase_naive2.mean(), 3) == official["naive2"][1]
    assert round(scores.smape.mean(), 3) == official["seasonal"][0]
    assert round(scores.mase.mean(), 3) == official["seasonal"][1]
