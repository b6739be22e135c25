"""What ``POST /forecast`` takes and answers, and a request's series read into checked
inputs, as a file's would be."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt

from forecast.data.series import SeriesInput
from forecast.data.spec import DataSpec
from forecast.data.timestamps import parse_iso, utc_stamps
from forecast.errors import ForecastError

# true/false: a boolean category (a CSV's True/False column read by pandas)
Value = StrictFloat | StrictInt | StrictBool | str | None


# Echoed back in the answer, so an integer id must fit the 64 bits JSON encoders write.
SeriesId = str | Annotated[int, Field(ge=-(2**63), lt=2**64)] | None


class SeriesIn(BaseModel):
    id: SeriesId = None
    data: list[dict[str, Value]] = Field(min_length=1, description="rows: timestamp and columns")
    future: list[dict[str, Value]] | None = Field(
        None, description="the next `horizon` rows: timestamp and the future covariates"
    )


class ForecastRequest(BaseModel):
    series: list[SeriesIn] = Field(min_length=1)
    quantiles: list[StrictFloat | StrictInt] | None = Field(
        None, description="levels in (0, 1), increasing; null: the model's own"
    )
    samples: int | None = Field(
        None, ge=1, le=10_000, description="sample paths per series (a model with a distribution)"
    )
    seed: int = Field(0, ge=0, lt=2**63, description="the sample paths' seed")


class SeriesOut(BaseModel):
    id: SeriesId
    data: list[dict[str, float | str]]


class ForecastResponse(BaseModel):
    forecasts: list[SeriesOut]


REQUEST_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ForecastRequest"}}
        },
    }
}


def parse_rows(
    rows: list[dict[str, Value]],
    spec: DataSpec,
    numeric: list[str],
    other: list[str],
    label: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Records to timestamps (read as the training file's: its columns, format and zone), the
    ``numeric`` columns as ``(rows, columns)`` float64 and the ``other`` columns as they came;
    refuses missing columns and non-numbers."""
    stamp_columns = spec.timestamp_columns
    for i, row in enumerate(rows):
        missing = [c for c in [*stamp_columns, *numeric, *other] if c not in row]
        if missing:
            raise ForecastError(f"{label}, row {i}: missing column(s) {missing}")
        texts = [c for c in numeric if isinstance(row[c], str | bool)]
        if texts:
            raise ForecastError(f"{label}, row {i}: column {texts[0]!r} is not a number")
    try:
        values = np.array(
            [[np.nan if (v := row[c]) is None else v for c in numeric] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(numeric))
    except OverflowError:  # JSON integers have no size limit, float64 has
        raise ForecastError(f"{label}: a value is too large for a 64-bit float") from None
    columns = {c: covariate_column([row[c] for row in rows]) for c in other}
    return request_stamps(rows, spec, label), values, columns


def covariate_column(values: list[Value]) -> np.ndarray:
    """A covariate's values as a file's column would hold them: numbers (a null among them
    missing, NaN, for data.fill_missing to fill or the checks to refuse) as float64; texts and
    booleans as they came."""
    numbers = all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                  for v in values)  # fmt: skip
    if numbers and any(v is not None for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values)


def request_stamps(rows: list[dict[str, Value]], spec: DataSpec, label: str) -> np.ndarray:
    """The rows' timestamps read as the training file's were (its columns, format and zone),
    as UTC ``datetime64[ns]``; without timestamps, steps 0, 1, ... (forecasts go on from the
    last)."""
    columns = spec.timestamp_columns
    if not columns:
        return np.arange(len(rows)).astype("datetime64[ns]")
    raw = {c: [row[c] for row in rows] for c in columns}
    if spec.integer_time:  # steps, as the training file had them
        steps = raw[columns[0]]
        if not all(
            isinstance(s, int) and not isinstance(s, bool) and abs(s) < 2**63 for s in steps
        ):
            raise ForecastError(f"{label}: column {columns[0]!r} must hold integer steps")
        return np.array(steps, dtype=np.int64).astype("datetime64[ns]")
    if len(columns) == 1:
        if not all(isinstance(s, str) for s in raw[columns[0]]):
            raise ForecastError(f"{label}: column {columns[0]!r} must hold timestamp strings")
        if spec.timestamp_format is None and spec.timezone is None:
            parsed = parse_iso(raw[columns[0]], label, columns[0])
            if parsed is not None:
                return parsed
    frame = pd.DataFrame({c: np.array(values, dtype=object) for c, values in raw.items()})
    return utc_stamps(frame, columns, spec.timestamp_format, spec.timezone, label)[0]


def series_input(series: SeriesIn, k: int, spec: DataSpec) -> SeriesInput:
    """One series of a request, read as a file's series would be (the data's rules are the
    Forecaster's to apply: ``Forecaster.checked``)."""
    label = f"series {k}" if series.id is None else f"series {series.id!r}"
    stamps, values, raw = parse_rows(series.data, spec, spec.features, spec.side_columns, label)
    future = None
    if spec.future_covariates:
        if not series.future:
            raise ForecastError(
                f"{label}: the model takes future covariates {spec.future_covariates}; send the "
                f"next {spec.horizon} rows of them as 'future'"
            )
        future_stamps, _, columns = parse_rows(
            series.future, spec, [], spec.future_covariates, f"{label}, future"
        )
        future = (future_stamps, columns)
    return SeriesInput(label, stamps, values, raw, future, key=series.id)
