"""DDP with each rank's own series: two gloo processes started by torchrun hold every series
exactly once between them, and every statistic and score they sum is the one process's."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY, free_port, sine_frame
from ranks_worker import CASES, figures

from forecast import Forecaster
from forecast.data.datamodule import ForecastDataModule
from forecast.data.rules import RowNames
from forecast.data.shards import KeptRows, Shard, series_rows
from forecast.evaluation.scoring import evaluate_windows

WORKER = Path(__file__).with_name("ranks_worker.py")


def panel(folder: Path) -> None:
    """ranks_worker.CASES' files: 5 sites of sine_frame's columns and different lengths; the
    same with covariates of every kind and a site too short to be kept; one site."""
    frame = pd.concat(
        sine_frame(200 + 10 * k, seed=k).assign(site=f"s{k}") for k in range(5)
    ).reset_index(drop=True)
    frame.to_parquet(folder / "panel.parquet")
    frame.to_csv(folder / "panel.csv", index=False)
    hours = frame.date.dt.hour
    rich = frame.assign(
        event=np.where(hours % 5 == 0, "sale", "none"), store="store-" + frame.site.str[1:],
        size=frame.site.str[1:].astype(float) * 10,
    )  # fmt: skip
    short = rich[rich.site == "s0"].head(40).assign(site="short")
    pd.concat([rich, short], ignore_index=True).to_parquet(folder / "rich.parquet")
    frame[frame.site == "s0"].to_parquet(folder / "one.parquet")


def close(a, b, rtol: float = 1e-10) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(close(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor | np.ndarray | float | int) and not isinstance(a, bool):
        return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=1e-12)
    return a == b


@pytest.mark.slow
def test_two_ranks_hold_every_series_once_and_sum_to_one_process(tmp_path):
    panel(tmp_path)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
        f"--master-port={free_port()}", str(WORKER), str(tmp_path), str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in range(2)]
    for case, (file, keys) in CASES.items():
        whole = figures(str(tmp_path / file), **keys)
        first, second = (rank[case] for rank in ranks)
        if case == "one_series":  # too few series to split: each rank holds the table
            assert first["series"] == second["series"] == whole["series"] == ["s0"]
            assert first["windows"] == second["windows"] == whole["windows"]
        else:  # every series exactly once, rank r holding the table's r-th, r + 2-th, ...
            assert first["series"] == whole["series"][0::2]
            assert second["series"] == whole["series"][1::2]
            for split, count in whole["windows"].items():
                assert first["windows"][split] + second["windows"][split] == count
        for rank in (first, second):  # the same model file, scores and weights on both
            assert rank["dropped"] == whole["dropped"] and rank["changes"] == whole["changes"]
            assert close(rank["spec"], whole["spec"], rtol=1e-12)
            for name in ("linear", "candidates", "weights", "test"):
                assert close(rank[name], whole[name]), (case, name)
            # a float32 mean of each batch's loss: batches of other windows round otherwise
            assert close(rank["val_loss"], whole["val_loss"], rtol=1e-6)
            assert rank["test_windows"] == whole["test_windows"]
    spec = ranks[0]["series_scaled"]["spec"]
    assert spec["series_scaler"]["keys"] == [f"s{k}" for k in range(5)]
    assert ranks[1]["covariates"]["dropped"] == ["short"]  # rank 1 dropped it, rank 0 says so
    assert ranks[1]["covariates"]["spec"]["categories"]["store"] == [f"store-{k}" for k in range(5)]


def forecast_train(cwd: Path, *overrides: str, env: dict | None = None) -> subprocess.Popen:
    argv = [str(Path(sys.executable).parent / "forecast-train"), *TINY, *overrides,
            "register_model=null"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}", **(env or {})}
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


@pytest.mark.slow
def test_forecast_train_ddp_reads_each_series_once_and_scores_as_one_process(tmp_path):
    panel(tmp_path)
    process = forecast_train(  # an ensemble's members too: each trained on the ranks' shards
        tmp_path, "trainer=ddp", "data.path=panel.parquet", "data.series_id=site",
        "ensemble.size=2", "trainer.max_epochs=1",
    )  # fmt: skip
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    assert "rank 0 of 2: 3 of the 5 series" in output
    assert "rank 1 of 2: 2 of the 5 series" in output
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    every = client.search_runs([client.get_experiment_by_name("forecast").experiment_id])
    (run,) = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    members = [r for r in every if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
    assert {r.info.status for r in every} == {"FINISHED"}
    # each member's epoch, logged once (rank 0's)
    assert [len(client.get_metric_history(m.info.run_id, "val_loss")) for m in members] == [1, 1]
    (model,) = tmp_path.glob("logs/runs/*/model.pt")
    assert len(list(tmp_path.glob("logs/runs/*"))) == 1  # one run folder for both ranks
    forecaster = Forecaster.load(model)  # scored again in one process, every series at hand
    dm = ForecastDataModule.from_spec(forecaster.spec)
    dm.setup()
    again = evaluate_windows(forecaster.net, dm, dm.datasets["test"]).metrics("test")
    for name in ("test_mse", "test_mae", "test_mse_member_1", "test_smape", "test_owa"):
        assert run.data.metrics[name] == pytest.approx(again[name], rel=1e-6), name


@pytest.mark.slow
def test_a_bad_series_on_one_rank_stops_every_rank_with_its_message(tmp_path):
    panel(tmp_path)
    frame = pd.read_parquet(tmp_path / "panel.parquet")
    row = frame.index[frame.site == "s1"][5]  # rank 1's series: a timestamp repeated
    frame.loc[row, "date"] = frame.loc[row - 1, "date"]
    frame.to_parquet(tmp_path / "bad.parquet")
    process = forecast_train(
        tmp_path, "trainer=ddp", "data.path=bad.parquet", "data.series_id=site"
    )
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1
    assert f"series 's1': timestamps duplicated at data row {row} (0-based)" in output  # the file's
    assert "error: rank 0 of 2: another rank stopped (its error says why)" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_rank_whose_series_are_all_too_short_says_it_is_that_rank_s(tmp_path):
    """Series s1 and s3, rank 1's, too short for a window and dropped: rank 1 keeps none,
    while the table as a whole trains."""
    frame = pd.concat(
        sine_frame(200 if k % 2 == 0 else 20, seed=k).assign(site=f"s{k}") for k in range(4)
    )
    frame.to_parquet(tmp_path / "dropped.parquet")
    keys = ["data.path=dropped.parquet", "data.series_id=site", "data.short_series=drop"]
    process = forecast_train(tmp_path, "trainer=ddp", *keys)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1, output[-2000:]
    assert "dropped.parquet (the series of rank 1 of 2): every series is shorter" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_two_nodes_of_one_process_train_one_model(tmp_path):
    """Two 'machines' on one: the same command with NODE_RANK 0 and 1 and one master address."""
    sine_frame().to_csv(tmp_path / "sines.csv", index=False)
    master = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    keys = ["data.path=sines.csv", "trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2",
            "trainer.max_epochs=1"]  # fmt: skip
    nodes = [
        forecast_train(tmp_path, *keys, f"hydra.run.dir=node{k}", env=master | {"NODE_RANK": k})
        for k in ("0", "1")
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("forecast").experiment_id])
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 1
    assert (tmp_path / "node0" / "model.pt").is_file()
    assert not (tmp_path / "node1" / "model.pt").exists()  # rank 0 writes, on node 0
    assert 0 < run.data.metrics["test_mse"] < 2


def test_a_rank_takes_every_other_series_in_order_of_first_appearance():
    frame = pd.DataFrame({"id": ["b", "a", "b", "c", "a", "d"], "region": [1, 1, 1, 2, 1, 2]})
    batches = [frame.iloc[:3], frame.iloc[3:]]  # a series met again in a later batch
    keep, count = series_rows(batches, ["id"], Shard(1, 2))  # b, a, c, d: rank 1 has a and d
    assert count == 4 and keep.tolist() == [False, True, False, False, True, True]
    keep, count = series_rows([frame], ["region", "id"], Shard(0, 3))  # tuples of two columns
    assert count == 4 and keep.tolist() == [True, False, True, False, False, True]  # 1st, 4th


def test_a_ranks_rows_are_named_by_their_rows_in_the_file():
    kept = np.array([False, True, False, False, True])
    names = KeptRows(names=RowNames(first_line=2), kept=np.packbits(kept), rows=len(kept))
    assert [names(0), names(1)] == ["file line 3", "file line 6"]
