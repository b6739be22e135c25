"""Where MLflow models logged before the stages became packages find their Python class: they
pickled it by reference as ``forecast.mlflow_model.ForecastModel``. It lives in
``forecast.serving.pyfunc``."""

from forecast.serving.pyfunc import ForecastModel

__all__ = ["ForecastModel"]
