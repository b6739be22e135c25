"""Per-series scaling (data.scaling=series): each series by its own training rows, in the
windows, the model file, forecasts, scores and the exported graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecast.data.datamodule import ForecastDataModule
from forecast.data.scaling import Scaler, SeriesScaler
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.evaluation.scoring import evaluate_windows
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.serving.forecaster import Forecaster

LEVELS = {"small": 1.0, "large": 1000.0}  # the same shape, three orders of magnitude apart


def panel(n_rows: int = 120) -> pd.DataFrame:
    """Two series of one daily shape with a trend, one a thousand times the other."""
    t = np.arange(n_rows)
    stamps = pd.date_range("2024-01-01", periods=n_rows, freq="h")
    shape = 12 + 5 * np.sin(2 * np.pi * t / 24) + t / 50
    frames = [
        pd.DataFrame({"date": stamps, "id": name, "y": level * shape})
        for name, level in LEVELS.items()
    ]
    return pd.concat(frames, ignore_index=True)


def setup(tmp_path, frame: pd.DataFrame, **options) -> ForecastDataModule:
    frame.to_csv(tmp_path / "panel.csv", index=False)
    dm = ForecastDataModule(
        str(tmp_path / "panel.csv"), lookback=24, horizon=6, series_id="id", **options
    )
    dm.setup()
    return dm


def test_a_panel_is_scaled_per_series_so_every_series_weighs_alike(tmp_path):
    """Series a thousand times apart have the same windows once each is scaled by its own
    training rows; one scaler per column leaves the small one almost constant."""
    dm = setup(tmp_path, panel())
    assert dm.spec.scaling == "series" and dm.derived == {"data.scaling": "series"}
    train = dm.datasets["train"]
    half = len(train) // 2
    small, large = (train[torch.arange(half) + offset] for offset in (0, half))
    torch.testing.assert_close(small.x, large.x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(small.y, large.y, rtol=1e-5, atol=1e-5)
    first = panel()[lambda f: f.id == "small"].y.to_numpy()[:84]  # training rows: 0.7 of 120
    stats = dm.spec.series_scaler
    np.testing.assert_allclose(stats.mean[:, 0], [first.mean(), 1000 * first.mean()])
    np.testing.assert_allclose(stats.std[:, 0], [first.std(), 1000 * first.std()])

    by_column = setup(tmp_path, panel(), scaling="column")
    assert by_column.spec.series_scaler is None and by_column.derived == {}
    small = by_column.datasets["train"][torch.arange(half)].x
    assert float(small.std()) < 0.01  # next to the large series, the small one is flat


def test_scores_in_the_data_units_take_each_series_back_by_its_own_spread(tmp_path):
    dm = setup(tmp_path, panel())
    net = LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), dm.spec)
    evaluation = evaluate_windows(net, dm, dm.datasets["test"])
    metrics = evaluation.metrics("test")
    test = dm.datasets["test"]
    batch = test[torch.arange(len(test))]
    with torch.no_grad():
        error = (net.forecast(batch.x).point - batch.y).double()[..., 0]  # (windows, horizon)
    units = torch.from_numpy(dm.scalers.std[test.series_of(torch.arange(len(test))), 0])
    assert metrics["test_mse"] == pytest.approx(error.square().mean().item())
    assert metrics["test_mae_orig"] == pytest.approx((error.abs() * units[:, None]).mean().item())
    # per series: the mean of its windows' errors, worst first, and named in the report
    by_series = evaluation.by_series()
    assert list(by_series.columns) == ["id", "windows", "mse", "mae", "mae_orig"]
    series = test.series_of(torch.arange(len(test))).numpy()
    for row in by_series.itertuples():
        mine = series == list(LEVELS).index(row.id)
        assert row.windows == mine.sum()
        assert row.mse == pytest.approx(error[mine].square().mean().item())
        orig = (error[mine].abs() * units[mine, None]).mean().item()
        assert row.mae_orig == pytest.approx(orig)
    assert by_series.mse.is_monotonic_decreasing
    worst, best = by_series.id
    assert f"per series (2): worst {worst} (MSE {by_series.mse[0]:.4f}), best {best}" in (
        evaluation.table()
    )


def test_a_saved_panel_forecasts_each_known_series_by_its_training_statistics(tmp_path):
    """The model file keeps each series' statistics: a forecast of a known series uses them
    whatever history it is given; a series it never saw is scaled by its own history."""
    dm = setup(tmp_path, panel())
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden_size=4, num_layers=1, instance_norm=False), dm.spec)
    spec = DataSpec.from_dict(dm.spec.to_dict())  # as a model file holds it
    forecaster = Forecaster(net, spec)
    history = panel().groupby("id").tail(30)
    out = forecaster.predict(history)
    for k, name in enumerate(LEVELS):
        rows = history[history.id == name].y.to_numpy()[-24:, None]
        scaler = Scaler(spec.series_scaler.mean[k], spec.series_scaler.std[k])
        x = torch.from_numpy(scaler.transform(rows, np.float32))
        with torch.no_grad():
            point = net.forecast(x).point.double().numpy()
        np.testing.assert_allclose(out[out.id == name].y, scaler.inverse(point)[:, 0], rtol=1e-5)
    # a new series: scaled by the mean and spread of the history given
    new = panel().loc[lambda f: f.id == "large"].assign(id="new").tail(30)
    own = Scaler.fit(new[["y"]].to_numpy())
    x = torch.from_numpy(own.transform(new[["y"]].to_numpy()[-24:], np.float32))
    with torch.no_grad():
        point = net.forecast(x).point.double().numpy()
    np.testing.assert_allclose(forecaster.predict(new).y, own.inverse(point)[:, 0], rtol=1e-5)


def test_series_statistics_round_trip_with_any_id():
    keys = [("north", np.int64(3)), ("south", 4)]  # two id columns, numpy's and Python's ints
    scaler = SeriesScaler(keys, np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]]))
    again = SeriesScaler.from_dict(scaler.to_dict())
    assert again.to_dict() == {"keys": [["north", 3], ["south", 4]], "mean": [[1.0], [2.0]],
                               "std": [[3.0], [4.0]]}  # fmt: skip
    assert again.find(["south", 4]).mean.tolist() == [2.0]  # a JSON list finds a tuple's id
    assert again.find(("north", 3)).std.tolist() == [3.0]
    assert again.find("east") is None


def test_a_series_constant_over_its_training_rows_takes_the_column_spread(tmp_path):
    frame = panel()
    frame.loc[(frame.id == "small") & (frame.index < 84), "y"] = 7.0
    dm = setup(tmp_path, frame)
    assert dm.spec.series_scaler.mean[0, 0] == 7.0
    assert dm.spec.series_scaler.std[0, 0] == pytest.approx(dm.spec.scaler.std[0])


@pytest.mark.parametrize(
    ("config", "named"),
    [({"loss": "poisson"}, "model.loss=poisson"), ({"nonnegative": True}, "model.nonnegative")],
)
def test_models_in_the_data_units_refuse_per_series_scaling_by_name(tmp_path, config, named):
    dm = setup(tmp_path, panel(), scaling="series")
    with pytest.raises(ForecastError, match=rf"{named}.*set data\.scaling=column"):
        LSTMNet(LSTMConfig(hidden_size=4, num_layers=1, **config), dm.spec)


def test_an_unknown_scaling_is_refused(tmp_path):
    with pytest.raises(ForecastError, match=r"data\.scaling='window' must be one of"):
        setup(tmp_path, panel(), scaling="window")


@pytest.mark.parametrize(
    ("overrides", "scaling", "derived"),
    [
        ([], "series", {"data.scaling": "series"}),
        (["model.loss=poisson"], "column", {"data.scaling": "column"}),
        (["model.nonnegative=true", "data.scaling=series"], None, None),  # the user's: refused
    ],
)
def test_training_derives_the_scaling_a_model_can_take(tmp_path, overrides, scaling, derived):
    from helpers import compose_config

    from forecast.training.setup import build_data, build_model

    panel().to_csv(tmp_path / "panel.csv", index=False)
    cfg = compose_config(
        tmp_path, [f"data.path={tmp_path / 'panel.csv'}", "data.series_id=id", *overrides]
    )
    dm = build_data(cfg)
    if scaling is None:
        with pytest.raises(ForecastError, match=r"set data\.scaling=column"):
            build_model(cfg.model, dm.spec)
        return
    assert dm.spec.scaling == scaling and dm.derived == derived
    build_model(cfg.model, dm.spec)


def test_a_panel_scored_on_its_last_steps_reads_as_m4_scores_it(tmp_path):
    """One test window per series (data.test_size=horizon): sMAPE and the per-series MASE of
    the evaluation are M4's (forecast.evaluation.m4), averaged over the series."""
    from forecast.evaluation import m4

    dm = setup(tmp_path, panel(), split_ratios=None, test_size=6)
    net = LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), dm.spec)
    metrics = evaluate_windows(net, dm, dm.datasets["test"], season=24).metrics("test")
    batch = dm.datasets["test"][torch.arange(2)]
    with torch.no_grad():
        point = net.forecast(batch.x).point.double().numpy()[..., 0]
    stats, frame = dm.scalers, panel()
    smapes, mases = [], []
    for k, name in enumerate(LEVELS):
        y = frame[frame.id == name].y.to_numpy()
        forecast = point[k] * stats.std[k, 0] + stats.mean[k, 0]
        smapes.append(m4.smape(y[-6:], forecast))
        mases.append(m4.mase(y[-6:], forecast, y[: 120 - 12], 24))  # before validation
    assert metrics["test_smape"] == pytest.approx(np.mean(smapes))
    assert metrics["test_mase_series"] == pytest.approx(np.mean(mases))
    assert "test_smape_seasonal_naive" in metrics
    # OWA against Naive2, forecast from all of each series' rows before its test
    naive2 = [m4.naive2(frame[frame.id == n].y.to_numpy()[:-6], 6, 24) for n in LEVELS]
    truths = [frame[frame.id == n].y.to_numpy() for n in LEVELS]
    smape2 = np.mean([m4.smape(y[-6:], f) for y, f in zip(truths, naive2, strict=True)])
    mase2 = np.mean([m4.mase(y[-6:], f, y[:108], 24) for y, f in zip(truths, naive2, strict=True)])
    owa = (np.mean(smapes) / smape2 + np.mean(mases) / mase2) / 2
    assert metrics["test_owa"] == pytest.approx(owa, rel=1e-5)
    assert "test_owa_seasonal_naive" in metrics
    shifted = panel().assign(y=lambda f: f.y - 13)  # values below zero: no Naive2, no OWA
    below = setup(tmp_path, shifted, split_ratios=None, test_size=6)
    scored = evaluate_windows(net, below, below.datasets["test"], season=24)
    assert scored.naive2 is None and "test_owa" not in scored.metrics("test")
