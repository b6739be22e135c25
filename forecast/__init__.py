"""forecast: multivariate time-series forecasting with stacked LSTMs.

The data path, one module per stage: data -> windows -> model -> train/evaluate -> predict.
"""

from typing import TYPE_CHECKING

from forecast.errors import ForecastError

if TYPE_CHECKING:
    from forecast.predict import Forecaster

__all__ = ["ForecastError", "Forecaster"]


def __getattr__(name: str) -> object:
    # Forecaster brings torch and Lightning: imported when asked for, so that `import forecast`
    # (and every command's entry point, forecast.cli) starts in milliseconds.
    if name == "Forecaster":
        from forecast.predict import Forecaster

        return Forecaster
    raise AttributeError(f"module 'forecast' has no attribute {name!r}")
