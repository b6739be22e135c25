"""Budgets at scale: an epoch of data.windows_per_epoch drawn windows, and the scored splits at
every data.eval_stride-th origin, both derived past a size where every window costs hours."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from helpers import compose_config, sine_frame

from forecast.data.datamodule import ForecastDataModule
from forecast.data.options import DataOptions
from forecast.data.windows import EPOCH_WINDOWS, EVAL_WINDOWS, ShardedBatches, budget
from forecast.errors import ForecastError
from forecast.evaluation.scoring import mean_loss
from forecast.model.config import LSTMConfig
from forecast.model.ensemble import candidate_sums, fit_combination
from forecast.model.losses import ForecastLoss
from forecast.model.net import LSTMNet


def drawn(sampler: ShardedBatches, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return torch.cat(list(sampler)).tolist()


def test_an_epoch_draws_its_windows_anew_by_seed_and_epoch():
    torch.manual_seed(7)
    sampler = ShardedBatches(1000, batch_size=32, shuffle=True, draws=100)
    first = drawn(sampler, 0)
    assert len(sampler) == 4 and len(first) == 100  # 3 batches of 32 and one of 4
    assert all(0 <= i < 1000 for i in first)
    assert drawn(sampler, 1) != first  # a new draw each epoch
    torch.manual_seed(7)
    again = ShardedBatches(1000, batch_size=32, shuffle=True, draws=100)
    assert drawn(again, 0) == first and drawn(again, 1) == drawn(sampler, 1)  # by seed
    # drawn from the windows it is given (a split's indices), and shared across ranks
    torch.manual_seed(7)
    picked = ShardedBatches(torch.arange(5000, 6000), batch_size=32, shuffle=True, draws=100)
    assert drawn(picked, 0) == [5000 + i for i in first]
    shards = []
    for rank in range(2):
        shard = ShardedBatches(1000, batch_size=32, shuffle=True, draws=100)
        shard.rank, shard.world = rank, 2
        shards.append(list(shard))
    assert [len(s) for s in shards] == [2, 2]  # equal step counts; the odd batch dropped


def test_the_budget_is_every_window_below_the_sizes_and_explicit_keys_win():
    def of(n_train: int, n_val: int, n_test: int, **keys) -> tuple:
        sizes = {"train": range(n_train), "val": range(n_val), "test": range(n_test)}
        return budget(sizes, DataOptions(**keys))

    assert of(10_000, 2_000, 1_500) == (None, 1, {})
    assert of(EPOCH_WINDOWS, EVAL_WINDOWS, 10) == (None, 1, {})
    assert of(10**8, 10, 3 * EVAL_WINDOWS + 1) == (
        EPOCH_WINDOWS,
        4,
        {"data.windows_per_epoch": EPOCH_WINDOWS, "data.eval_stride": 4},
    )
    assert of(10**8, 10**8, 10**8, windows_per_epoch=500, eval_stride=2) == (500, 2, {})
    assert of(10, 10, 10, windows_per_epoch=500) == (500, 1, {})


@pytest.mark.parametrize("key", ["windows_per_epoch", "eval_stride"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_budget_keys_are_counts(tmp_path, key, value):
    with pytest.raises(ForecastError, match=rf"data\.{key}={value!r} must be an integer >= 1"):
        ForecastDataModule(str(tmp_path / "x.csv"), **{key: value})


def test_strided_splits_score_every_stride_th_origin_of_each_series(tmp_path):
    """Two series of 200 hourly rows: validation and test windows at origins 0, 3, 6, ...
    of each series' split, exactly; training keeps every window."""
    path = tmp_path / "two.csv"
    frame = sine_frame(200)
    pd.concat([frame.assign(id="a"), frame.assign(id="b")]).to_csv(path, index=False)
    dm = ForecastDataModule(
        str(path), lookback=12, horizon=4, series_id="id", eval_stride=3, windows_per_epoch=50
    )
    dm.setup()
    assert (dm.draws, dm.stride) == (50, 3)
    for split in ("val", "test"):
        dataset = dm.datasets[split]
        loaded = torch.cat(list(getattr(dm, f"{split}_dataloader")().sampler)).tolist()
        assert loaded == dataset.strided(3).tolist()
        starts = dataset.starts(torch.as_tensor(loaded))
        for k, (start, end) in enumerate(dm.segments[split]):
            expected = list(range(start, end - 12 - 4 + 1, 3))
            assert [int(s) for s in starts if start <= s < end] == expected, (split, k)
    train_batches = list(dm.train_dataloader().sampler)
    assert sum(len(b) for b in train_batches) == 50 and len(train_batches) == 2  # batch 32


def test_validation_figures_read_the_strided_origins_alone(tmp_path):
    """The combination's weights and best_val_loss come from the same strided windows as
    early stopping: computed over those windows gathered by hand, they agree exactly."""
    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    dm = ForecastDataModule(str(path), lookback=24, horizon=6, eval_stride=4)
    dm.setup()
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1), dm.spec).eval()
    val, loss = dm.datasets["val"], ForecastLoss("mse")
    chosen = dm.datasets["val"][val.strided(4)]
    with torch.no_grad():
        forecast = net.forecast(chosen.x, chosen.future, chosen.static)
    by_hand = loss(forecast, chosen.y).item()
    assert len(val.strided(4)) == -(-len(val) // 4)
    assert mean_loss(net, val, loss, stride=4) == pytest.approx(by_hand, rel=1e-6)
    assert mean_loss(net, val, loss) != pytest.approx(by_hand, rel=1e-6)
    ensemble = fit_combination([net], dm.spec, "validation", 24, dm.datasets["train"], val, 4)
    gram, cross, squares, count = candidate_sums(ensemble, val, stride=4)
    member, y = forecast.point.double().reshape(-1), chosen.y.double().reshape(-1)
    assert count == len(y) and squares == pytest.approx(float(y @ y))
    assert gram[0, 0] == pytest.approx(float(member @ member), rel=1e-6)  # the LSTM candidate
    assert cross[0] == pytest.approx(float(member @ y), rel=1e-6)


def test_a_budgeted_run_takes_its_steps_and_says_which_origins_it_scored(tmp_path, caplog):
    from forecast.train import train
    from forecast.training.setup import build, fit

    csv = tmp_path / "sines.csv"
    sine_frame().to_csv(csv, index=False)
    keys = [f"data.path={csv}", "register_model=null", "data.windows_per_epoch=128",
            "data.eval_stride=5", "ensemble.combine=mean", "trainer.max_epochs=3",
            "callbacks.early_stopping.patience=5"]  # fmt: skip
    cfg = compose_config(tmp_path / "steps", keys)
    datamodule, model, trainer = build(cfg)
    fit(trainer, model, datamodule)
    assert trainer.global_step == 3 * 2  # 128 windows at batch 64: two steps an epoch
    caplog.set_level("INFO")
    metrics = train(compose_config(tmp_path / "run", keys))
    test_windows = len(datamodule.datasets["test"].strided(5))
    assert test_windows < len(datamodule.datasets["test"]) / 4
    assert f"({test_windows} windows, every 5-th origin;" in caplog.text
    assert metrics["test_mse"] > 0
