"""What an evaluation leaves in MLflow: figures whose titles say where each window is."""

from __future__ import annotations

import pandas as pd

from forecast.evaluation.tracking import window_titles


def test_a_window_is_titled_by_its_series_and_its_first_forecast_time():
    origins = pd.DataFrame(
        {"store": ["a", "b"], "origin": pd.to_datetime(["2024-01-03 10:00", "2024-01-04 00:00"])}
    )
    assert window_titles(origins) == [
        "a, forecast from 2024-01-03 10:00:00",
        "b, forecast from 2024-01-04 00:00:00",
    ]
    alone = origins.drop(columns="store")
    assert window_titles(alone)[0] == "forecast from 2024-01-03 10:00:00"
