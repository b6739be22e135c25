"""Forecasting from a model file alone, and refusing files and inputs that are not right."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import per_site, sine_frame, sites

from forecast import Forecaster, ForecastError
from forecast.serving.checkpoint import load_checkpoint


def test_predict_returns_future_timestamps_in_original_units(trained):
    forecaster = Forecaster.load(trained["model"])
    history = pd.read_csv(trained["csv"])
    future = forecaster.predict(history)
    assert list(future.columns) == ["date", "load", "temp", "price"]
    assert len(future) == 6
    last = pd.Timestamp(history["date"].iloc[-1])
    expected = pd.date_range(last + pd.Timedelta(hours=1), periods=6, freq="h")
    assert list(future["date"]) == list(expected)
    # original units: load swings around 10, temp around 20
    assert 5 < future["load"].mean() < 15 and 15 < future["temp"].mean() < 25


def test_predict_uses_only_the_last_lookback_rows(trained):
    forecaster = Forecaster.load(trained["model"])
    history = pd.read_csv(trained["csv"])
    pd.testing.assert_frame_equal(forecaster.predict(history), forecaster.predict(history.tail(24)))


def test_history_with_repeated_timestamps_merges_as_the_model_was_trained(trained):
    """A model trained with data.duplicates=last applies it to the history it is given."""
    forecaster = Forecaster.load(trained["model"])
    history = pd.read_csv(trained["csv"]).tail(30).reset_index(drop=True)
    repeated = pd.concat(
        [history.iloc[:25], history.iloc[[24]].assign(load=0.0), history.iloc[25:]]
    )
    with pytest.raises(ForecastError, match="timestamps duplicated at data row 25 "):
        forecaster.predict(repeated)
    last = Forecaster(forecaster.net, replace(forecaster.spec, duplicates="last"))
    pd.testing.assert_frame_equal(
        last.predict(repeated),
        last.predict(history.assign(load=history.load.where(history.index != 24, 0.0))),
    )
    first = Forecaster(forecaster.net, replace(forecaster.spec, duplicates="first"))
    pd.testing.assert_frame_equal(first.predict(repeated), forecaster.predict(history))


def test_predict_matches_the_network_on_scaled_input(trained):
    forecaster = Forecaster.load(trained["model"])
    history = pd.read_csv(trained["csv"]).tail(24)
    values = history[["load", "temp", "price"]].to_numpy()
    scaler = forecaster.spec.scaler
    x = torch.tensor(scaler.transform(values), dtype=torch.float32)
    expected = scaler.inverse(forecaster.net(x)[0].detach().numpy())
    got = forecaster.predict(history)[["load", "temp", "price"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_many_series_in_one_call(trained):
    trained_on_one = Forecaster.load(trained["model"])
    # the same model applied per site in long format
    forecaster = Forecaster(trained_on_one.net, replace(trained_on_one.spec, series_id="site"))
    one = sine_frame(30, seed=1).assign(site="north")
    two = sine_frame(40, seed=2).assign(site="south")
    future = forecaster.predict(pd.concat([one, two]))
    assert list(future["site"]) == ["north"] * 6 + ["south"] * 6
    alone = forecaster.predict(two)
    np.testing.assert_allclose(future[future.site == "south"]["load"], alone["load"], rtol=1e-5)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (sine_frame(20), "history has 20 rows, the model needs lookback=24"),
        (sine_frame(30).drop(columns="temp"), r"column\(s\) \['temp'\] not found"),
        (sine_frame(30).assign(load=np.nan), "column 'load' has 30 NaN/inf"),
        (sine_frame(30).iloc[::-1], "timestamps not sorted"),
        (
            sine_frame(30).assign(date=pd.date_range("2024-01-01", periods=30, freq="30min")),
            "expected 2024-01-01 01:00:00 at frequency h",
        ),
    ],
)
def test_bad_history_is_refused(trained, history, message):
    with pytest.raises(ForecastError, match=message):
        Forecaster.load(trained["model"]).predict(history)


def test_truncated_and_foreign_files_are_refused(trained, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(trained["model"].read_bytes()[:2000])
    with pytest.raises(ForecastError, match="not a readable forecast checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ForecastError, match="is not a forecast checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ForecastError, match="not a readable forecast checkpoint"):
        Forecaster.load(text)
    with pytest.raises(ForecastError, match="checkpoint not found"):
        Forecaster.load(tmp_path / "missing.pt")


def test_a_pickle_with_code_is_never_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "forecast.lstm", "payload": Boom()}, evil)
    with pytest.raises(ForecastError, match="not a readable forecast checkpoint"):
        load_checkpoint(evil)


def test_load_from_an_mlflow_run(trained, trained_store):
    import mlflow

    client = mlflow.MlflowClient(trained_store)
    (run,) = client.search_runs([client.get_experiment_by_name("forecast").experiment_id])
    from_run = Forecaster.load(f"runs:/{run.info.run_id}")
    from_file = Forecaster.load(trained["model"])
    history = pd.read_csv(trained["csv"])
    pd.testing.assert_frame_equal(from_run.predict(history), from_file.predict(history))


@pytest.mark.parametrize(
    ("huge", "message"),
    [
        (1e308, r"history: column 'temp' at step 21 is too large for the model once scaled"),
        (1e30, r"history: column '\w+' at step \d+ of the forecast is not finite"),
    ],
)
def test_huge_finite_values_are_refused_not_forecast_as_nan(trained, huge, message):
    """1e308 overflows float32 once scaled; 1e30 fits, but the network's statistics of the
    window overflow: either way an error names the series, never a NaN forecast."""
    forecaster = Forecaster.load(trained["model"])
    history = sine_frame(30)
    history.loc[history.index[-3], "temp"] = huge
    with pytest.raises(ForecastError, match=message):
        forecaster.predict(history)


def test_an_unwritable_output_is_one_error_and_leaves_no_temp_file(tmp_path):
    from forecast.predict import TableWriter

    def write_table(frame: pd.DataFrame, path) -> None:
        with TableWriter(path) as writer:
            writer.write(frame)

    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ForecastError, match=r"cannot write .*missing/f\.csv"):
        write_table(frame, tmp_path / "missing" / "f.csv")
    (tmp_path / "f.csv").mkdir()  # the output's name is taken by a folder: rename fails
    with pytest.raises(ForecastError, match="cannot write"):
        write_table(frame, tmp_path / "f.csv")
    assert (tmp_path / "f.csv").is_dir() and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ForecastError, match=r"cannot write .*: File name too long"):
        write_table(frame, tmp_path / ("x" * 300 + ".csv"))  # the system's limit is 255 bytes


def test_a_forecast_past_the_last_representable_timestamp_is_refused(trained):
    forecaster = Forecaster.load(trained["model"])
    history = sine_frame(30)
    history["date"] = pd.date_range(end="2262-04-11 20:00", periods=30, freq="h")
    with pytest.raises(ForecastError, match=r"history: 6 steps after 2262-04-11 20:00:00 reach"):
        forecaster.predict(history)


def test_future_rows_are_found_for_every_series_in_one_pass():
    """Issue #24, probe 9: the future table's rows of each series, by one grouping of the
    table (a scan per series was quadratic), interleaved and with two id columns."""
    import numpy as np

    from forecast.serving.checks import future_rows

    ids = np.array(["b", "a", "b", "c", "a"], dtype=object)
    rows = future_rows({"id": ids}, ["id"], 5)
    assert {k: list(v) for k, v in rows.items()} == {"b": [0, 2], "a": [1, 4], "c": [3]}
    region = np.array(["x", "x", "y", "y", "x"], dtype=object)
    pairs = future_rows({"id": ids, "region": region}, ["id", "region"], 5)
    assert {k: list(v) for k, v in pairs.items()} == {
        ("b", "x"): [0], ("a", "x"): [1, 4], ("b", "y"): [2], ("c", "y"): [3],
    }  # fmt: skip
    assert list(future_rows({}, [], 3)[""]) == [0, 1, 2]


def test_chunks_of_series_forecast_as_the_whole_table_and_write_every_output_kind(
    trained, tmp_path
):
    from forecast.data.parquet import series_chunks
    from forecast.data.reading import read_table
    from forecast.predict import TableWriter, histories

    forecaster = per_site(trained["model"])
    table = sites(7)
    table.to_parquet(tmp_path / "history.parquet", index=False)
    table.to_parquet(tmp_path / "hive", partition_cols=["site"], index=False)
    whole = forecaster.predict(table)
    chunks = list(series_chunks(tmp_path / "hive", ["date", "site", "load"], ["site"], 3))
    assert [sorted(c.site.unique()) for c in chunks] == [
        ["s0", "s1", "s2"], ["s3", "s4", "s5"], ["s6"]
    ]  # fmt: skip
    assert list(chunks[0].columns) == ["date", "site", "load"]  # only what is asked
    (tmp_path / ".out.csv.tmp").write_text("site,date\nleft by a killed run\n")
    for source in ("history.parquet", "hive"):
        for output in ("out", "out.parquet", "out.csv"):
            with TableWriter(tmp_path / output) as writer:
                for history in histories(tmp_path / source, forecaster.spec, 3):
                    assert "notes" not in history
                    writer.write(forecaster.predict(history))
            written = read_table(tmp_path / output)
            written["date"] = pd.to_datetime(written["date"])
            pd.testing.assert_frame_equal(written, whole, check_dtype=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]  # fmt: skip
    assert not list(tmp_path.glob(".*"))  # the earlier folder and the temp ones are gone


def test_a_failed_chunked_run_leaves_the_earlier_output_as_it_was(trained, tmp_path):
    from forecast.predict import TableWriter, histories

    forecaster = per_site(trained["model"])
    table = sites(6)
    table.loc[table.site == "s4", "load"] = np.nan  # the second chunk cannot be forecast
    table.to_parquet(tmp_path / "history.parquet", index=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "part-00000.parquet").write_bytes(b"yesterday's forecasts")
    with pytest.raises(ForecastError, match="series 's4'"), TableWriter(tmp_path / "out") as w:
        for history in histories(tmp_path / "history.parquet", forecaster.spec, 3):
            w.write(forecaster.predict(history))
    assert (tmp_path / "out" / "part-00000.parquet").read_bytes() == b"yesterday's forecasts"
    assert [p.name for p in tmp_path.iterdir()] == ["history.parquet", "out"]  # no temp left
    by_time = table.assign(load=1.0).sort_values(["date", "site"], kind="stable")
    by_time.to_parquet(tmp_path / "by_time.parquet", index=False)
    with pytest.raises(ForecastError, match=r"series 's0' has rows after other series'"):
        list(histories(tmp_path / "by_time.parquet", forecaster.spec, 3))
