"""The model as an MLflow pyfunc, so MLflow's own tools load and serve it.

    mlflow models serve -m models:/forecast/1 --env-manager local
    curl localhost:5000/invocations -H 'content-type: application/json' \
         -d '{"dataframe_records": [{"date": "2018-06-26 19:00:00", "OT": 1.0, ...}, ...]}'

The pyfunc wraps ``Forecaster``: same checkpoint, same checks, same numbers. The package's
own code travels inside the logged model (``code_paths``), so loading it needs the training
stack but not an installed ``forecast``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import AnyType, ColSpec, Schema

from forecast.data.datamodule import ForecastDataModule
from forecast.errors import ForecastError
from forecast.serving.forecaster import Forecaster

ARTIFACT_NAME = "model"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # forecast/, which travels with the model
# Marks the future covariates' rows in a table that holds a history too (the model's input).
FUTURE_FLAG = "is_future"
# Timestamps as example inputs write them: with the UTC offset, if they have a zone.
STAMP_TEXT = "%Y-%m-%d %H:%M:%S%z"


class ForecastModel(mlflow.pyfunc.PythonModel):
    """History rows in (``DataFrame``), forecast rows out, as ``Forecaster.predict``.

    A model with future covariates takes their ``horizon`` rows in the same table, after each
    series' history, marked by a true ``is_future`` column (their feature columns empty).
    """

    def load_context(self, context: Any) -> None:
        self.forecaster = Forecaster.load(context.artifacts["checkpoint"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return forecast_table(self.forecaster, model_input, params)


def forecast_table(
    forecaster: Forecaster, table: pd.DataFrame, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Forecasts for a table of histories and, flagged ``is_future``, future covariates;
    ``params`` (the pyfunc's): ``quantiles`` at other levels, or ``samples`` paths (with a
    ``seed``) from a model with a distribution."""
    params = params or {}
    history, future = table, None
    if FUTURE_FLAG in table.columns:
        flags = future_flags(table[FUTURE_FLAG])
        history = table[~flags].drop(columns=FUTURE_FLAG)
        future = table[flags].drop(columns=FUTURE_FLAG)
    if params.get("samples"):  # the paths: MLflow passes every param, quantiles' default too
        return forecaster.sample(
            history, future, int(params["samples"]), int(params.get("seed", 0))
        )
    return forecaster.predict(history, future, params.get("quantiles"))


def pyfunc_params(forecaster: Forecaster) -> dict[str, Any] | None:
    """The pyfunc's params and their defaults: a model with quantiles takes ``quantiles``,
    one with a distribution ``samples`` (0: none) and ``seed`` too."""
    params: dict[str, Any] = {}
    if forecaster.quantiles:
        params["quantiles"] = forecaster.quantiles
    if forecaster.net.config.distribution is not None:
        params |= {"samples": 0, "seed": 0}
    return params or None


# is_future as tables carry it: booleans, 0/1, or their text in any case; empty is false.
FLAG_TEXT = dict.fromkeys(("true", "1", "yes"), True)
FLAG_TEXT |= dict.fromkeys(("false", "0", "no", ""), False)


def future_flags(column: pd.Series) -> np.ndarray:
    """``is_future`` as booleans. ``astype(bool)`` would read the text "False" as true (it is
    not empty) and put a history row among the future ones: each value is read by what it
    says, and one that says neither is a ForecastError naming its row."""
    if column.dtype == bool:
        return column.to_numpy()
    flags = np.zeros(len(column), dtype=bool)
    for k, value in enumerate(column.to_numpy()):
        text = "" if pd.isna(value) else str(value).strip().lower()
        text = text.removesuffix(".0")  # 1.0 and 0.0 of a float column
        if text not in FLAG_TEXT:
            raise ForecastError(
                f"{FUTURE_FLAG} at row {k} is {value!r}; expected true or false (or 1, 0)"
            )
        flags[k] = FLAG_TEXT[text]
    return flags


def log_pyfunc(
    model_path: Path, example: pd.DataFrame, registered_model_name: str | None
) -> ModelInfo:
    """Log (and register, given a name) the pyfunc in the active run, with a signature."""
    forecaster = Forecaster.load(model_path)
    output = forecast_table(forecaster, example)
    signature = infer_signature(example, output, params=pyfunc_params(forecaster))
    # is_future as tables carry it (bool, 0/1, text): read by future_flags, not cast by MLflow
    signature.inputs = Schema([
        ColSpec(AnyType(), FUTURE_FLAG, required=False) if c.name == FUTURE_FLAG else c
        for c in signature.inputs.inputs
    ])  # fmt: skip
    return mlflow.pyfunc.log_model(
        name=ARTIFACT_NAME,
        python_model=ForecastModel(),
        artifacts={"checkpoint": str(model_path)},
        code_paths=[str(PACKAGE_DIR)],
        signature=signature,
        input_example=example,
        # Listed, not inferred: inference imports and profiles the model, costing seconds.
        pip_requirements=["torch", "pytorch-lightning", "hydra-core", "pandas", "mlflow"],
        registered_model_name=registered_model_name,
    )


def example_input(datamodule: ForecastDataModule) -> pd.DataFrame:
    """The first series as a user would send it to the model: its last ``lookback`` rows, and
    with future covariates the ``horizon`` rows after them, marked ``is_future`` (their
    feature columns empty). Logged as the model's input example and signature."""
    spec = datamodule.spec
    start, end = datamodule.bounds[0]
    ahead = spec.horizon if spec.future_covariates else 0
    rows = slice(max(start, end - ahead - spec.lookback), end)
    original = datamodule.scalers.of(0).inverse(datamodule.values[rows].double().numpy())
    frame = pd.DataFrame(original, columns=spec.features)
    for column, values in datamodule.last_covariates.items():  # the first series' last rows
        frame[column] = values[len(values) - len(frame) :]
    stamps = spec.stamp_columns(datamodule.timestamps[rows])
    for position, (column, values) in enumerate(stamps.items()):
        if isinstance(values, pd.DatetimeIndex):  # as text, which JSON and CSV both keep
            values = values.strftime(spec.timestamp_format or STAMP_TEXT)
        frame.insert(position, column, values)
    spec.insert_ids(frame, datamodule.series_ids[:1], len(frame))
    if ahead:
        frame[FUTURE_FLAG] = np.arange(len(frame)) >= len(frame) - ahead
        frame.loc[frame[FUTURE_FLAG], spec.features] = np.nan
    return frame
