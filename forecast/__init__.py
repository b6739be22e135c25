"""forecast: multivariate time-series forecasting with stacked LSTMs.

The data path, one package per stage: ``data`` (files to windows) -> ``model`` (the network,
its losses, baselines and ensembles) -> ``training`` -> ``evaluation`` -> ``serving`` (model
files, ``Forecaster``, HTTP, export). The commands (``train``, ``evaluate``, ``check``,
``predict``, ``serve``, ``export``) sit at the root with the config plumbing.
"""

from typing import TYPE_CHECKING

from forecast.errors import ForecastError

if TYPE_CHECKING:
    from forecast.serving.forecaster import Forecaster

__all__ = ["ForecastError", "Forecaster"]


def __getattr__(name: str) -> object:
    # Forecaster brings torch and Lightning: imported when asked for, so that `import forecast`
    # (and every command's entry point, forecast.cli) starts in milliseconds.
    if name == "Forecaster":
        from forecast.serving.forecaster import Forecaster

        return Forecaster
    raise AttributeError(f"module 'forecast' has no attribute {name!r}")
