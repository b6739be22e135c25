"""Covariates from the file to the forecast: calendar features, known-in-advance columns and
static attributes, checked against exact values, leakage rules and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import compose_config

from forecast import Forecaster
from forecast.data.covariates import calendar_features
from forecast.data.datamodule import ForecastDataModule
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.evaluation.spans import span
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.model.parts import FutureEffect
from forecast.serving.pyfunc import future_flags

LOOKBACK, HORIZON = 8, 4


def panel(n_rows: int = 60) -> pd.DataFrame:
    """Two hourly series: ``y`` and the future covariate ``price`` code their row (series
    ``b`` adds 1000), ``store`` (text) and ``size`` (number) are fixed per series, ``event``
    is a category known in advance."""
    frames = []
    for k, name in enumerate(["a", "b"]):
        t = np.arange(n_rows)
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.date_range("2024-01-01", periods=n_rows, freq="h"),
                    "id": name,
                    "y": 1000.0 * k + t,
                    "price": 1000.0 * k + t + 0.5,
                    "event": np.where(t % 5 == 0, "sale", "none"),
                    "store": f"store-{name}",
                    "size": 10.0 * (k + 1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def datamodule(tmp_path, frame: pd.DataFrame, **kwargs) -> ForecastDataModule:
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    settings = {
        "lookback": LOOKBACK,
        "horizon": HORIZON,
        "series_id": "id",
        "split_ratios": [0.5, 0.25, 0.25],
        "future_covariates": ["price", "event"],
        "static_covariates": ["store", "size"],
        "calendar": ["hour"],
        "categorical": ["event", "store"],
    }
    dm = ForecastDataModule(str(path), **{**settings, **kwargs})
    dm.setup()
    return dm


def test_calendar_features_are_sines_and_cosines_of_the_phase():
    stamps = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 06:00", "2024-03-31 18:00"])
    out = calendar_features(stamps.to_numpy(), ["hour", "month"])
    np.testing.assert_allclose(out[:, 0], [0, 1, -1], atol=1e-12)  # hour sine
    np.testing.assert_allclose(out[:, 1], [1, 0, 0], atol=1e-12)  # hour cosine
    np.testing.assert_allclose(out[2, 2:], [np.sin(np.pi / 3), np.cos(np.pi / 3)])  # March
    # a zoned model's stamps are held in UTC; its calendar is local: 00:00 UTC is 02:00 there
    zoned = DataSpec(
        features=["y"],
        targets=["y"],
        lookback=4,
        horizon=2,
        calendar=["hour"],
        timezone="UTC+02:00",
    )
    local = zoned.encode_future({}, stamps.to_numpy()[:1], "x")
    np.testing.assert_allclose(local[0], [np.sin(np.pi / 6), np.cos(np.pi / 6)])


def test_covariates_are_not_past_inputs_and_are_scaled_on_training_rows(tmp_path):
    dm = datamodule(tmp_path, panel())
    spec = dm.spec
    assert spec.features == ["y"] and spec.targets == ["y"]
    assert spec.future_columns == ["price", "event", "hour_sin", "hour_cos"]
    assert spec.static_columns == ["size", "store"]
    # training rows: the first 30 of each series
    train_price = np.concatenate([np.arange(30) + 0.5, 1000 + np.arange(30) + 0.5])
    np.testing.assert_allclose(spec.future_scaler.mean, [train_price.mean()])
    np.testing.assert_allclose(spec.future_scaler.std, [train_price.std()])
    assert spec.categories == {"event": ["none", "sale"], "store": ["store-a", "store-b"]}
    np.testing.assert_allclose(spec.static_scaler.mean, [15.0])


def test_a_window_carries_its_own_rows_of_future_covariates_and_its_series_statics(tmp_path):
    dm = datamodule(tmp_path, panel())
    train = dm.datasets["train"]
    per_series = 30 - LOOKBACK - HORIZON + 1
    batch = train[torch.tensor([3, per_series + 3])]  # window 3 of series a and of series b
    assert batch.x.shape == (2, LOOKBACK, 1) and batch.future.shape == (2, LOOKBACK + HORIZON, 4)
    price = dm.spec.future_scaler.inverse(batch.future[..., :1].double().numpy())[..., 0]
    # the covariates of rows 3 .. 14 exactly: nothing beyond the horizon reaches the window
    np.testing.assert_allclose(price[0], np.arange(3, 15) + 0.5, atol=1e-3)  # float32
    np.testing.assert_allclose(price[1], 1000 + np.arange(3, 15) + 0.5, atol=1e-3)
    np.testing.assert_array_equal(batch.future[0, :, 1], (np.arange(3, 15) % 5 == 0) * 1.0)
    np.testing.assert_allclose(batch.static[:, 0], [-1.0, 1.0])  # size 10 and 20, scaled
    np.testing.assert_array_equal(batch.static[:, 1], [0.0, 1.0])  # store codes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": lambda f: f["size"].where(f.index != 3, 99.0)}, "'size' varies within"),
        ({"store": lambda f: f.store}, None),
        ({"event": lambda f: f.event.where(f.index != 55, "flood")}, "the category 'flood'"),
    ],
)
def test_bad_covariates_name_the_problem(tmp_path, change, message):
    frame = panel().assign(**change)
    if message is None:  # a text covariate not listed as categorical
        with pytest.raises(ForecastError, match=r"'store' is not numeric.*data\.categorical"):
            datamodule(tmp_path, frame, categorical=["event"])
        return
    with pytest.raises(ForecastError, match=message):
        datamodule(tmp_path, frame)


@pytest.mark.parametrize(
    ("options"),
    [
        {},
        {"channel_independent": True, "segment_len": 4},
        {"decoder": "recurrent", "segment_len": 2, "quantiles": [0.1, 0.9]},
    ],
)
def test_covariates_reach_the_forecast_in_every_mode(tmp_path, options):
    torch.manual_seed(0)
    dm = datamodule(tmp_path, panel())
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1, **options), dm.spec).eval()
    batch = dm.datasets["train"][torch.arange(4)]
    # inputs with some spread: instance norm scales every change by the window's spread
    batch = batch._replace(x=torch.randn_like(batch.x))
    forecast = net.forecast(batch.x, batch.future, batch.static)
    assert forecast.point.shape == (4, HORIZON, 1)
    horizon_changed = batch.future.clone()
    horizon_changed[:, LOOKBACK:, 0] += 1.0  # the price over the horizon
    moved = net.forecast(batch.x, horizon_changed, batch.static).point
    assert not torch.allclose(moved, forecast.point)
    other_store = batch.static.clone()
    other_store[:, 1] = 1 - other_store[:, 1]
    assert not torch.allclose(
        net.forecast(batch.x, batch.future, other_store).point, forecast.point
    )
    single = net.forecast(batch.x[0], batch.future[0], batch.static[0])
    torch.testing.assert_close(single.point, forecast.point[0])
    with pytest.raises(ForecastError, match=r"takes future covariates of shape \(batch, 12, 4\)"):
        net.forecast(batch.x)
    with pytest.raises(ForecastError, match=r"future covariates have shape \(4, 11, 4\)"):
        net.forecast(batch.x, batch.future[:, 1:], batch.static)


def test_the_future_effect_is_its_mlp_of_each_step_covariates_and_the_state():
    """The state's part of the first layer is computed once per sequence; the result is the
    MLP of [step covariates, state] at every horizon step, as written."""
    torch.manual_seed(0)
    effect = FutureEffect(LSTMConfig(hidden_size=16, num_layers=1), width=3, outputs=2)
    future, last = torch.randn(5, 7, 3), torch.randn(5, 16)
    expected = effect.mlp(torch.cat([future, last.unsqueeze(1).expand(-1, 7, -1)], dim=-1))
    out = effect(future, last)
    assert out.shape == (5, 7, 2)
    torch.testing.assert_close(out, expected)


@pytest.fixture(scope="module")
def covariate_model(tmp_path_factory):
    from forecast.train import train

    tmp = tmp_path_factory.mktemp("covariates")
    path = tmp / "panel.csv"
    panel(80).to_csv(path, index=False)
    overrides = [
        f"data.path={path}", f"data.lookback={LOOKBACK}", f"data.horizon={HORIZON}",
        "data.series_id=id", "data.future_covariates=[price,event]",
        "data.static_covariates=[store,size]", "data.calendar=[hour,dayofweek]",
        "data.categorical=[event,store]", "data.split_ratios=[0.6,0.2,0.2]",
        "trainer.max_epochs=1",
    ]  # fmt: skip
    cfg = compose_config(tmp, overrides)
    metrics = train(cfg)
    return {"metrics": metrics, "model": tmp / "run" / "model.pt", "frame": panel(80), "cfg": cfg}


def future_of(frame: pd.DataFrame, rows: slice) -> pd.DataFrame:
    return frame.groupby("id").nth(rows)[["date", "id", "price", "event"]]


def test_a_covariate_model_trains_saves_and_forecasts(covariate_model):
    assert np.isfinite(covariate_model["metrics"]["test_mse"])
    forecaster = Forecaster.load(covariate_model["model"])
    spec = forecaster.spec
    assert spec.calendar == ["hour", "dayofweek"] and spec.static_covariates == ["store", "size"]
    frame = covariate_model["frame"]
    history = frame.groupby("id").head(70)
    future = future_of(frame, slice(70, 74))
    out = forecaster.predict(history, future)
    assert list(out.columns) == ["id", "date", "y"] and len(out) == 2 * HORIZON
    assert out.date.iloc[0] == pd.Timestamp("2024-01-03 22:00")  # one step after row 69
    # the same numbers straight from the network on the DataModule's windows of that data
    dm = ForecastDataModule.from_spec(spec)
    dm.setup()
    windows = span(dm, "2024-01-03 22:00", "2024-01-04 01:00")
    batch = windows[torch.arange(len(windows))]
    with torch.no_grad():
        point = forecaster.net.forecast(batch.x, batch.future, batch.static).point
    # each series back in its own units (data.scaling=series, derived for a panel)
    series, target = windows.series_of(torch.arange(len(windows))).numpy(), spec.target_index
    mean, std = (stats[series][:, None, target] for stats in (dm.scalers.mean, dm.scalers.std))
    expected = (point.double().numpy() * std + mean)[..., 0]
    np.testing.assert_allclose(out.y.to_numpy().reshape(2, HORIZON), expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("history_change", "future_rows", "message"),
    [
        (None, slice(70, 73), "future covariates have 3 rows, the model needs the next 4 steps"),
        (None, slice(70, 75), "future covariates have 5 rows, the model needs the next 4 steps"),
        (None, slice(71, 75), "future row 0 is at 2024-01-03 23:00:00, expected 2024-01-03 22:00"),
        (lambda f: f.assign(size=f["size"] + f.index % 2), slice(70, 74), "'size' varies"),
        (lambda f: f.drop(columns="price"), slice(70, 74), r"column\(s\) \['price'\] not found"),
        (lambda f: f.assign(store="store-z"), slice(70, 74), "the category 'store-z'"),
    ],
)
def test_bad_covariates_at_forecast_time(covariate_model, history_change, future_rows, message):
    forecaster = Forecaster.load(covariate_model["model"])
    frame = covariate_model["frame"]
    history = frame.groupby("id").head(70)
    if history_change is not None:
        history = history_change(history)
    with pytest.raises(ForecastError, match=message):
        forecaster.predict(history, future_of(frame, future_rows))
    if history_change is None and future_rows == slice(70, 73):
        with pytest.raises(ForecastError, match="give the next 4 rows of each series"):
            forecaster.predict(history)


def test_serving_takes_future_records(covariate_model):
    from fastapi.testclient import TestClient

    from forecast.serving.app import create_app

    forecaster = Forecaster.load(covariate_model["model"])
    frame = covariate_model["frame"].assign(date=lambda f: f.date.dt.strftime("%Y-%m-%d %H:%M:%S"))
    history = frame.groupby("id").head(70)
    future = future_of(frame, slice(70, 74))
    client = TestClient(create_app(forecaster, "covariates"))
    series = [
        {
            "id": name,
            "data": history[history.id == name].drop(columns="id").to_dict(orient="records"),
            "future": future[future.id == name].drop(columns="id").to_dict(orient="records"),
        }
        for name in ("a", "b")
    ]
    meta = client.get("/metadata").json()
    assert meta["covariates"] == [
        {"name": "price", "role": "future", "categories": None},
        {"name": "event", "role": "future", "categories": ["none", "sale"]},
        {"name": "store", "role": "static", "categories": ["store-a", "store-b"]},
        {"name": "size", "role": "static", "categories": None},
        {"name": "hour", "role": "calendar", "categories": None},
        {"name": "dayofweek", "role": "calendar", "categories": None},
    ]
    answer = client.post("/forecast", json={"series": series})
    assert answer.status_code == 200, answer.text
    expected = forecaster.predict(history, future)
    got = [row["y"] for s in answer.json()["forecasts"] for row in s["data"]]
    np.testing.assert_allclose(got, expected.y.to_numpy(), rtol=1e-6)
    series[0]["future"] = series[0]["future"][:2]
    answer = client.post("/forecast", json={"series": series})
    assert answer.status_code == 422 and "series 'a'" in answer.json()["detail"]
    del series[0]["future"]
    answer = client.post("/forecast", json={"series": series})
    assert answer.status_code == 422 and "send the next 4 rows" in answer.json()["detail"]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_takes_the_encoded_covariates_as_inputs(covariate_model, fmt, tmp_path):
    """Fed what DataSpec.encode_future/encode_static make, the exported graph forecasts what
    Forecaster.predict does."""
    from forecast.serving.export import export

    forecaster = Forecaster.load(covariate_model["model"])
    spec = forecaster.spec
    frame = covariate_model["frame"]
    history = frame.groupby("id").head(70)
    future = future_of(frame, slice(70, 74))
    expected = forecaster.predict(history, future).y.to_numpy().reshape(2, HORIZON)
    x, futures, statics = [], [], []
    for name in ("a", "b"):
        past = history[history.id == name].tail(LOOKBACK)
        ahead = future[future.id == name]
        columns = {c: np.concatenate([past[c], ahead[c]]) for c in spec.future_covariates}
        stamps = np.concatenate([past.date, ahead.date]).astype("datetime64[ns]")
        x.append(past[spec.features].to_numpy())
        futures.append(spec.encode_future(columns, stamps, name))
        statics.append(
            spec.encode_static(
                {c: past[c].to_numpy()[:1] for c in spec.static_covariates}, name, 1
            )[0]
        )
    path = export(forecaster, fmt, tmp_path / f"model.{fmt}")
    if fmt == "torchscript":
        described = {"forecast.json": ""}
        module = torch.jit.load(str(path), _extra_files=described)
    else:
        import onnx
        import onnxruntime

        (described,) = ({p.key: p.value} for p in onnx.load(str(path)).metadata_props)
        session = onnxruntime.InferenceSession(str(path))
    # a panel is scaled per series: each series' statistics travel in the description
    stats = json.loads(described["forecast.json"])["series_scaler"]
    rows = [stats["keys"].index(name) for name in ("a", "b")]
    scales = [np.asarray(stats[part])[rows] for part in ("mean", "std")]
    inputs = [np.stack(parts).astype(np.float32) for parts in (x, futures, statics)]
    inputs += [part.astype(np.float32) for part in scales]
    names = ["history", "future", "static", "mean", "std"]
    if fmt == "torchscript":
        with torch.no_grad():
            got = module(*(torch.from_numpy(a) for a in inputs)).numpy()
    else:
        assert [i.name for i in session.get_inputs()] == names
        (got,) = session.run(None, dict(zip(names, inputs, strict=True)))
    np.testing.assert_allclose(got[..., 0], expected, rtol=1e-5)


def test_timezone_aware_timestamps_keep_their_offset(tmp_path):
    """Stamps with an offset (as the PJM file's) are held in UTC; forecasts carry the offset."""
    from forecast.train import train

    frame = panel(60).drop(columns=["event", "store"])
    frame["date"] = frame.date.dt.tz_localize("UTC").dt.tz_convert("UTC+02:00")
    path = tmp_path / "zoned.csv"
    frame.to_csv(path, index=False)
    assert frame.date.astype(str).iloc[0] == "2024-01-01 02:00:00+02:00"
    overrides = [
        f"data.path={path}", f"data.lookback={LOOKBACK}", f"data.horizon={HORIZON}",
        "data.series_id=id", "data.calendar=[hour]", "trainer.max_epochs=1",
    ]  # fmt: skip
    train(compose_config(tmp_path, overrides))
    forecaster = Forecaster.load(tmp_path / "run" / "model.pt")
    assert forecaster.spec.timezone == "UTC+02:00"
    history = pd.read_csv(path)
    out = forecaster.predict(history)
    assert str(out.date.iloc[0]) == "2024-01-03 14:00:00+02:00"  # one hour after the last row
    from fastapi.testclient import TestClient

    from forecast.serving.app import create_app

    rows = history[history.id == "a"].drop(columns="id").to_dict(orient="records")
    answer = TestClient(create_app(forecaster, "zoned")).post(
        "/forecast", json={"series": [{"id": "a", "data": rows}]}
    )
    assert answer.status_code == 200, answer.text
    first = answer.json()["forecasts"][0]["data"][0]
    assert first["date"] == "2024-01-03 14:00:00+02:00"
    assert first["y"] == pytest.approx(out.y.iloc[0], rel=1e-6)


def test_the_mlflow_model_takes_future_rows_flagged_in_the_same_table(covariate_model):
    import mlflow

    uri = covariate_model["cfg"].logger.tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/forecast-panel/1")
    finally:
        mlflow.set_tracking_uri(None)
    frame = covariate_model["frame"]
    frame = frame.assign(date=frame.date.dt.strftime("%Y-%m-%d %H:%M:%S"))
    history = frame.groupby("id").head(70)
    future = future_of(frame, slice(70, 74))
    table = pd.concat([history.assign(is_future=False), future.assign(is_future=True)])
    expected = Forecaster.load(covariate_model["model"]).predict(history, future)
    got = pyfunc.predict(table)
    np.testing.assert_allclose(got.y.to_numpy(), expected.y.to_numpy(), rtol=1e-6)
    assert list(got.date) == list(expected.date)
    # The flag as tables carry it (issue #24, probe 10): text in any case, 0/1, empty
    flags = table.is_future.to_numpy()
    for written in (np.where(flags, "True", "False"), np.where(flags, "TRUE", ""), flags * 1.0):
        again = pyfunc.predict(table.assign(is_future=written))
        np.testing.assert_allclose(again.y.to_numpy(), expected.y.to_numpy(), rtol=1e-6)
    with pytest.raises(ForecastError, match=r"is_future at row 3 is 'maybe'; expected true or"):
        future_flags(pd.Series(["no", "0", "", "maybe"]))


def test_a_parquet_date_column_as_a_category_is_refused_at_setup(tmp_path):
    """Dates (or decimals) would be stored in the model file as objects it cannot load: the
    run would train to the end and leave a model nobody can read."""
    import datetime

    frame = panel().assign(opened=lambda f: [datetime.date(2020, 1, 1 + (i == "b")) for i in f.id])
    frame.to_parquet(tmp_path / "panel.parquet")
    dm = ForecastDataModule(
        str(tmp_path / "panel.parquet"), lookback=LOOKBACK, horizon=HORIZON, series_id="id",
        features=["y"], static_covariates=["opened"], categorical=["opened"],
        split_ratios=[0.5, 0.25, 0.25],
    )  # fmt: skip
    with pytest.raises(ForecastError, match="categories of 'opened' must be distinct numbers or"):
        dm.setup()


def with_wind(frame: pd.DataFrame) -> pd.DataFrame:
    """``panel`` with ``wind``: a text input measured with the series, not known ahead."""
    return frame.assign(wind=np.array(["N", "E", "S", "W", "NE"])[np.arange(len(frame)) % 5])


PAST_ONLY = {
    "features": ["y", "wind"], "categorical": ["wind"], "future_covariates": [],
    "static_covariates": [], "calendar": [],
}  # fmt: skip


def test_a_categorical_past_input_is_embedded_over_the_lookback_only(tmp_path):
    """Issue #24, friction 1: data.categorical on a column of data.features. Its codes travel
    with the covariates, and the model hides them past the lookback: the horizon rows'
    values cannot reach the forecast (no leak in training, nothing needed to forecast)."""
    torch.manual_seed(0)
    dm = datamodule(tmp_path, with_wind(panel()), **PAST_ONLY)
    spec = dm.spec
    assert spec.features == ["y"] and spec.past_categorical == ["wind"]
    assert spec.future_columns == ["wind"] and spec.categories["wind"] == ["E", "N", "NE", "S", "W"]
    assert spec.hidden_columns == {0: 5}  # one code past the vocabulary
    batch = dm.datasets["train"][torch.arange(4)]
    codes = [1, 0, 3, 4, 2]  # N, E, S, W, NE as codes into the sorted vocabulary
    np.testing.assert_array_equal(batch.future[1, :, 0], np.array(codes * 3)[1 : 1 + 12])
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1), spec).eval()
    assert net.future.embeddings[0].num_embeddings == 6
    x = torch.randn_like(batch.x)
    point = net.forecast(x, batch.future).point
    changed = batch.future.clone()
    changed[:, LOOKBACK:, 0] = (changed[:, LOOKBACK:, 0] + 1) % 5  # other observed winds later
    torch.testing.assert_close(net.forecast(x, changed).point, point)
    changed[:, :LOOKBACK, 0] = (changed[:, :LOOKBACK, 0] + 1) % 5  # ... and within the lookback
    assert not torch.allclose(net.forecast(x, changed).point, point)

    forecaster = Forecaster(net, spec)
    history = with_wind(panel())
    out = forecaster.predict(history)  # no future table: the history is all a forecast needs
    assert out.shape == (2 * HORIZON, 3) and list(out.columns) == ["id", "date", "y"]
    calm = forecaster.predict(history.assign(wind="N"))
    assert not np.allclose(calm["y"], out["y"])
    with pytest.raises(ForecastError, match=r"category 'SW' at row"):
        forecaster.predict(history.assign(wind="SW"))

    from fastapi.testclient import TestClient

    from forecast.serving.app import create_app

    client = TestClient(create_app(forecaster, "past"))
    meta = client.get("/metadata").json()
    assert meta["covariates"] == [
        {"name": "wind", "role": "past", "categories": ["E", "N", "NE", "S", "W"]}
    ]
    rows = history.assign(date=history.date.dt.strftime("%Y-%m-%d %H:%M:%S"))
    body = {"series": [
        {"id": name, "data": rows[rows.id == name][["date", "y", "wind"]].to_dict("records")}
        for name in ("a", "b")
    ]}  # fmt: skip
    answer = client.post("/forecast", json=body)
    assert answer.status_code == 200, answer.text
    got = [row["y"] for s in answer.json()["forecasts"] for row in s["data"]]
    np.testing.assert_allclose(got, out.y.to_numpy(), rtol=1e-6)


def test_a_categorical_column_outside_the_inputs_is_refused_by_name(tmp_path):
    with pytest.raises(
        ForecastError,
        match=r"data\.categorical: \['wind'\] are not among "
        r"data\.features, data\.future_covariates or data\.static_covariates",
    ):
        datamodule(tmp_path, with_wind(panel()), **(PAST_ONLY | {"features": ["y"]}))


def test_naive_future_rows_after_the_first_of_a_repeated_hour(tmp_path):
    """Issue #24, probe 13: a Europe/Berlin history in naive local time ending at the first
    02:00 of the October change; its future's 02:00 can only be the second one, and is taken
    as such (an exact timestamp would need an offset the user's table does not have)."""
    from forecast.data.scaling import Scaler

    spec = DataSpec(
        features=["y"], targets=["y"], lookback=LOOKBACK, horizon=HORIZON, timestamp="date",
        timezone="Europe/Berlin", freq="h", future_covariates=["price"],
        scaler=Scaler(np.zeros(1), np.ones(1)), future_scaler=Scaler(np.zeros(1), np.ones(1)),
    )  # fmt: skip
    torch.manual_seed(0)
    forecaster = Forecaster(LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), spec), spec)
    utc = pd.date_range("2024-10-26 17:00", periods=LOOKBACK + HORIZON, freq="h", tz="UTC")
    local = utc.tz_convert("Europe/Berlin").tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
    assert list(local[LOOKBACK - 1 : LOOKBACK + 1]) == ["2024-10-27 02:00:00"] * 2
    frame = pd.DataFrame({"date": local, "y": np.arange(12.0), "price": np.arange(12.0)})
    out = forecaster.predict(frame[:LOOKBACK], frame[LOOKBACK:][["date", "price"]])
    assert list(out.date.astype(str)) == [
        "2024-10-27 02:00:00+01:00", "2024-10-27 03:00:00+01:00",
        "2024-10-27 04:00:00+01:00", "2024-10-27 05:00:00+01:00",
    ]  # fmt: skip
    later = [*local[LOOKBACK + 1 :], "2024-10-27 06:00:00"]  # an hour late
    shifted = frame[LOOKBACK:][["date", "price"]].assign(date=later)
    with pytest.raises(ForecastError, match=r"future row 0 is at"):
        forecaster.predict(frame[:LOOKBACK], shifted)


@pytest.mark.slow  # a Spark session: a JVM
def test_spark_forecasts_with_future_covariates_equal_forecast_predict(covariate_model, spark):
    from forecast.serving.spark import forecast_frame

    frame = covariate_model["frame"]
    history, future = frame.groupby("id").head(70), future_of(frame, slice(70, 74))
    expected = Forecaster.load(covariate_model["model"]).predict(history, future)
    history, future = (t.sample(frac=1.0, random_state=0) for t in (history, future))
    got = forecast_frame(
        spark.createDataFrame(history).repartition(3),
        covariate_model["model"],
        spark.createDataFrame(future).repartition(2),
    ).toPandas()
    got = got.sort_values(["id", "date"]).reset_index(drop=True)
    assert list(got.columns) == list(expected.columns) == ["id", "date", "y"]
    np.testing.assert_array_equal(got["date"].to_numpy("datetime64[ns]"), expected["date"])
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5)
    with pytest.raises(ForecastError, match=r"future covariates \['price', 'event'\]: give"):
        forecast_frame(spark.createDataFrame(history), covariate_model["model"])
