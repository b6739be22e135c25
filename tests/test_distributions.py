"""Distribution heads: likelihoods against the textbook densities, parameters under scaling,
quantiles at any level, seeded samples, and the refusals that name what does not fit."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from helpers import compose_config, sine_frame, spec_for
from scipy import stats

from forecast import Forecaster
from forecast.data.scaling import Scaler, SeriesScaler, Standardize
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.calibration import GRID
from forecast.model.config import LSTMConfig
from forecast.model.distributions import FAMILIES
from forecast.model.ensemble import Ensemble
from forecast.model.losses import Forecast, ForecastLoss
from forecast.model.net import LSTMNet, target_scale
from forecast.serving.app import create_app
from forecast.serving.checkpoint import load_checkpoint, save_checkpoint
from forecast.serving.pyfunc import forecast_table

UNIT = Standardize(torch.zeros(1), torch.ones(1))


def test_likelihoods_are_the_textbook_densities():
    """Each family's negative log-likelihood, value by value, is minus scipy's log density
    (written from the formulas, not from torch.distributions)."""
    y = torch.tensor([-1.5, 0.0, 0.3, 4.0], dtype=torch.float64)
    loc, scale, df = 0.2, 1.7, 3.5
    normal = torch.tensor([[loc, scale]] * 4, dtype=torch.float64)
    expected = -stats.norm.logpdf(y.numpy(), loc, scale)
    assert FAMILIES["normal"](UNIT).nll(normal, y).numpy() == pytest.approx(expected, rel=1e-12)
    student = torch.tensor([[loc, scale, df]] * 4, dtype=torch.float64)
    expected = -stats.t.logpdf(y.numpy(), df, loc, scale)
    assert FAMILIES["studentt"](UNIT).nll(student, y).numpy() == pytest.approx(expected, rel=1e-12)
    # counts (scaled: mean 3, std 2) with mean 4.5 and n 2.5: var = 4.5 + 4.5**2 / 2.5
    counts = torch.tensor([0.0, 1.0, 4.0, 17.0], dtype=torch.float64)
    scale_of_counts = Standardize(torch.tensor([3.0]), torch.tensor([2.0]))
    mean, n = 4.5, 2.5
    params = torch.tensor([[(mean - 3) / 2, n]] * 4, dtype=torch.float64)
    nb = FAMILIES["negbinomial"](scale_of_counts)
    expected = -stats.nbinom.logpmf(counts.numpy(), n, n / (n + mean))
    assert nb.nll(params, (counts - 3) / 2).numpy() == pytest.approx(expected, rel=1e-10)


def test_the_loss_is_the_mean_likelihood_over_observed_targets():
    """A made-up target (NaN) counts for nothing, as in the point losses."""
    params = torch.tensor([[[[0.0, 1.0]], [[0.0, 2.0]]]])  # (batch, horizon 2, targets, 2)
    forecast = Forecast(params[..., 0], params[..., :0], params)
    loss = ForecastLoss("mse", [0.1, 0.9], distribution=FAMILIES["normal"](UNIT))
    y = torch.tensor([[[1.0], [math.nan]]])
    expected = -stats.norm.logpdf(1.0, 0.0, 1.0)
    assert loss(forecast, y).item() == pytest.approx(expected, rel=1e-6)
    # an ensemble's mixture has no params: the pinball loss of its quantiles at the levels
    mixture = Forecast(params[..., 0], torch.zeros(1, 2, 1, 2))
    assert loss(mixture, y).item() == pytest.approx((0.1 + 0.9) / 2, rel=1e-6)


@pytest.mark.parametrize("name", ["normal", "studentt"])
def test_parameters_follow_the_window_level_and_scale(name):
    """Instance normalization is undone on the parameters: a window ``a * x + b`` gets the
    location ``a * loc + b`` and the scale ``a * scale`` (df unchanged), so its quantiles
    are those of ``x`` mapped the same way."""
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden_size=8, num_layers=1, distribution=name), spec_for(2, 8, 3))
    x = torch.randn(4, 8, 2) * 3
    a, b = 7.0, -20.0
    with torch.no_grad():
        base, moved = net.forecast(x), net.forecast(a * x + b)
    assert moved.params[..., 0] == pytest.approx(a * base.params[..., 0] + b, abs=1e-3)
    assert moved.params[..., 1] == pytest.approx(a * base.params[..., 1], rel=1e-4)
    assert moved.params[..., 2:] == pytest.approx(base.params[..., 2:], rel=1e-4)
    assert moved.quantiles == pytest.approx(a * base.quantiles + b, abs=1e-3)


@pytest.mark.parametrize("name", ["normal", "studentt", "negbinomial"])
def test_samples_converge_to_the_analytic_quantiles(name):
    """20,000 paths of each value: the share of them at or below each analytic quantile is
    its level, within four standard errors (for counts: the quantile is the least count
    whose share reaches the level)."""
    scale = Standardize(torch.tensor([10.0]), torch.tensor([4.0]))
    family = FAMILIES[name](scale)
    params = {
        "normal": [[0.5, 2.0]],
        "studentt": [[0.5, 2.0, 4.0]],
        "negbinomial": [[(12.0 - 10) / 4, 3.0]],  # mean 12 counts, n 3
    }[name]
    params = torch.tensor(params, dtype=torch.float64)
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    analytic = family.quantiles(params, levels)[0]
    expected = {
        "normal": stats.norm.ppf(levels, 0.5, 2.0),
        "studentt": stats.t.ppf(levels, 4.0, 0.5, 2.0),
        "negbinomial": (stats.nbinom.ppf(levels, 3.0, 3.0 / 15.0) - 10) / 4,
    }[name]
    assert analytic.numpy() == pytest.approx(expected, rel=1e-9)
    n = 20_000
    paths = family.sample(params, n, seed=3)[:, 0].numpy()
    error = 4 * np.sqrt(levels * (1 - levels) / n)
    at_or_below = (paths[:, None] <= analytic.numpy()).mean(0)
    assert np.all(at_or_below >= levels - error)
    if name == "negbinomial":  # one count less falls short of the level
        below = (paths[:, None] <= analytic.numpy() - 1 / 4).mean(0)
        assert np.all(below <= levels + error)
    else:
        assert np.all(at_or_below <= levels + error)


def test_samples_are_seeded_and_negative_binomial_counts_are_whole():
    family = FAMILIES["negbinomial"](Standardize(torch.tensor([5.0]), torch.tensor([2.0])))
    params = torch.tensor([[[-1.0, 0.5], [3.0, 20.0]]])  # means 3 and 11 counts
    first, again = family.sample(params, 200, seed=7), family.sample(params, 200, seed=7)
    assert torch.equal(first, again)
    assert not torch.equal(first, family.sample(params, 200, seed=8))
    counts = first * 2 + 5
    assert torch.equal(counts, counts.round()) and counts.min() >= 0


@pytest.fixture(scope="module")
def trained_spec(trained):
    return Forecaster.load(trained["model"]).spec


@pytest.fixture(scope="module")
def history(trained) -> pd.DataFrame:
    return pd.read_csv(trained["csv"]).tail(30).reset_index(drop=True)


def forecaster_with(spec, **config) -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(LSTMNet(LSTMConfig(hidden_size=8, num_layers=1, **config), spec), spec)


def test_quantiles_at_any_level_in_the_data_units(trained_spec, history):
    """A distribution model answers any levels; in the data's units they are the
    distribution's quantiles of the parameters mapped by the data scaler."""
    forecaster = forecaster_with(trained_spec, distribution="studentt")
    assert forecaster.quantiles == [0.1, 0.5, 0.9]  # model.quantiles=[]: the default levels
    frame = forecaster.predict(history, quantiles=[0.025, 0.975])
    assert list(frame.columns) == ["date", "load", "temp", "price", *[
        f"{t}_q{q}" for t in ("load", "temp", "price") for q in (0.025, 0.975)
    ]]  # fmt: skip
    x = history[trained_spec.features].to_numpy()[-trained_spec.lookback :]
    scaler = trained_spec.scaler
    scaled = torch.tensor((x - scaler.mean) / scaler.std, dtype=torch.float32)
    with torch.no_grad():
        params = forecaster.net.forecast(scaled, levels=()).params.double()  # (horizon, T, 3)
    mean, std = scaler.mean[trained_spec.target_index], scaler.std[trained_spec.target_index]
    loc = params[..., 0].numpy() * std + mean
    spread = params[..., 1].numpy() * std
    expected = stats.t.ppf(0.975, params[..., 2].numpy(), loc, spread)
    assert frame["price_q0.975"].to_numpy() == pytest.approx(expected[:, 2], rel=1e-4)


def test_a_quantile_head_gives_the_levels_it_learned_and_names_the_others(trained_spec, history):
    forecaster = forecaster_with(trained_spec, quantiles=[0.1, 0.9])
    every = forecaster.predict(history)
    upper = forecaster.predict(history, quantiles=[0.9])
    assert list(upper.columns)[-3:] == ["load_q0.9", "temp_q0.9", "price_q0.9"]
    assert upper["price_q0.9"].to_numpy() == pytest.approx(every["price_q0.9"].to_numpy())
    with pytest.raises(ForecastError, match=r"quantiles \[0\.5\]: the model learned the levels"):
        forecaster.predict(history, quantiles=[0.5])
    with pytest.raises(ForecastError, match=r"quantiles=\[0\.9, 0\.1\] must be distinct, incr"):
        forecaster.predict(history, quantiles=[0.9, 0.1])
    with pytest.raises(ForecastError, match="the model was trained without one"):
        forecaster.sample(history, samples=10)


def test_sample_paths_as_a_table(trained_spec, history):
    forecaster = forecaster_with(trained_spec, distribution="normal")
    paths = forecaster.sample(history, samples=5, seed=1)
    horizon = trained_spec.horizon
    assert len(paths) == 5 * horizon and list(paths.columns) == [
        "sample", "date", "load", "temp", "price"
    ]  # fmt: skip
    assert paths["sample"].tolist() == [k for k in range(5) for _ in range(horizon)]
    assert paths["date"].tolist()[:horizon] == paths["date"].tolist()[horizon : 2 * horizon]
    assert paths.equals(forecaster.sample(history, samples=5, seed=1))
    with pytest.raises(ForecastError, match=r"samples=0 must be an integer in \[1, 10000\]"):
        forecaster.sample(history, samples=0)


def test_negative_binomial_forecasts_whole_counts(trained_spec, history):
    counts = history.assign(**{c: np.round(np.abs(history[c]) * 3) for c in ("load", "price")})
    forecaster = forecaster_with(trained_spec, distribution="negbinomial")
    frame = forecaster.predict(counts, quantiles=[0.05, 0.5, 0.95])
    bounds = frame.filter(like="_q").to_numpy()
    assert (bounds >= 0).all() and (bounds == np.round(bounds)).all()
    paths = forecaster.sample(counts, samples=50, seed=0)[trained_spec.targets].to_numpy()
    assert (paths >= 0).all() and (paths == np.round(paths)).all()


def test_the_server_answers_levels_and_samples(trained_spec, history):
    forecaster = forecaster_with(trained_spec, distribution="studentt")
    client = TestClient(create_app(forecaster, "t-model"))
    assert client.get("/metadata").json()["distribution"] == "studentt"
    data = json.loads(history.to_json(orient="records"))
    answer = client.post("/forecast", json={"series": [{"data": data}], "quantiles": [0.05]})
    rows = answer.json()["forecasts"][0]["data"]
    expected = forecaster.predict(history, quantiles=[0.05])
    assert rows[0]["load_q0.05"] == pytest.approx(expected["load_q0.05"].iloc[0], rel=1e-6)
    answer = client.post("/forecast", json={"series": [{"data": data}], "samples": 3, "seed": 4})
    rows = answer.json()["forecasts"][0]["data"]
    paths = forecaster.sample(history, samples=3, seed=4)
    assert [r["sample"] for r in rows] == paths["sample"].tolist()
    assert [r["price"] for r in rows] == pytest.approx(paths["price"].tolist(), rel=1e-6)
    both = {"quantiles": [0.5], "samples": 2}
    for bad, message in (({"quantiles": [1.5]}, "inside (0, 1)"), ({"samples": 0}, "samples"),
                         (both, "quantiles and samples were both asked for")):  # fmt: skip
        answer = client.post("/forecast", json={"series": [{"data": data}], **bad})
        assert answer.status_code == 422 and message in json.dumps(answer.json())


def test_the_pyfunc_takes_levels_and_samples_as_params(trained_spec, history):
    forecaster = forecaster_with(trained_spec, distribution="normal")
    levels = forecast_table(forecaster, history, {"quantiles": [0.2, 0.8]})
    assert levels.equals(forecaster.predict(history, quantiles=[0.2, 0.8]))
    paths = forecast_table(forecaster, history, {"samples": 4, "seed": 2, "quantiles": [0.5]})
    assert paths.equals(forecaster.sample(history, samples=4, seed=2))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"distribution": "gamma"}, r"model.distribution=gamma' is not one of"),
        ({"distribution": "normal", "loss": "poisson"}, "are two likelihoods"),
        ({"distribution": "studentt", "nonnegative": True}, "has quantiles below zero"),
    ],
)
def test_settings_that_do_not_fit_a_distribution_are_named(config, message):
    with pytest.raises(ForecastError, match=message):
        LSTMConfig(**config)


def test_negative_binomial_needs_one_scaler_per_column():
    ones = np.ones((1, 1))
    per_series = replace(spec_for(1, 8, 2), series_scaler=SeriesScaler(["a"], ones, ones))
    with pytest.raises(ForecastError, match=r"model\.distribution=negbinomial works in the data"):
        LSTMNet(LSTMConfig(distribution="negbinomial"), per_series)


def test_an_ensemble_mixes_its_members_distributions(trained_spec, history):
    """Members with a distribution: the combination's quantiles at any level and its paths,
    each path from one member, moved with the combined point (here the members' mean)."""
    members = [forecaster_with(trained_spec, distribution="normal").net for _ in range(2)]
    members[1].load_state_dict({k: v * 1.5 for k, v in members[0].state_dict().items()})
    ensemble = Ensemble(members, trained_spec, "mean")
    forecaster = Forecaster(ensemble, trained_spec)
    levels = forecaster.predict(history, quantiles=[0.05, 0.95])
    each = [Forecaster(m, trained_spec).predict(history, quantiles=[0.05, 0.95]) for m in members]
    assert levels["load_q0.05"].to_numpy() == pytest.approx(
        (each[0]["load_q0.05"] + each[1]["load_q0.05"]).to_numpy() / 2, rel=1e-5
    )
    paths = forecaster.sample(history, samples=400, seed=0)
    assert paths.equals(forecaster.sample(history, samples=400, seed=0))
    first = paths[paths["sample"] == 0]["load"].to_numpy()
    assert not np.allclose(first, paths[paths["sample"] == 1]["load"].to_numpy())
    spread = paths.groupby("date")["load"].quantile(0.95).to_numpy()
    # the mixture's 95% quantile lies between the members'
    low = np.minimum(each[0]["load_q0.95"], each[1]["load_q0.95"]).to_numpy()
    high = np.maximum(each[0]["load_q0.95"], each[1]["load_q0.95"]).to_numpy()
    assert np.all(spread >= low - 0.3 * (high - low + 1e-3))
    assert np.all(spread <= high + 0.3 * (high - low + 1e-3))


@pytest.mark.slow
def test_a_distribution_model_trains_calibrates_and_forecasts_from_the_command(tmp_path):
    """model.distribution with conformal=true, the default combination with the baselines:
    the test report has the interval scores, the run the coverage before and after
    calibration, and forecast-predict writes sample paths."""
    from forecast.train import train

    sine_frame().to_csv(tmp_path / "sines.csv", index=False)
    csv = tmp_path / "sines.csv"
    overrides = [f"data.path={csv}", "model.distribution=studentt", "conformal=true"]
    metrics = train(compose_config(tmp_path, overrides))
    for key in ("test_wql", "test_coverage", "test_msis", "test_loss", "val_coverage"):
        assert np.isfinite(metrics[key]), key
    assert metrics["val_coverage_conformal"] == pytest.approx(0.8, abs=0.05)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("forecast").experiment_id])
    assert run.data.metrics["val_coverage_conformal"] == metrics["val_coverage_conformal"]
    assert run.data.params["model.distribution"] == "studentt"
    model = tmp_path / "run" / "model.pt"
    # calibrated on the grid too: a level asked at forecast time is moved as well
    assert Forecaster.load(model).net.calibration.levels == sorted({*GRID, 0.1, 0.5, 0.9})
    command = [str(Path(sys.executable).parent / "forecast-predict"), f"ckpt_path={model}"]
    result = subprocess.run(
        [*command, "input=sines.csv", "output=s.csv", "samples=3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    paths = pd.read_csv(tmp_path / "s.csv")
    assert paths["sample"].tolist() == [k for k in range(3) for _ in range(6)]
    assert paths.equals(
        Forecaster.load(model)
        .sample(pd.read_csv(tmp_path / "sines.csv"), samples=3)
        .astype(paths.dtypes)
    )
    both = subprocess.run(
        [*command, "input=sines.csv", "output=s.csv", "samples=3", "quantiles=[0.5]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert both.returncode == 1 and "quantiles and samples were both asked for" in both.stderr
    assert "Traceback" not in both.stderr and pd.read_csv(tmp_path / "s.csv").equals(paths)


@pytest.mark.parametrize("name", ["normal", "studentt", "negbinomial"])
@pytest.mark.parametrize(
    "mode",
    [
        {"channel_independent": True, "segment_len": 4},
        {"decoder": "recurrent", "segment_len": 4, "linear_skip": True},
        {"instance_norm": False, "proj_size": 4},
    ],
)
def test_every_mode_trains_a_distribution_and_keeps_it_in_the_model_file(tmp_path, name, mode):
    """Channel independence, segments, the recurrent decoder, the skip, covariates: one
    gradient step from the likelihood, and the model file forecasts the same parameters."""
    spec = DataSpec(
        features=["a", "y"], targets=["y"], lookback=8, horizon=4, timestamp="date", freq="h",
        future_covariates=["price"], static_covariates=["size"],
        scaler=Scaler(np.array([0.0, 3.0]), np.array([1.0, 2.0])),
        future_scaler=Scaler(np.zeros(1), np.ones(1)),
        static_scaler=Scaler(np.zeros(1), np.ones(1)),
    )  # fmt: skip
    torch.manual_seed(0)
    config = LSTMConfig(hidden_size=8, num_layers=2, distribution=name, **mode)
    net = LSTMNet(config, spec)
    x, future, static = torch.randn(3, 8, 2), torch.randn(3, 12, 1), torch.randn(3, 1)
    forecast = net.forecast(x, future, static, levels=())
    extra = {"normal": 1, "studentt": 2, "negbinomial": 1}[name]
    assert forecast.params.shape == (3, 4, 1, 1 + extra) and forecast.quantiles.shape[-1] == 0
    loss = ForecastLoss("mse", config.quantiles, target_scale(spec), distribution=net.distribution)
    counts = torch.randint(0, 5, (3, 4, 1)).float()
    value = loss(forecast, (counts - 3) / 2)
    value.backward()
    assert torch.isfinite(value) and all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in net.lstm.parameters()
    )
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "model.pt", net, spec))
    with torch.no_grad():
        again = loaded.forecast(x, future, static)
        assert torch.allclose(again.params, net.forecast(x, future, static).params)
        assert again.quantiles.shape[-1] == 3  # the reported levels: 0.1, 0.5, 0.9
