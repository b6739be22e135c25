"""forecast-check on the generated messy sensor file: what it counts, the keys it names, and
its exit code against the loader's verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from forecast.check import check
from forecast.reference import CONF_DIR

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from messy_data import messy_sensors  # noqa: E402

MESSY = ["data=csv", "data.timestamp=[year,month,day,hour]", "data.series_id=station"]
FIXES = [
    "data.categorical=[wd]",
    "data.duplicates=last",
    "data.fill_gaps=interpolate",
    "data.fill_missing=interpolate",
    "data.short_series=drop",
]


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    messy_sensors().to_csv(path, index=False, na_rep="NA")
    return path


def run_check(path: Path, overrides: list[str]) -> int:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("check", overrides=[f"data.path={path}", *overrides])
    return check(cfg)


def test_every_problem_is_counted_with_the_key_that_fixes_it(messy, capsys):
    assert run_check(messy, MESSY) == 1
    out = capsys.readouterr().out
    assert "4,438 rows, 4 series, frequency h" in out
    assert "Aotizhongxin  1441" in out and "Huairou   120" in out
    assert "gap: series 'Gucheng': 3 step(s) missing after 2014-01-09 07:00:00" in out
    assert "problem: non-numeric column(s) ['wd']" in out
    assert "fix: data.categorical=[wd] takes them as categories observed" in out
    assert "data.features=[pm2.5,DEWP,TEMP,PRES,Iws] leaves them out" in out
    assert "problem: 1 row(s) repeat the timestamp" in out and "data.duplicates=first" in out
    assert "problem: 3 timestamp(s) missing at h in 1 series" in out
    assert "problem: 25 NaN/inf value(s) in the features" in out
    # 120 rows: 84 / 12 / 24 per split; 72 is the largest whole number of days under 84 - 12
    assert "data.lookback=72 data.horizon=12 fit every split of every series" in out
    assert out.rstrip().endswith("training would stop on the problems above")


def test_with_the_keys_it_names_training_would_start(messy, capsys):
    assert run_check(messy, [*MESSY, *FIXES]) == 0
    out = capsys.readouterr().out
    assert "handled: 3 timestamp(s) missing at h in 1 series (data.fill_gaps=interpolate)" in out
    assert "windows (lookback 168, horizon 96): train 2,232, val 147, test 579" in out
    assert out.rstrip().endswith("training would start")


def test_the_loader_has_the_last_word(messy, capsys):
    """ffill cannot fill the first day of a sensor: the profile cannot tell, the loader can."""
    fixes = [f if "fill_missing" not in f else "data.fill_missing=ffill" for f in FIXES]
    assert run_check(messy, [*MESSY, *fixes]) == 1
    assert (
        "data.fill_missing=interpolate fills them with the first value" in capsys.readouterr().out
    )


@pytest.mark.slow
def test_the_command_exits_1_and_writes_nothing(messy, tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "forecast-check"), f"data.path={messy}", *MESSY],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "training would stop" in done.stdout
    assert list(tmp_path.iterdir()) == []  # no run folder, no log file


def test_the_guide_shows_what_the_command_prints(messy, capsys, monkeypatch):
    """docs/guides/your-data.md's example, run as written: the same lines come out."""
    text = (REPO / "docs" / "guides" / "your-data.md").read_text()
    block = text.split("<!-- check-example -->\n```\n")[1].split("```\n<!-- /check-example -->")[0]
    command, *shown = block.rstrip("\n").split("\n")
    monkeypatch.chdir(messy.parent)
    overrides = [arg.strip("'") for arg in command.split()[2:]]
    assert run_check(Path("messy.csv"), overrides) == 1
    assert capsys.readouterr().out.rstrip("\n").split("\n") == shown


def test_a_missing_time_column_is_one_problem_naming_the_keys(messy, capsys):
    assert run_check(messy, ["data=csv"]) == 1  # data.timestamp: date, which it has not
    out = capsys.readouterr().out
    assert "problem: " in out and "column(s) ['date'] not found (data.timestamp" in out


def test_a_file_without_timestamps_is_profiled_in_steps(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    path = tmp_path / "steps.csv"
    pd.DataFrame({"id": ["x"] * 200 + ["y"] * 300, "a": np.arange(500.0)}).to_csv(path, index=False)
    overrides = ["data=csv", "data.timestamp=null", "data.series_id=id", "data.lookback=24"]
    assert run_check(path, [*overrides, "data.horizon=6"]) == 0
    out = capsys.readouterr().out
    assert "500 rows, 2 series, frequency integer steps" in out
    assert "     x   200      0   199" in out and "windows (lookback 24, horizon 6)" in out


def test_split_borders_past_the_file_are_a_problem_not_a_traceback(tmp_path, capsys):
    """Without data=csv the ETTh1 borders stay, far past a small file's rows."""
    import numpy as np
    import pandas as pd

    path = tmp_path / "small.csv"
    stamps = pd.date_range("2024-01-01", periods=300, freq="h")
    pd.DataFrame({"ds": stamps, "y": np.arange(300.0)}).to_csv(path, index=False)
    assert run_check(path, ["data.timestamp=ds"]) == 1
    assert "problem: 1 series too short for lookback + horizon" in capsys.readouterr().out


def test_a_table_of_several_series_without_their_id_is_told_the_id_column(tmp_path, capsys):
    """Four markets in one long table, data.series_id not set: every timestamp repeats four
    times, once per value of unique_id."""
    import numpy as np
    import pandas as pd

    stamps = pd.date_range("2024-01-01", periods=200, freq="h")
    frame = pd.concat(
        pd.DataFrame({"unique_id": m, "ds": stamps, "y": np.arange(200.0)}) for m in "ABCD"
    )
    frame.to_csv(tmp_path / "markets.csv", index=False)
    assert run_check(tmp_path / "markets.csv", ["data=csv", "data.timestamp=ds"]) == 1
    out = capsys.readouterr().out
    assert (
        "problem: the timestamps repeat once per value of column 'unique_id': a table of 4 " in out
    )
    assert "fix: data.series_id=unique_id" in out


def test_a_row_counter_is_named_and_left_out_of_the_suggested_features(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    stamps = pd.date_range("2024-01-01", periods=2000, freq="h")
    frame = pd.DataFrame({"No": np.arange(1, 2001), "date": stamps, "pm": np.sin(np.arange(2e3))})
    frame.to_csv(tmp_path / "counted.csv", index=False)
    assert run_check(tmp_path / "counted.csv", ["data=csv"]) == 0
    out = capsys.readouterr().out
    assert "note: column(s) ['No'] count the rows (1, 2, 3, ...)" in out
    assert "fix: data.features=[pm] leaves them out" in out
    frame.assign(wind="NE").to_csv(tmp_path / "text.csv", index=False)
    assert run_check(tmp_path / "text.csv", ["data=csv"]) == 1
    assert "data.features=[pm] leaves them out (and the row counter(s) ['No'])" in (
        capsys.readouterr().out
    )


def test_unsorted_rows_are_named_by_their_first_file_line(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    stamps = pd.date_range("2024-01-01", periods=200, freq="h")
    frame = pd.DataFrame({"date": stamps, "y": np.arange(200.0)})
    frame = pd.concat([frame.iloc[:50], frame.iloc[[60]], frame.iloc[50:60], frame.iloc[61:]])
    frame.to_csv(tmp_path / "unsorted.csv", index=False)
    assert run_check(tmp_path / "unsorted.csv", ["data=csv"]) == 1
    # data row 51 (0-based) is file line 53: the header is line 1
    assert "1 row(s) are earlier than the row before, the first at file line 53" in (
        capsys.readouterr().out
    )


def test_daily_data_in_a_zone_with_daylight_saving_has_no_gap(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    days = pd.date_range("2024-03-01", periods=400, freq="D", tz="Europe/Berlin")
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "a": np.sin(np.arange(400.0))})
    frame.to_csv(tmp_path / "daily.csv", index=False)
    overrides = ["data=csv", "data.timezone=Europe/Berlin", "data.freq=D", "data.horizon=7"]
    assert run_check(tmp_path / "daily.csv", overrides) == 0
    out = capsys.readouterr().out
    assert "gap:" not in out and "training would start" in out


def test_windows_of_a_test_start_are_counted_per_series(tmp_path, capsys):
    """Two hourly series ending at different times: each tests its rows from data.test_start
    (16 and 20 rows), validation as many before, as training will split them."""
    frames = [
        pd.DataFrame({"date": pd.date_range(start, periods=n, freq="h"), "id": name, "y": 1.0})
        for name, start, n in [("a", "2024-01-01", 100), ("b", "2024-01-02", 80)]
    ]
    pd.concat(frames).to_csv(tmp_path / "t.csv", index=False)
    keys = ["data=csv", "data.series_id=id", "data.horizon=4", "data.lookback=8",
            "data.split_ratios=null", "data.test_start='2024-01-04 12:00'"]  # fmt: skip
    assert run_check(tmp_path / "t.csv", keys) == 0
    # train (68 - 12 + 1) + (40 - 12 + 1); val and test borrow the lookback: 16 + 8 - 12 + 1 ...
    assert "windows (lookback 8, horizon 4): train 86, val 30, test 30" in capsys.readouterr().out
