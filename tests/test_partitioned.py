"""A data set written as a folder of Parquet files (Spark, DuckDB, polars, pandas) reads as the
single file would, its files in name order, and a folder that breaks a series' order is
refused naming the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecast.data.datamodule import ForecastDataModule
from forecast.data.parquet import parquet_files
from forecast.data.reading import read_table
from forecast.errors import ForecastError

KEYS = {"timestamp": "date", "series_id": "store", "horizon": 4, "lookback": 8}


def panel(series: int = 3, steps: int = 60) -> pd.DataFrame:
    """``series`` stores of ``steps`` days, their levels far apart, with a future covariate."""
    rng = np.random.default_rng(0)
    t = np.arange(steps)
    return pd.concat(
        pd.DataFrame(
            {
                "date": pd.date_range("2021-01-01", periods=steps, freq="D"),
                "store": f"s{k}",
                "sales": 10.0**k * (5 + np.sin(t / 3) + rng.normal(0, 0.1, steps)),
                "price": rng.uniform(1, 2, steps),
            }
        )
        for k in range(series)
    ).reset_index(drop=True)


def setup(path, **keys) -> ForecastDataModule:
    dm = ForecastDataModule(str(path), batch_size=16, **(KEYS | keys))
    dm.setup()
    return dm


def write_by_time(frame: pd.DataFrame, folder, parts: int) -> None:
    """As Spark writes a table ordered by time: ``part-<k>`` files without padding, so that
    ``part-10`` sorts before ``part-2`` by text and after it by number."""
    folder.mkdir()
    steps = frame.groupby("store").cumcount()
    for k, rows in enumerate(np.array_split(np.argsort(steps, kind="stable"), parts)):
        frame.iloc[np.sort(rows)].to_parquet(folder / f"part-{k}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.parquet.crc").write_bytes(b"\0")


def assert_same_data(a: ForecastDataModule, b: ForecastDataModule) -> None:
    assert a.series_ids == b.series_ids and a.bounds == b.bounds
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    torch.testing.assert_close(a.future, b.future, rtol=0, atol=0)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.spec.series_scaler.mean, b.spec.series_scaler.mean)
    future = [dm.spec.future_scaler for dm in (a, b)]
    assert future == [None, None] or future[0].to_dict() == future[1].to_dict()
    for split in ("train", "val", "test"):
        assert len(a.datasets[split]) == len(b.datasets[split]) > 0


def test_a_hive_partitioned_folder_trains_on_the_same_data_as_the_single_file(tmp_path):
    frame = panel()
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    frame.to_parquet(tmp_path / "hive", partition_cols=["store"], index=False)
    assert sorted(p.parent.name for p in parquet_files(tmp_path / "hive")) == [
        "store=s0", "store=s1", "store=s2"
    ]  # fmt: skip
    keys = {"future_covariates": ["price"]}
    assert_same_data(setup(tmp_path / "one.parquet", **keys), setup(tmp_path / "hive", **keys))


def test_files_are_read_in_name_order_with_numbers_compared_as_numbers(tmp_path):
    frame = panel(steps=48)
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    write_by_time(frame, tmp_path / "spark", parts=12)
    names = [p.name for p in parquet_files(tmp_path / "spark")]
    assert names == [f"part-{k}.parquet" for k in range(12)]  # _SUCCESS, .crc skipped
    read = read_table(tmp_path / "spark").sort_values(["store", "date"], kind="stable")
    pd.testing.assert_frame_equal(read.reset_index(drop=True), frame)
    assert_same_data(setup(tmp_path / "one.parquet"), setup(tmp_path / "spark"))


def test_a_series_whose_files_break_its_time_order_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "spark"
    write_by_time(panel(steps=48), folder, parts=3)  # days 1-16, 17-32, 33-48
    (folder / "part-1.parquet").rename(folder / "part-9.parquet")  # days 17-32 now read last
    with pytest.raises(ForecastError, match=r"series 's0': timestamps not sorted at data row 0 "
                       r"\(0-based\) of part-9\.parquet \(2021-01-17"):  # fmt: skip
        setup(folder)


def test_a_folder_that_is_not_one_table_is_refused_by_name(tmp_path, caplog):
    with pytest.raises(ForecastError, match=r"is a folder without \.parquet files"):
        read_table(tmp_path)
    frame = panel()
    (tmp_path / "mixed").mkdir()
    frame.iloc[:90].to_parquet(tmp_path / "mixed" / "a.parquet", index=False)
    frame.iloc[90:].drop(columns="price").to_parquet(tmp_path / "mixed" / "b.parquet")
    with pytest.raises(ForecastError, match=r"the files hold different columns: b\.parquet has"):
        read_table(tmp_path / "mixed")
    (tmp_path / "mixed" / "b.parquet").unlink()
    (tmp_path / "mixed" / "notes.txt").write_text("written by hand")
    assert len(read_table(tmp_path / "mixed")) == 90
    assert "skipped 1 file(s) that are not .parquet, e.g. notes.txt" in caplog.text


def test_the_row_bound_counts_every_file_of_a_folder(tmp_path):
    from forecast.data.options import DataOptions

    panel().to_parquet(tmp_path / "hive", partition_cols=["store"], index=False)
    with pytest.raises(ForecastError, match=r"has 180 rows, more than data\.max_rows=179 rows"):
        read_table(tmp_path / "hive", DataOptions(max_rows=179))
    assert len(read_table(tmp_path / "hive", DataOptions(max_rows=180))) == 180


def test_series_in_runs_are_read_in_place_and_interleaved_ones_alike():
    """A table sorted by series keeps its own order (no row index); the same rows
    interleaved give the same series, ids in order of first appearance."""
    from forecast.data.options import DataOptions
    from forecast.data.series import prepare_series

    options = DataOptions(timestamp="date", series_id="store")
    frame = panel(steps=20)
    assert prepare_series(frame, options, dtype=None).values.dtype == np.float64
    counts = frame.assign(sales=np.arange(60, dtype=np.int32) + 100_000_000)  # 1e8 + 1: exact
    kept = prepare_series(counts.drop(columns="price"), options, dtype=None).values
    assert kept.dtype == np.float64 and kept[1, 0] - kept[0, 0] == 1
    frame = frame.astype({"store": "category", "sales": np.float32, "price": np.float32})
    runs = prepare_series(frame, options, dtype=None)  # float32 columns: no wider copy
    assert runs.rows is None and runs.values.dtype == np.float32
    assert runs.bounds == [(0, 20), (20, 40), (40, 60)]
    np.testing.assert_array_equal(runs.values, frame[["sales", "price"]].to_numpy())
    shuffled = frame.iloc[np.argsort(np.tile(np.arange(20), 3), kind="stable")]  # by time
    mixed = prepare_series(shuffled.reset_index(drop=True), options, dtype=None)
    assert mixed.series_ids == runs.series_ids == ["s0", "s1", "s2"]
    assert mixed.bounds == runs.bounds
    np.testing.assert_array_equal(mixed.rows[:4], [0, 3, 6, 9])  # s0's rows, every third
    np.testing.assert_array_equal(mixed.values, runs.values)
    np.testing.assert_array_equal(mixed.timestamps, runs.timestamps)
