"""Files as they come (issue #12): each data option on a small table with exact values, its
round trip to the forecast output, and the default refusing the same problem by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import coded_frame

from forecast import Forecaster, ForecastError
from forecast.data.datamodule import ForecastDataModule
from forecast.data.options import DataOptions
from forecast.data.series import prepare_series
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet


def prepare(frame: pd.DataFrame, **kwargs):
    """prepare_series with the data options among ``kwargs``, the rest its own keywords."""
    fields = set(DataOptions.__dataclass_fields__)
    options = DataOptions(
        features=kwargs.pop("features", ["a"]), **{k: v for k, v in kwargs.items() if k in fields}
    )
    return prepare_series(frame, options, **{k: v for k, v in kwargs.items() if k not in fields})


def gap_of_three() -> pd.DataFrame:
    """Hourly a = 1 at 00:00, 5 at 04:00 (01:00 to 03:00 missing), 6 at 05:00."""
    stamps = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 04:00", "2024-01-01 05:00"])
    stamps = stamps.append(pd.date_range("2024-01-01 06:00", periods=3, freq="h"))
    return pd.DataFrame({"date": stamps, "a": [1.0, 5.0, 6.0, 7.0, 8.0, 9.0]})


@pytest.mark.parametrize(
    ("how", "filled"),
    [("ffill", [1, 1, 1]), ("interpolate", [2, 3, 4]), ("zero", [0, 0, 0])],
)
def test_a_gap_of_three_steps_is_filled_each_way(how, filled):
    series = prepare(gap_of_three(), fill_gaps=how)
    assert series.values[:, 0].tolist() == [1, *filled, 5, 6, 7, 8, 9]
    expected = pd.date_range("2024-01-01", periods=9, freq="h").to_numpy("datetime64[ns]")
    np.testing.assert_array_equal(series.timestamps, expected)
    assert series.inserted == 3 and series.freq == "h"
    assert series.rows.tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5]  # covariates: the row before


def test_the_default_refuses_a_gap_naming_data_fill_gaps():
    with pytest.raises(ForecastError, match=r"data row 1 \(0-based\).*data\.fill_gaps="):
        prepare(gap_of_three())


def test_gaps_in_a_weekly_file_are_filled_on_its_weekday():
    stamps = pd.date_range("2024-01-07", periods=8, freq="W-SUN").delete([3, 4])
    series = prepare(pd.DataFrame({"date": stamps, "a": np.arange(6.0)}), fill_gaps="interpolate")
    assert series.freq == "W-SUN" and series.inserted == 2
    assert series.values[:, 0].tolist() == [0, 1, 2, 2 + 1 / 3, 2 + 2 / 3, 3, 4, 5]


def test_a_timestamp_off_the_frequency_cannot_be_filled_around():
    frame = gap_of_three()
    frame.loc[1, "date"] = pd.Timestamp("2024-01-01 04:30")
    with pytest.raises(ForecastError, match=r"not on the steps of h from 2024-01-01 00:00:00"):
        prepare(frame, fill_gaps="ffill", freq="h")


@pytest.mark.parametrize(
    ("stamps", "freq"),
    [
        (["2024-01-01", "2024-01-02", "2115-09-01"], "D"),  # calendar days: about 33,000 rows
        (["2024-01-01", "2024-01-08", "2250-01-05"], "W-MON"),
        (["2024-01-01", "2024-02-01", "2250-01-01"], "MS"),
        # minutes over 550 years: their nanoseconds' difference wraps around int64
        (["1700-01-01 00:00", "1700-01-01 00:01", "2250-01-01 00:00"], "min"),
    ],
)
def test_gap_filling_is_refused_before_the_grid_is_built(stamps, freq):
    """A wrong far-away timestamp would make millions of rows (gigabytes, then a traceback):
    every frequency is bounded, calendar ones and spans past 292 years included."""
    frame = pd.DataFrame({"date": pd.to_datetime(stamps), "a": [1.0, 2.0, 3.0]})
    with pytest.raises(ForecastError, match=r"would make about \d+ rows out of 3"):
        prepare(frame, fill_gaps="ffill", freq=freq)


def test_nan_at_the_start_says_which_rule_fills_it():
    frame = coded_frame(6)
    frame.loc[:1, "a"] = np.nan
    with pytest.raises(ForecastError, match=r"first 2 row.*data\.fill_missing=interpolate fills"):
        prepare(frame, fill_missing="ffill")
    series = prepare(frame, fill_missing="interpolate")
    assert series.values[:3, 0].tolist() == [200, 200, 200] and series.filled == 2


def composite_frame() -> pd.DataFrame:
    """Two series named by (Region, State), hourly, with the time spread over four columns."""
    frames = []
    for k, (region, state) in enumerate([("north", "NSW"), ("north", "QLD")]):
        stamps = pd.date_range("2024-03-01 20:00", periods=40, freq="h")
        frames.append(
            pd.DataFrame(
                {
                    "Region": region,
                    "State": state,
                    "year": stamps.year,
                    "month": stamps.month,
                    "day": stamps.day,
                    "hour": stamps.hour,
                    "load": 10.0 * k + np.sin(np.arange(40)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def untrained(datamodule: ForecastDataModule) -> Forecaster:
    """A forecaster from the data's contract and random weights: enough for its columns."""
    datamodule.setup()
    torch_net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1), datamodule.spec)
    return Forecaster(torch_net, datamodule.spec)


def composite_module(tmp_path, **options) -> tuple[ForecastDataModule, Path]:
    """The composite file on disk and its DataModule (time in four columns, ids in two)."""
    path = tmp_path / "parts.csv"
    composite_frame().to_csv(path, index=False)
    datamodule = ForecastDataModule(
        str(path),
        lookback=8,
        horizon=3,
        timestamp=["year", "month", "day", "hour"],
        series_id=["Region", "State"],
        split_ratios=[0.5, 0.25, 0.25],
        **options,
    )
    return datamodule, path


def test_composite_timestamp_and_id_round_trip_to_the_forecast(tmp_path):
    datamodule, path = composite_module(tmp_path)
    forecaster = untrained(datamodule)
    assert datamodule.series_ids == [("north", "NSW"), ("north", "QLD")]
    out = forecaster.predict(pd.read_csv(path))
    assert list(out.columns) == ["Region", "State", "year", "month", "day", "hour", "load"]
    assert out[["Region", "State"]].drop_duplicates().values.tolist() == [
        ["north", "NSW"],
        ["north", "QLD"],
    ]
    # the history ends 2024-03-03 11:00: the forecasts are 12:00 to 14:00 of that day
    assert out[["year", "month", "day", "hour"]].values[:3].tolist() == [
        [2024, 3, 3, 12],
        [2024, 3, 3, 13],
        [2024, 3, 3, 14],
    ]


def test_date_and_time_columns_join_and_come_back_apart(tmp_path):
    frame = coded_frame(30)
    frame.insert(0, "day", frame.pop("date").dt.strftime("%d.%m.%Y"))
    frame.insert(1, "time", pd.date_range("2024-01-01", periods=30, freq="h").strftime("%H:%M"))
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    datamodule = ForecastDataModule(
        str(path),
        lookback=4,
        horizon=2,
        timestamp=["day", "time"],
        timestamp_format="%d.%m.%Y %H:%M",
        split_ratios=[0.5, 0.25, 0.25],
    )
    out = untrained(datamodule).predict(frame)
    expected = [["02.01.2024", "06:00"], ["02.01.2024", "07:00"]]
    assert out[["day", "time"]].values.tolist() == expected


def test_quarterly_labels_with_three_id_columns(tmp_path):
    rows = [
        {"Quarter": f"{1998 + q // 4} Q{q % 4 + 1}", "Region": r, "State": "S", "Purpose": p}
        | {"Trips": float(q + 10 * k)}
        for k, (r, p) in enumerate([("A", "Holiday"), ("A", "Visiting"), ("B", "Holiday")])
        for q in range(24 if k < 2 else 6)  # the third series is too short
    ]
    path = tmp_path / "tourism.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    datamodule = ForecastDataModule(
        str(path),
        lookback=4,
        horizon=2,
        timestamp="Quarter",
        series_id=["Region", "State", "Purpose"],
        short_series="drop",
        split_ratios=[0.5, 0.25, 0.25],
    )
    out = untrained(datamodule).predict(pd.read_csv(path).iloc[:48])
    assert datamodule.spec.freq == "QS-JAN"
    assert datamodule.short_series_dropped == [("B", "S", "Holiday")]
    counts = {c[0]: c[1] for c in datamodule.changes()}
    assert counts["data_series_dropped"] == 1
    assert out["Quarter"].iloc[:2].tolist() == [pd.Timestamp(d) for d in ("2004-01", "2004-04")]
    assert list(out.columns[:3]) == ["Region", "State", "Purpose"]


def dst_frame(offsets: bool) -> pd.DataFrame:
    """Hourly Berlin local time over the night clocks went back (2024-10-27, 03:00 -> 02:00)."""
    stamps = pd.date_range("2024-10-26 22:00", periods=60, freq="h", tz="Europe/Berlin")
    text = stamps.strftime("%Y-%m-%d %H:%M:%S%z" if offsets else "%Y-%m-%d %H:%M:%S")
    return pd.DataFrame({"date": text, "a": np.arange(60.0)})


def test_mixed_offsets_are_refused_naming_data_timezone_and_converted_with_it():
    with pytest.raises(ForecastError, match=r"mixes UTC offsets.*set data\.timezone"):
        prepare(dst_frame(offsets=True))
    series = prepare(dst_frame(offsets=True), timezone="Europe/Berlin")
    assert series.freq == "h" and series.timezone == "Europe/Berlin" and len(series.values) == 60


def test_naive_local_times_across_the_change_read_in_their_zone():
    with pytest.raises(ForecastError, match=r"duplicated at data row 5 .*data\.timezone"):
        prepare(dst_frame(offsets=False))  # 02:00 and 02:00 again
    series = prepare(dst_frame(offsets=False), timezone="Europe/Berlin")
    steps = np.diff(series.timestamps).astype("timedelta64[h]").astype(int)
    assert series.freq == "h" and set(steps.tolist()) == {1}


def test_a_model_with_a_zone_forecasts_in_it(tmp_path):
    path = tmp_path / "dst.csv"
    dst_frame(offsets=True).to_csv(path, index=False)
    datamodule = ForecastDataModule(
        str(path), lookback=6, horizon=2, timezone="Europe/Berlin", split_ratios=[0.5, 0.25, 0.25]
    )
    out = untrained(datamodule).predict(dst_frame(offsets=False))  # naive: read as Berlin time
    # 60 hours after 2024-10-26 22:00 CEST is 2024-10-29 09:00 CET: the clock went back once
    assert out["date"].astype(str).tolist() == [
        "2024-10-29 09:00:00+01:00",
        "2024-10-29 10:00:00+01:00",
    ]


def test_a_file_without_header_reads_with_data_columns(tmp_path):
    path = tmp_path / "raw.csv"
    coded_frame(20).to_csv(path, index=False, header=False)
    datamodule = ForecastDataModule(
        str(path),
        lookback=2,
        horizon=1,
        header=False,
        columns=["date", "a", "b", "c"],
        split_ratios=[0.5, 0.25, 0.25],
    )
    datamodule.setup()
    assert datamodule.spec.features == ["a", "b", "c"] and len(datamodule.timestamps) == 20
    with pytest.raises(ForecastError, match=r"data\.columns names 3 columns, the file's first"):
        ForecastDataModule(str(path), header=False, columns=["date", "a", "b"]).setup()
    # without data.columns the columns are 0, 1, 2, ...: the time column is named by position
    by_position = ForecastDataModule(str(path), lookback=2, horizon=1, header=False,
                                     timestamp="0", split_ratios=[0.5, 0.25, 0.25])  # fmt: skip
    by_position.setup()
    assert by_position.spec.features == ["1", "2", "3"]


def test_without_timestamps_rows_are_steps_and_forecasts_go_on_from_the_last(tmp_path):
    path = tmp_path / "steps.csv"
    frame = pd.DataFrame({"id": ["x"] * 20 + ["y"] * 30, "a": np.arange(50.0)})
    frame.to_csv(path, index=False)
    datamodule = ForecastDataModule(
        str(path), lookback=4, horizon=2, timestamp=None, series_id="id",
        split_ratios=[0.5, 0.25, 0.25],
    )  # fmt: skip
    out = untrained(datamodule).predict(frame)
    assert list(out.columns) == ["id", "step", "a"]
    assert out["step"].tolist() == [20, 21, 30, 31]


def test_an_integer_time_column_is_steps_written_back_as_integers(tmp_path):
    """``t`` of 100, 105, ...: steps of 5, not nanoseconds since 1970; forecasts go on from the
    last step, in a file and over HTTP alike."""
    from fastapi.testclient import TestClient

    from forecast.serving.app import create_app

    path = tmp_path / "periods.csv"
    frame = pd.DataFrame({"t": 100 + 5 * np.arange(40), "a": np.sin(np.arange(40.0))})
    frame.to_csv(path, index=False)
    datamodule = ForecastDataModule(str(path), lookback=4, horizon=2, timestamp="t",
                                    split_ratios=[0.5, 0.25, 0.25])  # fmt: skip
    forecaster = untrained(datamodule)
    assert forecaster.spec.integer_time and forecaster.spec.freq == "5ns"
    out = forecaster.predict(frame)
    assert list(out.columns) == ["t", "a"] and out["t"].tolist() == [300, 305]
    rows = frame.tail(4).to_dict(orient="records")
    answer = TestClient(create_app(forecaster, "periods")).post(
        "/forecast", json={"series": [{"data": rows}]}
    )
    assert answer.status_code == 200, answer.text
    assert [r["t"] for r in answer.json()["forecasts"][0]["data"]] == [300, 305]


def test_row_numbers_are_file_lines(tmp_path):
    path = tmp_path / "nan.csv"
    frame = coded_frame(30)
    frame.loc[7, "b"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(ForecastError, match=r"'b' has 1 NaN/inf value.*first at file line 9"):
        ForecastDataModule(str(path), lookback=4, horizon=2).setup()
    assert path.read_text().splitlines()[8].split(",")[2] == ""  # line 9 is that row


def intermittent_sales(tmp_path):
    """Daily sales of 3 items, mostly zeros: Poisson counts around a weekly pattern."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-01-01", periods=200, freq="D")
    frames = []
    for item in range(3):
        rate = 0.3 + 0.6 * (days.dayofweek >= 5) * (item + 1)
        sales = rng.poisson(rate)
        frames.append(pd.DataFrame({"unique_id": f"item{item}", "ds": days, "y": sales}))
    path = tmp_path / "sales.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("loss", ["poisson", "tweedie"])
def test_a_count_model_forecasts_no_negative_sales(tmp_path, loss):
    from helpers import compose_config

    from forecast.train import train

    path = intermittent_sales(tmp_path)
    cfg = compose_config(
        tmp_path,
        [
            f"data.path={path}",
            "data.timestamp=ds",
            "data.series_id=unique_id",
            "data.lookback=14",
            "data.horizon=7",
            f"model.loss={loss}",
            "model.instance_norm=false",
            "trainer.max_epochs=3",
        ],
    )
    metrics = train(cfg)
    assert np.isfinite(metrics["test_loss"]) and metrics["test_rmse_orig"] > 0
    forecaster = Forecaster.load(tmp_path / "run" / "model.pt")
    assert forecaster.net.config.loss == loss
    out = forecaster.predict(pd.read_csv(path))
    assert len(out) == 21 and (out["y"] >= 0).all()
    # the bare network too: softplus on the data's units, whatever the weights
    for p in forecaster.net.parameters():
        p.data.normal_(0, 5.0)
    assert (forecaster.predict(pd.read_csv(path))["y"] >= 0).all()


def test_the_server_reads_and_writes_the_time_as_the_file_had_it(tmp_path):
    """Composite timestamps in a request, in local time across a daylight-saving change."""
    from fastapi.testclient import TestClient

    from forecast.serving.app import create_app

    datamodule, path = composite_module(tmp_path, timezone="Europe/Berlin")
    frame = pd.read_csv(path)
    client = TestClient(create_app(untrained(datamodule), "m"))
    rows = frame.iloc[:40].drop(columns=["Region", "State"]).to_dict(orient="records")
    answer = client.post("/forecast", json={"series": [{"id": "NSW", "data": rows}]})
    assert answer.status_code == 200, answer.text
    data = answer.json()["forecasts"][0]["data"]
    assert [(r["day"], r["hour"]) for r in data] == [(3, 12), (3, 13), (3, 14)]
    assert set(data[0]) == {"year", "month", "day", "hour", "load"}
    del rows[5]["hour"]
    refused = client.post("/forecast", json={"series": [{"id": "NSW", "data": rows}]})
    assert refused.status_code == 422 and "missing column(s) ['hour']" in refused.text


def test_months_parse_without_a_format_and_their_gaps_need_the_frequency():
    months = pd.date_range("2011-01", periods=8, freq="MS").strftime("%Y-%m").delete(4)
    frame = pd.DataFrame({"date": months, "a": np.arange(7.0)})
    with pytest.raises(ForecastError, match=r"may be months or quarters; set data\.freq"):
        prepare(frame, fill_gaps="interpolate")
    series = prepare(frame, fill_gaps="interpolate", freq="MS")
    assert series.freq == "MS" and series.inserted == 1
    assert series.values[:, 0].tolist() == [0, 1, 2, 3, 3.5, 4, 5, 6]


@pytest.mark.parametrize(("freq", "season"), [("10min", 144), ("W-SUN", 52), ("MS", 12), ("QS", 4)])
def test_seasonal_periods_of_the_usual_frequencies(freq, season):
    from forecast.data.clock import season_from_freq

    assert season_from_freq(freq) == season


@pytest.mark.parametrize("freq", ["D", None])
def test_daily_data_in_a_zone_with_daylight_saving_steps_in_local_days(tmp_path, freq):
    """Local midnights across the end of March in Berlin are 23 hours apart once in UTC: the
    steps are checked, and forecasts made, in local days (issue #24, probe 6)."""
    path = tmp_path / "daily.csv"
    days = pd.date_range("2024-03-01", periods=60, freq="D", tz="Europe/Berlin")
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "a": np.sin(np.arange(60.0))})
    frame.to_csv(path, index=False)
    datamodule = ForecastDataModule(
        str(path), lookback=7, horizon=3, timezone="Europe/Berlin", freq=freq,
        split_ratios=[0.6, 0.2, 0.2],
    )  # fmt: skip
    forecaster = untrained(datamodule)
    assert forecaster.spec.freq == "D"
    out = forecaster.predict(frame.head(29))  # to 2024-03-29: the forecast spans the change
    assert out["date"].astype(str).tolist() == [
        "2024-03-30 00:00:00+01:00", "2024-03-31 00:00:00+01:00", "2024-04-01 00:00:00+02:00",
    ]  # fmt: skip
