"""A request's series read as a file's would be: covariates of every kind, nulls and
booleans included (forecast.serving.schema)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from forecast import Forecaster
from forecast.data.rules import fill_numeric
from forecast.data.scaling import Scaler
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.serving.schema import ForecastRequest, series_input

LOOKBACK, HORIZON = 4, 2


def spec(**covariates) -> DataSpec:
    return DataSpec(
        features=["y"], targets=["y"], lookback=LOOKBACK, horizon=HORIZON, freq="h",
        scaler=Scaler(np.zeros(1), np.ones(1)), fill_missing="ffill", **covariates,
    )  # fmt: skip


def request(rows: list[dict], future: list[dict] | None = None):
    body = {"series": [{"id": "a", "data": rows, "future": future}]}
    return ForecastRequest.model_validate_json(json.dumps(body)).series[0]


def stamps(n: int, start: int = 0) -> list[str]:
    return [str(t) for t in pd.date_range("2024-01-01", periods=start + n, freq="h")[start:]]


def test_json_booleans_are_the_categories_a_csv_true_false_column_gave():
    """pandas reads a True/False column as booleans: the vocabulary is [False, True], and a
    request's true and false are those categories."""
    flags = spec(future_covariates=["flag"], categorical=["flag"],
                 categories={"flag": [False, True]})  # fmt: skip
    rows = [{"date": t, "y": 1.0, "flag": k % 2 == 0} for k, t in enumerate(stamps(LOOKBACK))]
    future = [{"date": t, "flag": True} for t in stamps(HORIZON, LOOKBACK)]
    series = series_input(request(rows, future), 0, flags)
    encoded = flags.encode_future(
        {"flag": np.concatenate([series.covariates["flag"], series.future[1]["flag"]])},
        np.concatenate([series.stamps, series.future[0]]),
        "a",
    )
    assert encoded[:, 0].tolist() == [1, 0, 1, 0, 1, 1]


def test_a_boolean_where_a_number_belongs_is_refused_by_name():
    rows = [{"date": t, "y": True} for t in stamps(LOOKBACK)]
    with pytest.raises(ForecastError, match="column 'y' is not a number"):
        series_input(request(rows), 0, spec())


def test_a_null_numeric_covariate_is_missing_and_filled_as_in_a_file():
    prices = spec(future_covariates=["price"], future_scaler=Scaler(np.zeros(1), np.ones(1)))
    rows = [{"date": t, "y": 1.0, "price": None if k == 2 else float(k)}
            for k, t in enumerate(stamps(LOOKBACK))]  # fmt: skip
    series = series_input(
        request(rows, [{"date": t, "price": 9.0} for t in stamps(2, 4)]), 0, prices
    )
    column = series.covariates["price"]
    assert column.dtype == np.float64 and np.isnan(column[2])
    assert fill_numeric(column, "ffill", "price", "a").tolist() == [0.0, 1.0, 1.0, 3.0]


def test_a_static_covariate_too_large_for_float32_is_refused_not_forecast():
    """1e40 became +inf in float32 and the forecast was the same as for any value."""
    sizes = spec(static_covariates=["size"], static_scaler=Scaler(np.zeros(1), np.ones(1)))
    torch.manual_seed(0)
    forecaster = Forecaster(LSTMNet(LSTMConfig(hidden_size=4, num_layers=1), sizes), sizes)
    rows = [{"date": t, "y": 1.0, "size": 1e40} for t in stamps(LOOKBACK)]
    with pytest.raises(ForecastError, match="column 'size' at step 0 is too large"):
        forecaster.forecast([forecaster.checked(series_input(request(rows), 0, sizes))])
