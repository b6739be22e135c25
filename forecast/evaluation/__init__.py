"""Every figure a run reports: ``scoring`` (the model next to the baselines, from one
implementation), ``spans`` (backtests), ``plots``, ``tracking`` (what goes into MLflow) and
``report`` (what the console shows)."""
