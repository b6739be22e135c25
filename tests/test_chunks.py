"""A Parquet table sorted by series is set up a chunk of whole series at a time, exactly as the
same table read whole; a table whose series interleave is read whole; the statistics merged
over chunks are the table's; timestamps are held per series, as the rows they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecast.data import chunks as chunks_module
from forecast.data.chunks import TableChunks
from forecast.data.clock import SeriesClock
from forecast.data.datamodule import ForecastDataModule
from forecast.data.options import DataOptions
from forecast.data.scaling import Moments
from forecast.errors import ForecastError

KEYS = {
    "timestamp": "date", "series_id": "store", "horizon": 4, "lookback": 8, "batch_size": 16,
    "future_covariates": ["price", "event"], "static_covariates": ["size", "region"],
    "categorical": ["event", "region"], "calendar": ["dayofweek"], "fill_gaps": "interpolate",
}  # fmt: skip


def panel(series: int = 7, steps: int = 60) -> pd.DataFrame:
    """Stores of different lengths and levels, a day missing in one (filled, not scored), a
    numeric and a categorical future covariate and a numeric and a categorical static one."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(series):
        n = steps + 5 * k
        t = np.arange(n)
        frame = pd.DataFrame({
            "date": pd.date_range("2021-01-01", periods=n, freq="D"),
            "store": f"s{k}",
            "sales": 10.0**k * (5 + np.sin(t / 3) + rng.normal(0, 0.1, n)),
            "price": rng.uniform(1, 2, n),
            "event": rng.choice(["none", "sale", "holiday"], n),
            "size": float(k + 1),
            "region": "north" if k % 2 else "south",
        })  # fmt: skip
        frames.append(frame.drop(index=20) if k == 3 else frame)
    return pd.concat(frames, ignore_index=True)


def set_up(path, **keys) -> ForecastDataModule:
    dm = ForecastDataModule(str(path), **(KEYS | keys))
    dm.setup()
    return dm


def whole(monkeypatch, path, **keys) -> ForecastDataModule:
    """The table read whole, as a CSV file or a DDP rank's share is."""
    with monkeypatch.context() as patch:
        patch.setattr(chunks_module, "streamable", lambda *_: None)
        return set_up(path, **keys)


def chunk_sizes(path, **keys) -> list[int]:
    """The series in each chunk the table is read in."""
    chunks = TableChunks(str(path), DataOptions(path=str(path), **(KEYS | keys)))
    return [len(chunk.series.bounds) for chunk in chunks]


@pytest.mark.parametrize("scaling", ["series", "column"])
def test_a_table_read_in_chunks_of_series_sets_up_exactly_as_read_whole(
    tmp_path, monkeypatch, scaling
):
    panel().to_parquet(tmp_path / "panel.parquet", index=False, row_group_size=50)
    monkeypatch.setattr(chunks_module, "CHUNK_ROWS", 100)  # a chunk is one or two series
    sizes = chunk_sizes(tmp_path / "panel.parquet", scaling=scaling)
    assert len(sizes) > 3 and sum(sizes) == 7 and max(sizes) > 1
    streamed = set_up(tmp_path / "panel.parquet", scaling=scaling)
    read = whole(monkeypatch, tmp_path / "panel.parquet", scaling=scaling)
    assert streamed.series_ids == read.series_ids and streamed.bounds == read.bounds
    for name in ("values", "future", "static", "truth"):
        torch.testing.assert_close(
            getattr(streamed, name), getattr(read, name), rtol=0, atol=0, equal_nan=True
        )
    assert torch.isnan(streamed.truth).sum() == 1  # the day filled in store s3
    assert streamed.spec.to_dict() == read.spec.to_dict()
    np.testing.assert_array_equal(streamed.timestamps[:], read.timestamps[:])
    np.testing.assert_array_equal(streamed.scalers.mean, read.scalers.mean)
    assert streamed.changes() == read.changes()
    for column, values in read.last_covariates.items():
        np.testing.assert_array_equal(streamed.last_covariates[column], values)
        assert len(values) == 12  # lookback + horizon rows of the first series
    for split in ("train", "val", "test"):
        a, b = streamed.datasets[split], read.datasets[split]
        assert len(a) == len(b) > 0
        for left, right in zip(a[len(a) - 1], b[len(b) - 1], strict=True):
            torch.testing.assert_close(left, right, rtol=0, atol=0)


def test_statistics_are_the_training_rows_own(tmp_path, monkeypatch):
    """Exact values: the column scaler is the mean and std of every series' training rows."""
    frame = panel().drop(columns=["event", "region"])
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    monkeypatch.setattr(chunks_module, "CHUNK_ROWS", 100)
    keys = {"future_covariates": ["price"], "static_covariates": ["size"], "categorical": [],
            "scaling": "column", "fill_gaps": None}  # fmt: skip
    frame = frame[frame.store != "s3"]  # a gap, refused without fill_gaps: left out
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    dm = set_up(tmp_path / "panel.parquet", **keys)
    train = [frame.sales.to_numpy()[a:b] for a, b in dm.segments["train"]]
    rows = np.concatenate(train)
    np.testing.assert_allclose(dm.spec.scaler.mean, [rows.mean()], rtol=1e-12)
    np.testing.assert_allclose(dm.spec.scaler.std, [rows.std()], rtol=1e-12)
    price = np.concatenate([frame.price.to_numpy()[a:b] for a, b in dm.segments["train"]])
    np.testing.assert_allclose(dm.spec.future_scaler.mean, [price.mean()], rtol=1e-12)


def test_a_table_whose_series_interleave_is_read_whole(tmp_path, monkeypatch):
    frame = panel(series=3)
    by_time = frame.sort_values(["date", "store"], kind="stable", ignore_index=True)
    by_time.to_parquet(tmp_path / "by_time.parquet", index=False)
    frame.to_parquet(tmp_path / "by_series.parquet", index=False)
    monkeypatch.setattr(chunks_module, "CHUNK_ROWS", 50)
    interleaved = set_up(tmp_path / "by_time.parquet")
    torch.testing.assert_close(
        interleaved.values, set_up(tmp_path / "by_series.parquet").values, rtol=0, atol=0
    )


def test_a_message_names_the_row_of_the_file_in_a_later_chunk(tmp_path, monkeypatch):
    frame = panel(series=4).drop(columns=["event", "region"])
    frame.loc[250, "sales"] = np.nan  # in store s3, the fourth chunk
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    monkeypatch.setattr(chunks_module, "CHUNK_ROWS", 60)
    keys = {"future_covariates": ["price"], "categorical": [], "static_covariates": ["size"],
            "fill_gaps": "zero"}  # fmt: skip
    with pytest.raises(ForecastError, match=r"series 's3'.*data row 250 \(0-based\)"):
        set_up(tmp_path / "panel.parquet", **keys)


def test_moments_merged_over_parts_are_the_whole_arrays():
    rng = np.random.default_rng(1)
    values = 1e6 + rng.normal(0, 3, (1000, 3))
    values[:, 2] = 7.0  # constant: takes the given std
    moments = Moments.empty(3)
    for part in np.array_split(values, [1, 10, 400, 401]):
        moments.add(part, chunk_rows=64)
    scaler = moments.scaler(constant_std=5.0)
    np.testing.assert_allclose(scaler.mean, values.mean(0), rtol=1e-14)
    np.testing.assert_allclose(scaler.std[:2], values.std(0)[:2], rtol=1e-10)
    assert scaler.std[2] == 5.0


def test_a_clock_holds_series_by_first_stamp_and_step_and_indexes_as_the_rows():
    hourly = pd.date_range("2021-03-27", periods=50, freq="h").to_numpy()
    monthly = pd.date_range("2021-01-01", periods=14, freq="MS").to_numpy()  # uneven steps
    single = np.array(["2021-01-01"], "datetime64[ns]")
    rows = np.concatenate([hourly, monthly, single])
    clock = SeriesClock()
    clock.extend(rows[:64], [(0, 50), (50, 64)])
    clock.extend(rows[64:], [(0, 1)])
    assert len(clock) == 65 and list(clock.uneven) == [1]
    np.testing.assert_array_equal(clock[:], rows)
    np.testing.assert_array_equal(clock[45:60], rows[45:60])
    picked = np.array([64, 0, 51, 49, 63])
    np.testing.assert_array_equal(clock[picked], rows[picked])
    assert clock[-1] == rows[-1] and clock[50] == rows[50]
    with pytest.raises(IndexError):
        clock[65]


def one_series(rows: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    t = np.arange(rows)
    return pd.DataFrame({
        "date": pd.date_range("2021-01-01", periods=rows, freq="h"),
        "load": 1e4 + 50 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 5, rows),
        "temp": rng.normal(10, 3, rows),
    })  # fmt: skip


ONE = {"timestamp": "date", "horizon": 6, "lookback": 24, "batch_size": 16,
       "future_covariates": ["temp"], "calendar": ["hour"]}  # fmt: skip


@pytest.mark.parametrize("gap", [False, True])
def test_one_series_without_ids_is_read_in_chunks_of_rows_as_read_whole(tmp_path, monkeypatch, gap):
    """In chunks of rows that go on from each other; a gap the rules fill needs the rows on
    both sides of it, so that table is read whole, to the same result."""
    frame = one_series()
    keys = ONE | ({"fill_gaps": "interpolate"} if gap else {})
    (frame.drop(index=1700) if gap else frame).to_parquet(tmp_path / "one.parquet", index=False)
    monkeypatch.setattr(chunks_module, "CHUNK_ROWS", 500)
    options = DataOptions(path=str(tmp_path / "one.parquet"), **keys)
    chunks = TableChunks(str(tmp_path / "one.parquet"), options)
    if gap:
        with pytest.raises(ForecastError, match="read whole"):
            list(chunks)
    else:
        parts = list(chunks)
        assert len(parts) == 6 and [c.continues for c in parts] == [False] + [True] * 5
    streamed = ForecastDataModule(str(tmp_path / "one.parquet"), **keys)
    streamed.setup()
    with monkeypatch.context() as patch:
        patch.setattr(chunks_module, "streamable", lambda *_: None)
        read = ForecastDataModule(str(tmp_path / "one.parquet"), **keys)
        read.setup()
    assert streamed.bounds == read.bounds == [(0, 3000)] and streamed.series_ids == [""]
    assert streamed.spec.lookback == 24 and len(streamed.timestamps.starts) == 1
    np.testing.assert_array_equal(streamed.timestamps[:], read.timestamps[:])
    np.testing.assert_allclose(streamed.spec.scaler.mean, read.spec.scaler.mean, rtol=1e-14)
    np.testing.assert_allclose(streamed.spec.scaler.std, read.spec.scaler.std, rtol=1e-12)
    np.testing.assert_allclose(streamed.spec.future_scaler.std, read.spec.future_scaler.std,
                               rtol=1e-12)  # fmt: skip
    for name in ("values", "future"):
        torch.testing.assert_close(
            getattr(streamed, name), getattr(read, name), rtol=1e-6, atol=1e-6
        )
    for split in ("train", "val", "test"):
        assert len(streamed.datasets[split]) == len(read.datasets[split]) > 0


def test_rows_of_one_series_that_do_not_go_on_from_the_last_chunk_are_read_whole(
    tmp_path, monkeypatch
):
    frame = one_series()
    frame.loc[1000:, "date"] += pd.Timedelta(minutes=30)  # off the hourly grid from row 1000
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    monkeypatch.setattr(chunks_module, "CHUNK_ROWS", 500)
    with pytest.raises(ForecastError, match=r"at data row 1000 \(0-based\) is 2021-02-11 16:30"):
        ForecastDataModule(str(tmp_path / "one.parquet"), **ONE).setup()
