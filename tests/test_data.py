from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ETTH1, coded_frame

from forecast.data.options import DataOptions
from forecast.data.reading import read_table
from forecast.data.scaling import Scaler
from forecast.data.series import prepare_series
from forecast.data.spec import DataSpec
from forecast.data.splits import split_borders
from forecast.errors import ForecastError


def prepare(frame: pd.DataFrame, **kwargs):
    """prepare_series with the data options among ``kwargs``, the rest its own keywords."""
    fields = set(DataOptions.__dataclass_fields__)
    options = DataOptions(
        features=kwargs.pop("features", None), **{k: v for k, v in kwargs.items() if k in fields}
    )
    return prepare_series(frame, options, **{k: v for k, v in kwargs.items() if k not in fields})


def test_read_table_reads_csv_and_parquet(tmp_path):
    frame = coded_frame(5)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.csv").shape == (5, 4)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), frame)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_file_with_another_delimiter_reads_as_a_comma_file(tmp_path, delimiter):
    """Detected from the first line, or named by data.delimiter: the same table either way;
    a comma file is read as before, and a comma inside a semicolon file's values stays text."""
    frame = coded_frame(5).assign(note="a,b")
    frame.to_csv(tmp_path / "comma.csv", index=False)
    frame.to_csv(tmp_path / "other.csv", index=False, sep=delimiter)
    expected = read_table(tmp_path / "comma.csv")
    assert expected.shape == (5, 5) and list(expected.note) == ["a,b"] * 5
    pd.testing.assert_frame_equal(read_table(tmp_path / "other.csv"), expected)
    named = DataOptions(max_rows=None, delimiter="\\t" if delimiter == "\t" else delimiter)
    pd.testing.assert_frame_equal(read_table(tmp_path / "other.csv", named), expected)


def test_a_delimiter_of_more_than_one_character_is_refused_by_name():
    with pytest.raises(ForecastError, match=r"data\.delimiter=';;' must be one character"):
        DataOptions(delimiter=";;")
    with pytest.raises(ForecastError, match=r"data\.delimiter=1 must be one character"):
        DataOptions(delimiter=1)


def test_a_semicolon_file_trains_through_the_datamodule(tmp_path):
    """The option travels: the DataModule reads the file its way, and the model file keeps it
    for forecast-eval on another file."""
    from forecast.data.datamodule import ForecastDataModule

    coded_frame(60).to_csv(tmp_path / "t.csv", index=False, sep=";")
    dm = ForecastDataModule(str(tmp_path / "t.csv"), lookback=4, horizon=2, delimiter=";")
    dm.setup()
    assert dm.spec.features == ["a", "b", "c"] and dm.spec.delimiter == ";"
    assert DataSpec.from_dict(dm.spec.to_dict()).delimiter == ";"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "data file not found"),
        ("table.xlsx", "x", "unsupported file type '.xlsx'"),
        ("empty.csv", "", "cannot read"),
    ],
)
def test_read_table_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ForecastError, match=message):
        read_table(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\0" * (3 << 20), "not a text CSV file: NUL byte at offset 0"),
        (b"date,a\n2020-01-01,\0\n", "NUL byte at offset 18"),
        (b"x" * (3 << 20), "no line break in the first 1048576 bytes"),
        ("date,caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_files_that_are_not_csv_text_are_refused_before_parsing(tmp_path, content, message):
    """A binary file or one endless line would be parsed whole as one field (a 2 GB file of NUL
    bytes took over 10 GB): the first megabyte tells."""
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(ForecastError, match=message):
        read_table(path)


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz", "zip"])
def test_compressed_csv_files_read_as_the_plain_file(tmp_path, codec):
    frame = coded_frame(6)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / f"t.csv.{codec}", index=False)
    pd.testing.assert_frame_equal(
        read_table(tmp_path / f"t.csv.{codec}"), read_table(tmp_path / "t.csv")
    )


def test_compressed_files_are_checked_like_plain_ones(tmp_path):
    import gzip

    (tmp_path / "nul.csv.gz").write_bytes(gzip.compress(b"\0" * 100))
    with pytest.raises(ForecastError, match="not a text CSV file: NUL byte at offset 0"):
        read_table(tmp_path / "nul.csv.gz")
    (tmp_path / "t.parquet.gz").write_bytes(b"x")
    with pytest.raises(ForecastError, match=r"cannot read .*t\.parquet\.gz"):
        read_table(tmp_path / "t.parquet.gz")


def test_files_are_read_by_their_content_not_their_name(tmp_path):
    """A gzip file called .csv, a plain one called .gz, and text tables as they are shipped:
    .txt, .tsv, .dat."""
    import gzip

    frame = coded_frame(6)
    frame.to_csv(tmp_path / "t.csv", index=False)
    expected = read_table(tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_bytes()
    (tmp_path / "zipped.csv").write_bytes(gzip.compress(text))
    (tmp_path / "plain.csv.gz").write_bytes(text)
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(text))
    frame.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    frame.to_csv(tmp_path / "t.dat", index=False, sep=";")
    for name in ("zipped.csv", "plain.csv.gz", "t.txt.gz", "t.tsv", "t.dat"):
        pd.testing.assert_frame_equal(read_table(tmp_path / name), expected, obj=name)


def test_a_file_without_a_header_line_is_named_by_position(tmp_path, caplog):
    """exchange_rate.txt.gz as the LSTNet repository ships it: numbers, commas, no header."""
    import gzip

    rows = "\n".join(f"{0.7 + k / 100},{1.1 - k / 100},{100 + k}" for k in range(5))
    (tmp_path / "exchange_rate.txt.gz").write_bytes(gzip.compress(rows.encode()))
    frame = read_table(tmp_path / "exchange_rate.txt.gz", DataOptions(header=False, max_rows=None))
    assert list(frame.columns) == ["0", "1", "2"] and frame.shape == (5, 3)
    assert frame["2"].tolist() == [100, 101, 102, 103, 104]
    assert "columns are named by position, 0 to 2; data.columns=[...] names them" in caplog.text
    assert DataOptions(features=[0, 2], timestamp=None).features == ["0", "2"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_max_rows_refuses_a_larger_file(tmp_path, suffix):
    frame = coded_frame(50)
    path = tmp_path / f"t.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    assert len(read_table(path, DataOptions(max_rows=50))) == 50
    # how much memory it would take, 16 bytes a value: the file's (Parquet), those read (CSV)
    found = "50 rows, " if suffix == "parquet" else ""
    about = "about" if suffix == "parquet" else "at least"
    with pytest.raises(ForecastError) as refused:
        read_table(path, DataOptions(max_rows=49))
    assert str(refused.value) == (
        f"{path} has {found}more than data.max_rows=49 rows: with its 4 columns setting it up "
        f"takes {about} 3 KB at its peak; raise data.max_rows if memory allows"
    )


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_max_values_counts_rows_times_columns(tmp_path, suffix):
    frame = coded_frame(50)  # 4 columns: 200 values
    path = tmp_path / f"t.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    assert len(read_table(path, DataOptions(max_values=200))) == 50
    with pytest.raises(
        ForecastError,
        match=r"more than data\.max_values=199 values|"
        r"200 values \(4 columns x 50 rows\), more than data\.max_values=199",
    ):
        read_table(path, DataOptions(max_values=199))


@pytest.mark.parametrize("codec", ["bz2", "gz", "zip"])
def test_a_decompression_bomb_is_refused_while_it_is_read(tmp_path, codec):
    """Probe 2 of issue #24: a few KB of compressed zeros in 2,000 columns, 4 million values
    if read; refused after at most max_values // 2,000 rows, with the bound named."""
    import bz2
    import gzip
    import zipfile

    text = ",".join(f"c{i}" for i in range(2000)).encode() + b"\n"
    text += (",".join(["0"] * 2000).encode() + b"\n") * 2_000
    path = tmp_path / f"zeros.csv.{codec}"
    if codec == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("zeros.csv", text)
    else:
        path.write_bytes(bz2.compress(text) if codec == "bz2" else gzip.compress(text))
    assert path.stat().st_size < len(text) / 100
    with pytest.raises(
        ForecastError,
        match=r"more than data\.max_values=1000000 values "
        r"\(2000 columns, more than 500 rows\)",
    ):
        read_table(path, DataOptions(max_values=1_000_000))


def test_a_file_expanding_past_its_text_bound_is_refused(tmp_path):
    """One field of 10 MB in a gzip of a few KB: the byte bound (32 a value) stops the read
    before pandas holds the field."""
    import gzip

    path = tmp_path / "field.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1," + b"x" * 10_000_000 + b"\n"))
    with pytest.raises(
        ForecastError,
        match=r"holds more than 32000 bytes of text \(32 a value "
        r"for data\.max_values=1000\)",
    ):
        read_table(path, DataOptions(max_values=1000))
    assert read_table(path, DataOptions(max_values=None)).shape == (1, 2)


def with_repeats(frame: pd.DataFrame, repeated: dict[int, list[float]]) -> pd.DataFrame:
    """``frame`` with extra rows after row i, at row i's timestamp, column a set to each value."""
    parts = []
    for i in range(len(frame)):
        parts.append(frame.iloc[[i]])
        for value in repeated.get(i, []):
            parts.append(frame.iloc[[i]].assign(a=value))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("first", [0, 100, 200, 300, 400]),
        ("last", [0, 7, 200, 9, 400]),
        ("mean", [0, 53.5, 200, 317 / 3, 400]),
    ],
)
def test_repeated_timestamps_merge_by_data_duplicates(rule, expected):
    """Row 1 comes three times (a = 100, 7) and row 3 three times (a = 300, 8, 9 -> 9 last)."""
    frame = with_repeats(coded_frame(5), {1: [7.0], 3: [8.0, 9.0]})
    assert len(frame) == 8
    with pytest.raises(ForecastError, match=r"duplicated at data row 2 .*data\.duplicates="):
        prepare(frame)
    series = prepare(frame, duplicates=rule)
    np.testing.assert_allclose(series.values[:, 0], expected)
    np.testing.assert_array_equal(series.values[:, 1], [1, 101, 201, 301, 401])  # b: 100 i + 1
    assert series.merged == 3 and len(series.timestamps) == 5
    # the kept rows' positions in the frame, where covariates are read from
    assert list(series.rows) == ([0, 1, 3, 4, 7] if rule != "last" else [0, 2, 3, 6, 7])


def test_merged_series_keep_their_own_rows():
    a = with_repeats(coded_frame(4), {0: [5.0]}).assign(id="a")
    b = coded_frame(3).assign(id="b")
    series = prepare(pd.concat([a, b], ignore_index=True), series_id="id", duplicates="last")
    assert series.bounds == [(0, 4), (4, 7)] and series.merged == 1
    np.testing.assert_array_equal(series.series_values(0)[:, 0], [5, 100, 200, 300])
    assert list(series.rows) == [1, 2, 3, 4, 5, 6, 7]


def test_a_timestamp_that_comes_back_later_stays_an_error():
    frame = coded_frame(4)
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    with pytest.raises(ForecastError, match="timestamps not sorted at data row 4 "):
        prepare(frame, duplicates="last")


@pytest.mark.parametrize("label", ["{y} Q{q}", "{y}Q{q}", "{y}-Q{q}", "{y} q{q}"])
def test_quarterly_labels_read_as_the_quarters_first_day(label):
    quarters = [label.format(y=1998 + k // 4, q=k % 4 + 1) for k in range(8)]
    frame = coded_frame(8).assign(date=quarters)
    series = prepare(frame)
    expected = pd.date_range("1998-01-01", periods=8, freq="QS")
    np.testing.assert_array_equal(series.timestamps, expected.to_numpy())
    assert series.freq == "QS-JAN"


def test_timestamp_format_reads_what_pandas_would_misread():
    """Day-first stamps: without the format pandas reads 01.02.2024 as January 2nd."""
    stamps = pd.date_range("2024-01-30", periods=6, freq="D")
    frame = coded_frame(6).assign(date=stamps.strftime("%d.%m.%Y"))
    series = prepare(frame, timestamp_format="%d.%m.%Y")
    np.testing.assert_array_equal(series.timestamps, stamps.to_numpy())
    with pytest.raises(ForecastError, match=r"holds non-timestamps.*set data\.timestamp_format"):
        prepare(coded_frame(3).assign(date=["30/01/2024 10h", "31/01/2024 10h", "x"]))
    with pytest.raises(ForecastError, match="holds non-timestamps"):
        prepare(frame, timestamp_format="%Y-%m-%d")


def test_prepare_stacks_series_and_keeps_their_order():
    a, b = coded_frame(4), coded_frame(3)
    frame = pd.concat([b.assign(id="b"), a.assign(id="a")], ignore_index=True)
    series = prepare(frame, series_id="id")
    assert series.series_ids == ["b", "a"]
    assert series.bounds == [(0, 3), (3, 7)]
    assert series.features == ["a", "b", "c"]
    assert series.freq == "h"
    np.testing.assert_array_equal(series.series_values(1)[:, 0], [0, 100, 200, 300])


def test_interleaved_long_format_is_grouped_per_series():
    a, b = coded_frame(4).assign(id=1), coded_frame(4).assign(id=2)
    frame = pd.concat([a, b]).sort_values("date", kind="stable")  # rows alternate a, b, a, b
    series = prepare(frame, series_id="id")
    assert series.bounds == [(0, 4), (4, 8)]
    np.testing.assert_array_equal(series.series_values(0)[:, 1], [1, 101, 201, 301])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns="date"), r"column\(s\) \['date'\] not found"),
        (lambda f: f.assign(b=["x"] * len(f)), "column 'b' is not numeric"),
        (lambda f: f.assign(date="yesterday"), "'date' holds non-timestamps"),
        (
            lambda f: f.assign(b=f.b.where(f.index != 3)),
            r"column 'b' has 1 NaN/inf value\(s\), first at data row 3 ",
        ),
        (lambda f: f.assign(c=f.c.replace(202.0, np.inf)), "column 'c' has 1 NaN/inf"),
        (lambda f: f.iloc[[0, 1, 3, 2, 4, 5]], "timestamps not sorted at data row 3 "),
        (lambda f: f.iloc[[0, 1, 2, 2, 3, 4]], "timestamps duplicated at data row 3 "),
        (
            lambda f: f.drop(index=3),
            r"row 3 \(0-based\) \(2024-01-01 04:00:00\) is 0 days 02:00:00 after the row before",
        ),
    ],
)
def test_bad_tables_name_the_problem(mutate, message):
    with pytest.raises(ForecastError, match=message):
        prepare(mutate(coded_frame(6)))


def test_given_frequency_is_checked():
    with pytest.raises(
        ForecastError, match=r"row 3 \(0-based\) is 2024-01-01 04:00:00, expected 2024-01-01 03:00"
    ):
        prepare(coded_frame(6).drop(index=3), freq="h")
    with pytest.raises(ForecastError, match="at frequency 15min"):
        prepare(coded_frame(6), freq="15min")


def test_unknown_feature_column():
    with pytest.raises(ForecastError, match=r"\['nope'\] not found; available"):
        prepare(coded_frame(6), features=["a", "nope"])


def test_problems_are_reported_per_series():
    frame = pd.concat([coded_frame(5).assign(id="ok"), coded_frame(5).iloc[::-1].assign(id="bad")])
    with pytest.raises(ForecastError, match="series 'bad': timestamps not sorted"):
        prepare(frame, series_id="id")


def test_fill_missing_ffill_and_interpolate():
    frame = coded_frame(5).assign(a=[0.0, np.nan, np.inf, 300.0, 400.0])
    ffilled = prepare(frame, fill_missing="ffill").values[:, 0]
    interpolated = prepare(frame, fill_missing="interpolate").values[:, 0]
    np.testing.assert_array_equal(ffilled, [0, 0, 0, 300, 400])
    np.testing.assert_array_equal(interpolated, [0, 100, 200, 300, 400])
    leading = coded_frame(5).assign(a=[np.nan, 1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ForecastError, match="column 'a' has 1 NaN/inf"):
        prepare(leading, fill_missing="ffill")


def splits(ratios=None, borders=None, test_size=None, val_size=None) -> DataOptions:
    return DataOptions(
        split_ratios=ratios, split_borders=borders, test_size=test_size, val_size=val_size
    )


def test_split_borders_by_rows_and_by_ratios():
    assert split_borders(100, splits(None, [50, 70, 90])) == (50, 70, 90)
    assert split_borders(100, splits([0.7, 0.1, 0.2])) == (70, 80, 100)
    assert split_borders(17420, splits([0.7, 0.1, 0.2], [8640, 11520, 14400])) == (
        8640, 11520, 14400,
    )  # fmt: skip
    with pytest.raises(ForecastError, match="at most the series length 100"):
        split_borders(100, splits(None, [50, 70, 140]))
    with pytest.raises(ForecastError, match="split_ratios"):
        split_borders(100, splits([0.9, 0.2, 0.1]))


def test_split_sizes_count_from_each_series_end():
    """Issue #22, item 2: the same last steps of every series, whatever its length."""
    assert split_borders(100, splits([0.7, 0.1, 0.2], test_size=24)) == (52, 76, 100)
    assert split_borders(1000, splits(test_size=24, val_size=48)) == (928, 976, 1000)
    assert split_borders(30, splits(test_size=24)) == (0, 6, 30)  # too short: nothing trains
    with pytest.raises(ForecastError, match=r"data\.val_size counts steps before the test"):
        splits(val_size=5)
    with pytest.raises(ForecastError, match=r"set one \(data\.split_borders=null\)"):
        splits(borders=[1, 2, 3], test_size=5)
    with pytest.raises(ForecastError, match=r"data\.test_size=0 must be an integer"):
        splits(test_size=0)


def test_validation_windows_are_spans_of_the_horizon_before_the_test(tmp_path):
    """data.val_windows=3 at horizon 4: validation is the 12 steps before each series' test,
    every origin in them a validation window (12 - 4 + 1 = 9 per series)."""
    from forecast.data.datamodule import ForecastDataModule

    options = DataOptions(horizon=4, split_ratios=None, test_size=4, val_windows=3)
    assert split_borders(100, options) == (84, 96, 100)
    frame = pd.concat([coded_frame(60).assign(id="a"), coded_frame(90).assign(id="b")])
    frame.to_csv(tmp_path / "t.csv", index=False)
    dm = ForecastDataModule(
        str(tmp_path / "t.csv"), lookback=8, horizon=4, series_id="id", test_size=4,
        val_windows=3, split_ratios=None, features=["a"],
    )  # fmt: skip
    dm.setup()
    assert len(dm.datasets["val"]) == 2 * 9 and len(dm.datasets["test"]) == 2
    val = dm.datasets["val"]
    rows = (val.starts(torch.arange(len(val))) + 8).numpy()  # each window's first target row
    assert rows.tolist() == [*range(44, 53), *range(60 + 74, 60 + 83)]
    with pytest.raises(ForecastError, match=r"data\.val_windows counts steps before the test"):
        DataOptions(val_windows=2)
    with pytest.raises(ForecastError, match=r"val_size and data\.val_windows both"):
        DataOptions(test_size=4, val_size=8, val_windows=2)


def test_the_test_is_each_series_last_steps_whatever_its_length(tmp_path):
    """Two series of 60 and 90 rows: with data.test_size=4 the test windows of each are its
    last 4 rows exactly (one window), validation the 4 before, the rest trains."""
    from forecast.data.datamodule import ForecastDataModule

    frames = [
        pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"), "id": name,
                      "y": 1000.0 * k + np.arange(n)})
        for k, (name, n) in enumerate([("short", 60), ("long", 90)])
    ]  # fmt: skip
    pd.concat(frames).to_csv(tmp_path / "t.csv", index=False)
    dm = ForecastDataModule(
        str(tmp_path / "t.csv"), lookback=8, horizon=4, series_id="id", test_size=4,
        split_ratios=None,
    )  # fmt: skip
    dm.setup()
    assert dm.spec.scaling == "series" and dm.derived["data.scaling"] == "series"
    scalers = dm.scalers  # each series by its own training rows: 0..51 and 1000..1081

    def unscaled(batch: torch.Tensor) -> np.ndarray:  # (2 series, steps) in the data's units
        return batch.double().numpy()[..., 0] * scalers.std[:, :1] + scalers.mean[:, :1]

    test = dm.datasets["test"][torch.arange(len(dm.datasets["test"]))]
    np.testing.assert_allclose(unscaled(test.y), [[56, 57, 58, 59], [1086, 1087, 1088, 1089]])
    val = dm.datasets["val"][torch.arange(len(dm.datasets["val"]))]
    assert len(dm.datasets["val"]) == 2
    np.testing.assert_allclose(unscaled(val.y)[:, 0], [52, 1082])
    short, long = np.arange(52.0), 1000 + np.arange(82.0)
    np.testing.assert_allclose(scalers.mean[:, 0], [short.mean(), long.mean()])
    np.testing.assert_allclose(scalers.std[:, 0], [short.std(), long.std()])
    # the column scaler, kept beside them, saw the training rows alone too
    np.testing.assert_allclose(dm.spec.scaler.mean, [np.concatenate([short, long]).mean()])


def test_data_test_start_makes_each_series_test_its_rows_from_then_on(tmp_path):
    """Issue #22, item 2: with data.test_start every series' test is its rows from that time
    on (a series ending later has more), validation as many rows before; the one that ends
    before it is named, or left out with data.short_series=drop."""
    from forecast.data.datamodule import ForecastDataModule

    spans = [("a", "2024-01-01", 100), ("b", "2024-01-02", 80), ("old", "2024-01-01", 20)]
    frames = [
        pd.DataFrame({"date": pd.date_range(start, periods=n, freq="h"), "id": name,
                      "y": 1000.0 * k + np.arange(n)})
        for k, (name, start, n) in enumerate(spans)
    ]  # fmt: skip
    pd.concat(frames).to_csv(tmp_path / "t.csv", index=False)
    keys = dict(lookback=8, horizon=4, series_id="id", split_ratios=None,
                test_start="2024-01-04 12:00")  # fmt: skip
    with pytest.raises(ForecastError, match=r"'old' ends before data\.test_start"):
        ForecastDataModule(str(tmp_path / "t.csv"), **keys).setup()
    dm = ForecastDataModule(str(tmp_path / "t.csv"), short_series="drop", **keys)
    dm.setup()
    assert dm.short_series_dropped == ["old"]
    # a: rows 0..99 from 2024-01-01 00:00, its test from row 84 (16 rows); b: rows 0..79 from
    # 2024-01-02 00:00, its test from row 60 (20 rows); validation as many rows before each
    bounds = dict(zip(dm.series_ids, dm.bounds, strict=True))
    a, b = bounds["a"][0], bounds["b"][0]
    assert dm.segments["test"] == [(a + 84 - 8, a + 100), (b + 60 - 8, b + 80)]
    assert dm.segments["val"] == [(a + 68 - 8, a + 84), (b + 40 - 8, b + 60)]
    assert dm.segments["train"] == [(a, a + 68), (b, b + 40)]
    assert len(dm.datasets["test"]) == (16 - 4 + 1) + (20 - 4 + 1)
    first = dm.datasets["test"][torch.arange(1)].y.double().numpy()[0, :, 0]
    scaler = dm.scalers.of(0)
    np.testing.assert_allclose(first * scaler.std[0] + scaler.mean[0], [84, 85, 86, 87])


def test_data_test_start_is_one_way_to_place_the_test():
    with pytest.raises(ForecastError, match=r"test_size and data\.test_start both"):
        DataOptions(test_size=4, test_start="2024-01-01", split_ratios=None)
    with pytest.raises(ForecastError, match="split_borders by row"):
        DataOptions(test_start="2024-01-01", split_borders=[10, 20, 30])
    DataOptions(test_start="2024-01-01", val_windows=2)  # validation counted before it
    from forecast.data.splits import start_stamp

    assert start_stamp("2024-07-01 02:00", "Europe/Berlin") == np.datetime64("2024-07-01T00:00")
    assert start_stamp(800, None) == np.datetime64(800, "ns")  # integer steps
    with pytest.raises(ForecastError, match="'soon' is not a timestamp"):
        start_stamp("soon", None)


def test_scaler_statistics_are_exact_and_skip_constant_columns():
    values = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = Scaler.fit(values)
    np.testing.assert_array_equal(scaler.mean, [2.0, 5.0])
    np.testing.assert_array_equal(scaler.std, [1.0, 1.0])  # ddof=0; constant column left unscaled
    np.testing.assert_array_equal(scaler.transform(values), [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(Scaler.from_dict(scaler.to_dict()).std, scaler.std)


def test_etth1_file_is_the_benchmark():
    series = prepare(read_table(ETTH1))
    assert series.values.shape == (17420, 7)
    assert series.features == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert series.freq == "h"


@pytest.mark.parametrize("start", ["1500-01-01", "2300-01-01"])
def test_timestamps_outside_the_nanosecond_range_are_refused_not_wrapped(start):
    frame = pd.DataFrame({"date": [f"{start} 0{h}:00:00" for h in range(5)], "a": np.arange(5.0)})
    with pytest.raises(ForecastError, match=r"'date' has .* at row 0, outside the range"):
        prepare(frame)


def test_files_that_are_not_tables_are_named_for_what_they_are(tmp_path):
    with pytest.raises(ForecastError, match=r"is a folder without \.parquet files"):
        read_table(tmp_path)
    (tmp_path / "header.csv").write_text("date,a\n")
    with pytest.raises(ForecastError, match=r"has no data rows \(columns: \['date', 'a'\]\)"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "twice.csv").write_text("date,OT,OT\n2024-01-01,1,2\n")
    with pytest.raises(ForecastError, match=r"column name\(s\) \['OT'\] appear more than once"):
        read_table(tmp_path / "twice.csv")


def test_a_text_column_names_the_keys_that_take_it(tmp_path):
    frame = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=5, freq="h"), "a": 1.0, "store": "x"}
    )
    with pytest.raises(ForecastError, match=r"'store' is not numeric.*data\.categorical"):
        prepare(frame)


def test_a_zip_of_many_files_is_refused_in_one_short_line(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "many.csv.zip", "w") as archive:
        for k in range(2000):
            archive.writestr(f"part-{k:05d}.csv", "a\n1\n")
    with pytest.raises(
        ForecastError, match=r"holds part-00000\.csv, .*\.\.\. \(2000 in all\)$"
    ) as err:
        read_table(tmp_path / "many.csv.zip")
    assert len(str(err.value)) < 300


@pytest.mark.parametrize(
    ("lengths", "horizon", "season", "sizes", "expected"),
    [
        ([10_000], 24, 24, None, 168),  # long hourly: a week
        ([10_000], 24, 7, None, 91),  # long daily: 96 in whole weeks
        ([150], 12, 24, None, 72),  # short hourly: 105 training rows leave 93; 3 whole days
        ([93, 947, 2610], 13, 52, 13, 52),  # M4 weekly's shortest: 67 training rows, a year
        ([93, 947, 2610], 13, 1, 13, 52),  # as it ships, no season: 54 fits, 52 in four parts
        ([40], 4, 4, None, 24),  # quarterly: 28 training rows leave 24, six years
        ([2000], 96, 96, None, 96),  # 15-minute, a day ahead: 96
        ([140], 8, 96, None, 90),  # 15-minute, short: under a season, not rounded
        ([150, 60], 12, 24, None, 72),  # 60 rows hold no 12-step validation: left to the rule
    ],
)  # fmt: skip
def test_a_lookback_left_null_fits_every_series(lengths, horizon, season, sizes, expected):
    """Issue #22, item 1: data.lookback=null is 96 (a week of hours for hourly data), or the
    longest lookback every series' splits hold (in whole seasons where it holds one)."""
    from forecast.data.splits import derived_lookback

    options = DataOptions(horizon=horizon, test_size=sizes)
    assert derived_lookback(lengths, options, season) == expected


def test_the_datamodule_derives_the_lookback_and_says_so(tmp_path):
    from forecast.data.datamodule import ForecastDataModule

    frames = [
        pd.DataFrame({"step": np.arange(n), "id": f"s{n}", "y": np.sin(np.arange(n) / 3.0)})
        for n in (93, 300)
    ]  # fmt: skip
    pd.concat(frames).to_csv(tmp_path / "w.csv", index=False)
    dm = ForecastDataModule(
        str(tmp_path / "w.csv"), horizon=13, test_size=13, timestamp="step", series_id="id",
    )  # fmt: skip
    dm.setup()
    # steps: season 1; 54 fits the short series, 52 is its multiple of 4 (equal segments)
    assert dm.spec.lookback == 52 and dm.derived == {"data.lookback": 52, "data.scaling": "series"}
    assert len(dm.datasets["train"]) == (67 - 52 - 13 + 1) + (274 - 52 - 13 + 1)
    explicit = ForecastDataModule(
        str(tmp_path / "w.csv"), lookback=96, horizon=13, test_size=13, timestamp="step",
        series_id="id",
    )  # fmt: skip
    with pytest.raises(ForecastError, match=r"series 's93': the train split has 67 rows"):
        explicit.setup()
