"""Files to windows: the first stage of the data path.

``options`` (the data keys, ``DataOptions``) -> ``reading`` (CSV and Parquet in) ->
``timestamps`` (read into UTC) and ``clock`` (frequency, season, zone, written back) ->
``rules`` (duplicates, gaps, missing values, order, per series) -> ``series`` (a table's
series checked and stacked) -> ``scaling`` and ``splits`` -> ``covariates`` -> ``spec``
(``DataSpec``: the options resolved plus what was fitted) -> ``windows`` (``(batch,
time_steps, features)`` views) -> ``datamodule`` (``ForecastDataModule``). ``profile`` and
``advice`` are what ``forecast-check`` prints.
"""
