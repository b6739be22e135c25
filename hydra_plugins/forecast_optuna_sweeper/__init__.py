"""Hydra sweeper plugin ``forecast_optuna``: Optuna (>= 4) with database storage and pruning.

Hydra discovers plugins in the ``hydra_plugins`` namespace; importing this registers the
sweeper's config as ``hydra/sweeper=forecast_optuna``.
"""

from hydra_plugins.forecast_optuna_sweeper.optuna_sweeper import register

register()
