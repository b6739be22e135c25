"""forecast: multivariate time-series forecasting with stacked LSTMs.

The data path, one module per stage: data -> windows -> model -> train/evaluate -> predict.
"""

from forecast.errors import ForecastError
from forecast.predict import Forecaster

__all__ = ["ForecastError", "Forecaster"]
