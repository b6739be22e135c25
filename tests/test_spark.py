"""Forecasts on a local Spark session equal forecast-predict's, with and without future
covariates; what Spark cannot forecast is refused by name."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import per_site, sites

from forecast import Forecaster, ForecastError
from forecast.serving.checkpoint import save_checkpoint

pytestmark = pytest.mark.slow  # a Spark session: a JVM


def site_model(trained, tmp_path) -> tuple[Forecaster, str]:
    """The shared run's model applied per site, saved as a model file."""
    forecaster = per_site(trained["model"])
    path = save_checkpoint(tmp_path / "sites.pt", forecaster.net, forecaster.spec)
    return forecaster, str(path)


def test_spark_forecasts_equal_forecast_predict(spark, trained, tmp_path):
    from forecast.serving.spark import forecast_frame

    forecaster, uri = site_model(trained, tmp_path)
    table = sites(6)
    expected = forecaster.predict(table)
    shuffled = table.sample(frac=1.0, random_state=0)  # Spark keeps no order: rows are sorted
    got = forecast_frame(spark.createDataFrame(shuffled).repartition(3), uri).toPandas()
    got = got.sort_values(["site", "date"]).reset_index(drop=True)
    got["date"] = got["date"].astype(expected["date"].dtype)  # Spark holds microseconds
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got[["site", "date"]], expected[["site", "date"]])
    np.testing.assert_allclose(got[forecaster.columns], expected[forecaster.columns], rtol=1e-5)


def test_spark_refuses_what_it_cannot_forecast(spark, trained, tmp_path):
    from forecast.serving.spark import forecast_frame

    table = spark.createDataFrame(sites(2))
    with pytest.raises(ForecastError, match="the model forecasts one series"):
        forecast_frame(table, str(trained["model"]))
    forecaster, uri = site_model(trained, tmp_path)
    with pytest.raises(ForecastError, match=r"column\(s\) \['temp'\] not found"):
        forecast_frame(table.drop("temp"), uri)
    steps = save_checkpoint(
        tmp_path / "steps.pt", forecaster.net, replace(forecaster.spec, timestamp=None)
    )
    with pytest.raises(ForecastError, match="the rows' order, which a Spark DataFrame"):
        forecast_frame(table, str(steps))
