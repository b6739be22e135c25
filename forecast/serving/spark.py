"""Batch forecasts on Apache Spark (``pip install "forecast[spark]"``): each series' history
is grouped on the executors and forecast by ``Forecaster.predict``, the code and checks of
``forecast-predict``, so both give the same numbers.

    from forecast.serving.spark import forecast_frame
    history = spark.read.parquet("panel/")                 # the training columns, many series
    forecasts = forecast_frame(history, "models:/forecast-sales/3")
    forecasts.write.parquet("forecasts/")

The model is loaded once, on the driver, and travels to the executors inside the grouped
function (a few MB for the default model), so the executors need neither the model file nor
the MLflow server, only the ``forecast`` package.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from forecast.errors import ForecastError
from forecast.serving.forecaster import Forecaster

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


def forecast_frame(
    history: DataFrame, model_uri: str | Path, future: DataFrame | None = None
) -> DataFrame:
    """Forecasts of every series of ``history`` (a Spark DataFrame in the long format the
    model was trained on), as a Spark DataFrame with ``forecast-predict``'s columns: the
    series id, the future timestamps, each target and its quantiles. A model with future
    covariates takes ``future``: each series' next ``horizon`` rows of them."""
    forecaster = Forecaster.load(model_uri)
    spec = forecaster.spec
    ids = spec.id_columns
    if not ids:
        raise ForecastError(
            "the model forecasts one series (no data.series_id): forecast-predict reads it "
            "whole; Spark is for many series"
        )
    stamps = spec.timestamp_columns
    if not stamps:
        raise ForecastError(
            "the model has no timestamp column: its steps are the rows' order, which a Spark "
            "DataFrame does not keep; forecast-predict reads the rows in order"
        )
    if spec.future_covariates and future is None:
        raise ForecastError(
            f"the model takes future covariates {spec.future_covariates}: give the next "
            f"{spec.horizon} rows of each series with them (future=...)"
        )
    needed = [*spec.timestamp_columns, *ids, *spec.features, *spec.side_columns]
    missing = [c for c in dict.fromkeys(needed) if c not in history.columns]
    if missing:
        raise ForecastError(f"history: column(s) {missing} not found; available: {history.columns}")
    history = history.select(*dict.fromkeys(needed))
    schema = _output_schema(forecaster, history, future)
    names = schema.fieldNames()

    # A group's rows come in no particular order (a Spark DataFrame is a set): each series'
    # rows are put in time order first, and the data's rules then check them as ever.
    if future is None:

        def forecast_series(rows: pd.DataFrame) -> pd.DataFrame:
            return forecaster.predict(rows.sort_values(stamps, kind="stable"))[names]

        return history.groupBy(*ids).applyInPandas(forecast_series, schema)

    def forecast_with_future(rows: pd.DataFrame, ahead: pd.DataFrame) -> pd.DataFrame:
        rows, ahead = (frame.sort_values(stamps, kind="stable") for frame in (rows, ahead))
        return forecaster.predict(rows, ahead)[names]

    grouped = future.groupBy(*ids)
    return history.groupBy(*ids).cogroup(grouped).applyInPandas(forecast_with_future, schema)


def _output_schema(
    forecaster: Forecaster, history: DataFrame, future: DataFrame | None
) -> StructType:
    """The Spark schema of the forecasts, from forecasting the first series on the driver:
    exactly the columns and types ``Forecaster.predict`` returns."""
    from pyspark.sql import functions

    ids = forecaster.spec.id_columns
    first = history.select(*ids).limit(1).collect()
    if not first:
        raise ForecastError("history has no rows")
    condition = functools.reduce(
        operator.and_, [functions.col(c) == first[0][c] for c in ids]
    )  # fmt: skip
    stamps = forecaster.spec.timestamp_columns
    rows = history.filter(condition).toPandas().sort_values(stamps, kind="stable")
    ahead = None if future is None else future.filter(condition).toPandas().sort_values(stamps)
    sample = forecaster.predict(rows, ahead)
    return history.sparkSession.createDataFrame(sample).schema
