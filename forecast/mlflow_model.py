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
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from forecast.predict import Forecaster
from forecast.windows import FUTURE_FLAG

ARTIFACT_NAME = "model"
PACKAGE_DIR = Path(__file__).resolve().parent


class ForecastModel(mlflow.pyfunc.PythonModel):
    """History rows in (``DataFrame``), forecast rows out, as ``Forecaster.predict``.

    A model with future covariates takes their ``horizon`` rows in the same table, after each
    series' history, marked by a true ``is_future`` column (their feature columns empty).
    """

    def load_context(self, context: Any) -> None:
        self.forecaster = Forecaster.load(context.artifacts["checkpoint"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return forecast_table(self.forecaster, model_input)


def forecast_table(forecaster: Forecaster, table: pd.DataFrame) -> pd.DataFrame:
    """Forecasts for a table of histories and, flagged ``is_future``, future covariates."""
    if FUTURE_FLAG not in table.columns:
        return forecaster.predict(table)
    future = table[FUTURE_FLAG].astype(bool)
    history = table[~future].drop(columns=FUTURE_FLAG)
    return forecaster.predict(history, table[future].drop(columns=FUTURE_FLAG))


def log_pyfunc(
    model_path: Path, example: pd.DataFrame, registered_model_name: str | None
) -> ModelInfo:
    """Log (and register, given a name) the pyfunc in the active run, with a signature."""
    output = forecast_table(Forecaster.load(model_path), example)
    return mlflow.pyfunc.log_model(
        name=ARTIFACT_NAME,
        python_model=ForecastModel(),
        artifacts={"checkpoint": str(model_path)},
        code_paths=[str(PACKAGE_DIR)],
        signature=infer_signature(example, output),
        input_example=example,
        # Listed, not inferred: inference imports and profiles the model, costing seconds.
        pip_requirements=["torch", "pytorch-lightning", "hydra-core", "pandas", "mlflow"],
        registered_model_name=registered_model_name,
    )
