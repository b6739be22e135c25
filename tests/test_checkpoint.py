"""Model files: the data contract and the network stored once each, older versions read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from forecast import Forecaster
from forecast.errors import ForecastError
from forecast.serving.checkpoint import VERSION, load_checkpoint, save_checkpoint

OLD = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("variant", ["linear", "recurrent"])
def test_version_1_files_still_load_and_forecast_the_same(variant, tmp_path):
    """Written by forecast at commit 684e190 (checkpoint version 1): ``linear`` has a linear
    head, quantiles, a linear skip and one target of two; ``recurrent`` the segment decoder,
    channel independence and a projection. Their forecasts then are the expected ones."""
    history = pd.read_csv(OLD / "history_v1.csv")
    expected = pd.read_csv(OLD / f"forecast_v1_{variant}.csv", parse_dates=["date"])
    forecaster = Forecaster.load(OLD / f"model_v1_{variant}.pt")
    got = forecaster.predict(history)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-6, atol=1e-6)
    # written again, it is a current file with the same numbers
    path = save_checkpoint(tmp_path / "model.pt", forecaster.net, forecaster.spec)
    assert torch.load(path, weights_only=True)["version"] == VERSION
    pd.testing.assert_frame_equal(Forecaster.load(path).predict(history), got)


def test_sizes_and_targets_are_stored_once(trained):
    payload = torch.load(trained["model"], weights_only=True)
    assert payload["version"] == VERSION
    assert not {"lookback", "horizon", "n_features", "n_targets", "target_index"} & set(
        payload["net"]
    )
    net, spec = load_checkpoint(trained["model"])
    assert (net.lookback, net.horizon, net.n_targets) == (spec.lookback, spec.horizon, 3)


def test_an_incomplete_description_is_refused(trained, tmp_path):
    payload = torch.load(trained["model"], weights_only=True)
    del payload["data"]["lookback"]
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(ForecastError, match="description is incomplete"):
        load_checkpoint(tmp_path / "broken.pt")


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda p: p["net"].update(hidden_size=10**7), r"model\.hidden_size=10000000 must be"),
        (lambda p: p["net"].update(num_layers=-2), r"model\.num_layers=-2 must be"),
        (lambda p: p["net"].update(hidden_size="64"), r"model\.hidden_size='64' must be"),
        (lambda p: p["data"].update(lookback=-5), r"lookback=-5 must be an integer in \[1, "),
        (lambda p: p["data"]["scaler"]["std"].pop(), "3 means and 2 standard deviations for 3"),
        (lambda p: p["data"]["scaler"].update(std=[0.0, 1.0, 1.0]), "standard deviation <= 0"),
        (lambda p: p["data"].pop("features"), "description is incomplete"),
        (lambda p: p["state_dict"]["lstm.weight_ih_l0"].fill_(float("nan")), "not all finite"),
        (lambda p: p["state_dict"].pop("lstm.weight_ih_l0"), "do not fit its own configuration"),
        (lambda p: p.update(state_dict=[1, 2]), "weights are missing or not tensors"),
    ],
)
def test_model_files_with_bad_contents_are_refused_by_name(trained, tmp_path, breaks, message):
    payload = torch.load(trained["model"], weights_only=True)
    breaks(payload)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ForecastError, match=message):
        load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    ("variant", "history", "future"),
    [
        ("ensemble", "history_v2.csv", "future_v2.csv"),
        ("counts", "history_v2_counts.csv", None),
    ],
)
def test_version_2_files_still_load_and_forecast_the_same(variant, history, future):
    """Written by forecast at commit 3298673 (checkpoint version 2, before the stages became
    packages): ``ensemble`` is two members combined by validation weights, with numeric and
    categorical future covariates, a categorical and a numeric static covariate, an hour
    calendar and quantiles, over two series; ``counts`` a Poisson model on integer steps with
    segments, the recurrent decoder, channel independence, a projection and a static."""
    forecaster = Forecaster.load(OLD / f"model_v2_{variant}.pt")
    future_rows = None if future is None else pd.read_csv(OLD / future)
    got = forecaster.predict(pd.read_csv(OLD / history), future_rows)
    expected = pd.read_csv(OLD / f"forecast_v2_{variant}.csv")
    if "date" in expected:
        got = got.assign(date=got.date.astype(str))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda p: p["ensemble"].update(size=10**7), r"ensemble\.size=10000000 must be in"),
        (lambda p: p["ensemble"].update(size=float("inf")), r"ensemble\.size=inf must be in"),
        (lambda p: p["ensemble"].update(season=0), "season=0 must be an integer >= 1"),
        (lambda p: p["ensemble"].update(season=float("inf")), "season=inf must be an integer"),
        (lambda p: p["data"].update(horizon=10**9), r"data\.horizon=1000000000 must be"),
        (lambda p: p["data"].update(freq="bogus"), r"data\.freq='bogus' is not a pandas"),
        (lambda p: p["data"].update(freq=5), r"data\.freq=5 is not a pandas"),
        (lambda p: p["data"].update(freq=None), r"data\.freq is missing"),
        (lambda p: p["data"].update(timezone=""), r"data\.timezone='' must name a time zone"),
        (lambda p: p["data"]["categories"].update(event=["a", "a"]), "categories of 'event'"),
        (lambda p: p["data"]["categories"].update(event=[["a"], "b"]), "categories of 'event'"),
        (lambda p: p["data"]["categories"].update(event=[None, "b"]), "categories of 'event'"),
    ],
)
def test_a_file_that_would_load_but_not_serve_is_refused_at_load(tmp_path, breaks, message):
    """Each of these loaded before and then answered every forecast with a 500, or took
    minutes and gigabytes first: now one error at load names the field."""
    payload = torch.load(OLD / "model_v2_ensemble.pt", weights_only=True)
    breaks(payload)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ForecastError, match=message):
        load_checkpoint(tmp_path / "bad.pt")
