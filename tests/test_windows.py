from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ETTH1, coded_frame

from forecast.data.datamodule import ForecastDataModule
from forecast.data.windows import WindowDataset
from forecast.errors import ForecastError
from forecast.evaluation.spans import span, window_origins


def datamodule(tmp_path, frame: pd.DataFrame, **kwargs) -> ForecastDataModule:
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    dm = ForecastDataModule(path=str(path), **kwargs)
    dm.setup()
    return dm


def unscale(dm: ForecastDataModule, tensor: torch.Tensor, columns: list[int]) -> np.ndarray:
    return dm.spec.scaler.select(columns).inverse(tensor.numpy())


def test_dataset_windows_are_exact_rows():
    values = torch.arange(20, dtype=torch.float32).reshape(10, 2)  # row i = [2i, 2i + 1]
    dataset = WindowDataset(values, [(0, 10)], lookback=3, horizon=2, target_index=[1])
    assert len(dataset) == 10 - 3 - 2 + 1
    x, y, *_ = dataset[4]
    assert x.shape == (3, 2) and y.shape == (2, 1)
    torch.testing.assert_close(x, values[4:7])
    torch.testing.assert_close(y, values[7:9, [1]])
    torch.testing.assert_close(dataset[-1][0], values[5:8])
    with pytest.raises(IndexError):
        dataset[6]


def test_dataset_shares_memory_with_the_array():
    values = torch.zeros(100, 3)
    dataset = WindowDataset(values, [(0, 100)], lookback=10, horizon=5, target_index=[0])
    assert dataset.windows.untyped_storage().data_ptr() == values.untyped_storage().data_ptr()


def test_batch_gather_equals_item_by_item():
    values = torch.randn(50, 3)
    dataset = WindowDataset(values, [(0, 20), (20, 50)], lookback=4, horizon=3, target_index=[0, 2])
    index = torch.tensor([0, 13, 14, 37])
    x, y, *_ = dataset[index]
    assert x.shape == (4, 4, 3) and y.shape == (4, 3, 2)
    for row, i in enumerate(index.tolist()):
        torch.testing.assert_close(x[row], dataset[i][0])
        torch.testing.assert_close(y[row], dataset[i][1])


def test_no_window_crosses_a_segment_end():
    values = torch.arange(30, dtype=torch.float32).unsqueeze(1)
    dataset = WindowDataset(values, [(0, 10), (10, 30)], lookback=3, horizon=2, target_index=[0])
    assert len(dataset) == 6 + 16
    x, y, *_ = dataset[torch.arange(len(dataset))]
    rows = torch.cat([x, y], dim=1)[..., 0]  # (windows, lookback + horizon) row numbers
    assert torch.equal(rows[5], torch.arange(5, 10.0))  # last window of the first segment
    assert torch.equal(rows[6], torch.arange(10, 15.0))  # first window of the second
    assert ((rows < 10).all(dim=1) | (rows >= 10).all(dim=1)).all()


def test_splits_windows_and_reach_back_on_a_coded_frame(tmp_path):
    dm = datamodule(tmp_path, coded_frame(40), lookback=4, horizon=2, split_borders=[20, 30, 40])
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 15, "val": 9, "test": 9}
    x, y, *_ = dm.datasets["val"][0]
    # First val window: inputs are the last 4 train rows, targets the first 2 val rows.
    np.testing.assert_allclose(unscale(dm, x, [0, 1, 2])[:, 0], [1600, 1700, 1800, 1900], atol=1e-3)
    np.testing.assert_allclose(unscale(dm, y, [0, 1, 2])[:, 2], [2002, 2102], atol=1e-3)
    x, y, *_ = dm.datasets["train"][len(dm.datasets["train"]) - 1]
    np.testing.assert_allclose(unscale(dm, y, [0, 1, 2])[-1, 0], 1900, atol=1e-3)  # last train row
    x, y, *_ = dm.datasets["test"][8]
    np.testing.assert_allclose(unscale(dm, y, [0, 1, 2])[:, 1], [3801, 3901], atol=1e-3)


def test_scaler_fits_training_rows_only(tmp_path):
    dm = datamodule(tmp_path, coded_frame(40), lookback=4, horizon=2, split_borders=[20, 30, 40])
    rows = 100.0 * np.arange(20)
    np.testing.assert_array_equal(dm.spec.scaler.mean, rows.mean() + np.arange(3))
    np.testing.assert_allclose(dm.spec.scaler.std, [rows.std()] * 3)
    assert dm.spec.to_dict()["scaler"]["mean"] == [950.0, 951.0, 952.0]


def test_targets_are_a_subset_in_given_order(tmp_path):
    dm = datamodule(tmp_path, coded_frame(30), lookback=3, horizon=2, targets=["c", "a"])
    assert dm.spec.target_index == [2, 0]
    _, y, *_ = dm.datasets["train"][0]
    np.testing.assert_allclose(unscale(dm, y, [2, 0]), [[302, 300], [402, 400]], atol=1e-3)
    with pytest.raises(ForecastError, match=r"targets \['z'\] are not among the features"):
        datamodule(tmp_path, coded_frame(30), lookback=3, horizon=2, targets="z")


def test_many_series_are_windowed_separately(tmp_path):
    frame = pd.concat(
        [coded_frame(30).assign(id="x"), coded_frame(50).assign(id="y", a=lambda f: -f.a - 1)]
    )
    dm = datamodule(
        tmp_path, frame, lookback=3, horizon=2, series_id="id", split_ratios=[0.6, 0.2, 0.2]
    )
    # per series: train 18 / 30 rows -> 14 / 26 windows; val and test reach back 3 rows
    assert len(dm.datasets["train"]) == 14 + 26
    assert len(dm.datasets["val"]) == (6 + 3 - 4) + (10 + 3 - 4)
    index = torch.arange(40)
    x, y, *_ = dm.datasets["train"][index]
    series = dm.datasets["train"].series_of(index).numpy()
    assert (series == np.repeat([0, 1], [14, 26])).all()
    scalers = dm.scalers  # each series by its own statistics (data.scaling=series)
    scaled = torch.cat([x, y], dim=1)[..., 0].numpy()
    a = scaled * scalers.std[series, :1] + scalers.mean[series, :1]
    assert ((a > -0.5).all(axis=1) | (a < -0.5).all(axis=1)).all()  # never mixes the two series
    assert ((a > -0.5).all(axis=1) == (series == 0)).all()


def test_standard_etth1_window_counts():
    dm = ForecastDataModule(
        path=str(ETTH1), lookback=96, split_borders=[8640, 11520, 14400], split_ratios=None
    )
    dm.setup()
    # Inputs of val/test reach back 96 rows; targets stay in their split: 8640 - 96 - 96 + 1.
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 8449, "val": 2785, "test": 2785}
    np.testing.assert_allclose(
        dm.spec.scaler.mean, [7.938, 2.021, 5.080, 0.746, 2.782, 0.788, 17.128], atol=1e-3
    )
    np.testing.assert_allclose(
        dm.spec.scaler.std, [5.813, 2.090, 5.519, 1.926, 1.024, 0.630, 9.176], atol=1e-3
    )
    x, y, *_ = next(iter(dm.test_dataloader()))
    assert x.shape == (32, 96, 7) and y.shape == (32, 96, 7)
    last_batch = list(dm.test_dataloader())[-1]
    assert len(last_batch[0]) == 2785 % 32  # the partial last batch is scored, not dropped


@pytest.mark.parametrize(
    ("borders", "message"),
    [
        ([5, 20, 30], "the train split has 5 rows"),
        ([20, 21, 30], "the val split has 5 rows"),
        ([20, 25, 26], "the test split has 5 rows"),
    ],
)
def test_too_short_splits(tmp_path, borders, message):
    with pytest.raises(ForecastError, match=message + r" .*fewer than lookback \+ horizon = 6"):
        datamodule(tmp_path, coded_frame(30), lookback=4, horizon=2, split_borders=borders)


def test_too_short_series_is_named(tmp_path):
    frame = pd.concat([coded_frame(40).assign(id="long"), coded_frame(8).assign(id="short")])
    with pytest.raises(ForecastError, match=r"series 'short': the train split.*short_series=drop"):
        datamodule(tmp_path, frame, lookback=4, horizon=2, series_id="id")


def test_short_series_dropped_leave_the_others_windowed_as_alone(tmp_path):
    """The short series is out of every split, its id recorded; the long series' windows and
    training statistics are those of the long series alone."""
    long_a, long_b = coded_frame(40).assign(id="a"), coded_frame(30).assign(id="b", a=-1.0)
    short = coded_frame(8).assign(id="short", a=1e6)
    frame = pd.concat([long_a, short, long_b])
    dm = datamodule(tmp_path, frame, lookback=4, horizon=2, series_id="id", short_series="drop")
    alone = datamodule(tmp_path, pd.concat([long_a, long_b]), lookback=4, horizon=2, series_id="id")
    assert dm.short_series_dropped == ["short"]
    for split in ("train", "val", "test"):
        assert len(dm.datasets[split]) == len(alone.datasets[split])
        x, y, *_ = dm.datasets[split][torch.arange(len(dm.datasets[split]))]
        x_alone, y_alone, *_ = alone.datasets[split][torch.arange(len(alone.datasets[split]))]
        torch.testing.assert_close((x, y), (x_alone, y_alone), rtol=0, atol=0)
    np.testing.assert_array_equal(dm.spec.scaler.mean, alone.spec.scaler.mean)
    assert dm.spec.short_series == "drop"
    with pytest.raises(ForecastError, match="every series is shorter than its splits need"):
        datamodule(tmp_path, short, lookback=4, horizon=2, series_id="id", short_series="drop")


@pytest.mark.parametrize("rows", [1, 2])
def test_a_series_too_short_to_show_a_frequency_is_dropped_not_refused(tmp_path, rows):
    """One or two rows infer no frequency: they are checked at the other series' and left out
    by data.short_series=drop, where the frequency check refused the whole file."""
    frame = pd.concat([coded_frame(40).assign(id="a"), coded_frame(rows).assign(id="tiny")])
    dm = datamodule(tmp_path, frame, lookback=4, horizon=2, series_id="id", short_series="drop")
    assert dm.short_series_dropped == ["tiny"] and dm.spec.freq == "h"
    off_grid = frame.copy()
    off_grid.loc[off_grid.id == "tiny", "date"] += pd.Timedelta(minutes=30) * np.arange(rows)
    if rows == 2:  # half an hour apart: not the others' frequency, named
        with pytest.raises(ForecastError, match=r"series 'tiny': timestamp at .* at frequency h"):
            datamodule(tmp_path, off_grid, lookback=4, horizon=2, series_id="id")


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_batches_split_work_across_ranks(world):
    from forecast.data.windows import ShardedBatches

    def shards(shuffle: bool) -> list[list[torch.Tensor]]:
        out = []
        for rank in range(world):
            sampler = ShardedBatches(103, batch_size=10, shuffle=shuffle)
            sampler.rank, sampler.world = rank, world
            out.append(list(sampler))
        return out

    evaluation = shards(shuffle=False)
    assert sorted(torch.cat([b for s in evaluation for b in s]).tolist()) == list(range(103))
    assert all(len(s) >= 1 for s in evaluation)
    training = shards(shuffle=True)
    assert len({len(s) for s in training}) == 1  # equal step counts for gradient all-reduce
    seen = torch.cat([b for s in training for b in s])
    assert len(seen) == len(set(seen.tolist()))  # disjoint
    assert len(seen) >= 103 - (world - 1) * 10


def test_strided_windows_restart_in_every_segment():
    values = torch.zeros(50, 1)
    dataset = WindowDataset(values, [(0, 20), (30, 50)], lookback=4, horizon=2, target_index=[0])
    assert len(dataset) == 30
    assert dataset.strided(5).tolist() == [0, 5, 10, 15, 20, 25]
    assert dataset.starts(dataset.strided(5)).tolist() == [0, 5, 10, 30, 35, 40]


def test_span_windows_keep_their_targets_inside_the_span(tmp_path):
    path = tmp_path / "table.csv"
    coded_frame(200).to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=10, horizon=5)
    dm.setup()
    dataset = span(dm, "2024-01-03 00:00", "2024-01-04 23:00")  # rows 48 .. 95
    index = torch.arange(len(dataset))
    described = window_origins(dm, dataset, index)
    assert described.origin.iloc[0] == pd.Timestamp("2024-01-03 00:00")
    assert described.origin.iloc[-1] == pd.Timestamp("2024-01-04 19:00")  # + 4 h = 23:00
    assert len(dataset) == 96 - 48 - 5 + 1
    with pytest.raises(ForecastError, match="targets between"):
        span(dm, "2030-01-01", None)


@pytest.mark.parametrize(("method", "filled"), [("ffill", 400.0), ("interpolate", 500.0)])
def test_fill_missing_fills_real_gaps_in_values(tmp_path, method, filled):
    """Row 5 of column a is NaN: filled from row 4 (400) or halfway to row 6 (600)."""
    frame = coded_frame(60)
    frame.loc[5, "a"] = np.nan
    dm = datamodule(tmp_path, frame, lookback=4, horizon=2, fill_missing=method)
    x, *_ = dm.datasets["train"][2]  # rows 2..5
    np.testing.assert_allclose(unscale(dm, x, [0, 1, 2])[3], [filled, 501, 502], atol=1e-3)


def test_large_values_keep_their_variation_through_scaling(tmp_path):
    """A meter reading 1e8 + 3 sin(t) is one value in float32: scaled in float64 first, its
    scaled variation survives (std 1 over the training rows, not 0)."""
    frame = coded_frame(200).assign(a=1e8 + 3 * np.sin(np.arange(200) / 5))
    dm = datamodule(tmp_path, frame, lookback=4, horizon=2, split_ratios=[0.5, 0.25, 0.25])
    train = dm.values[:100, 0].double()
    assert train.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(dm.spec.scaler.std[0], np.std(frame.a[:100]), rtol=1e-6)


def test_a_constant_training_column_is_named_in_a_warning(tmp_path, caplog):
    frame = coded_frame(60).assign(b=5.0)
    dm = datamodule(tmp_path, frame, lookback=4, horizon=2)
    assert "column(s) ['b'] are constant over the training rows" in caplog.text
    assert dm.spec.scaler.std[1] == 1.0  # centred, left unscaled


def test_a_refused_series_is_told_a_lookback_and_horizon_that_fit(tmp_path):
    """Two years of daily rows at the defaults 96/96: 510 / 73 / 147 rows per split, so the
    horizon fits the 73 validation rows, and the lookback of 96 in whole weeks is 91."""
    frame = coded_frame(730).assign(date=pd.date_range("2020-01-01", periods=730, freq="D"))
    with pytest.raises(ForecastError, match=r"val split has 169 rows.*lookback=91 .*horizon=73"):
        datamodule(tmp_path, frame, lookback=96, horizon=96)


def test_when_every_series_is_short_the_longest_one_sets_the_hint(tmp_path):
    """80 quarters a series (the tourism panel) at 96/96: 56 / 8 / 16 rows per split."""
    stamps = pd.date_range("1998-01-01", periods=80, freq="QS")
    frame = pd.concat(
        [pd.DataFrame({"date": stamps, "id": k, "a": np.arange(80.0)}) for k in range(3)]
    )
    with pytest.raises(ForecastError, match=r"every series.*lookback=48 data\.horizon=8 fit the"):
        datamodule(tmp_path, frame, series_id="id", short_series="drop")


def test_values_past_float32_once_scaled_are_refused_naming_the_column(tmp_path):
    """In the test rows, which the training statistics never saw (1e40 in the training rows
    would scale itself down; the training std is about 1e3)."""
    frame = coded_frame(60)
    frame.loc[55, "b"] = 1e42
    frame.to_csv(tmp_path / "huge.csv", index=False)
    dm = ForecastDataModule(str(tmp_path / "huge.csv"), lookback=4, horizon=2)
    with pytest.raises(ForecastError, match="column 'b' holds values too large for the model"):
        dm.setup()
