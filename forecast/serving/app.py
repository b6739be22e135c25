"""``forecast-serve``: forecasts over HTTP from one model, loaded once at start.

Request: ``{"series": [{"id": "a", "data": [{"date": "2018-06-26 19:00:00", "OT": 1.0, ...}]}]}``,
each series as ``DataFrame.to_dict(orient="records")`` rows with the training column names.
Answer: ``{"forecasts": [{"id": "a", "data": [{"date": ..., "OT": ...}, ...]}]}``, ``horizon``
rows per series; a model trained with quantiles adds ``OT_q0.1``-style columns (``/metadata``
lists them; ``"quantiles": [0.025, 0.975]`` asks for others, and a model with a distribution
answers ``"samples": 100`` with sample paths, rows with a ``sample`` number). All series of
a request go through one forward pass. Every problem with a request is a 4xx naming it; the
server keeps serving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from forecast.errors import ForecastError
from forecast.serving.api_docs import add_docs
from forecast.serving.checkpoint import VERSION
from forecast.serving.checks import one_answer
from forecast.serving.forecaster import Forecaster
from forecast.serving.limits import BodyLimit
from forecast.serving.schema import (
    REQUEST_BODY_DOC,
    ForecastRequest,
    ForecastResponse,
    series_input,
)


def create_app(
    forecaster: Forecaster,
    model_uri: str,
    max_body_bytes: int = 64 << 20,
    large_body_bytes: int = 1 << 20,
    max_large_requests: int = 2,
    body_timeout_s: float = 30.0,
    body_deadline_s: float = 120.0,
) -> FastAPI:
    """The app: ``/forecast``, ``/metadata``, ``/health`` and ``/docs``, each body bounded by
    ``BodyLimit`` (its arguments are those of ``conf/serve.yaml``)."""
    app = FastAPI(
        title="forecast", description=__doc__.split("\n\n")[0], docs_url=None, redoc_url=None
    )
    add_docs(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=max_body_bytes,
        large_bytes=large_body_bytes,
        max_large=max_large_requests,
        timeout_s=body_timeout_s,
        deadline_s=body_deadline_s,
    )
    app.add_exception_handler(ForecastError, bad_request)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ValidationError, invalid_request)
    add_routes(app, forecaster, model_uri, max_body_bytes, large_body_bytes)
    app.openapi = lambda: app.openapi_schema or _openapi(app)
    return app


def add_routes(
    app: FastAPI,
    forecaster: Forecaster,
    model_uri: str,
    max_body_bytes: int,
    large_body_bytes: int,
) -> None:
    """``/health``, ``/metadata`` and ``POST /forecast``."""
    metadata = describe(forecaster, model_uri)

    def get_metadata() -> dict[str, Any]:
        return metadata

    app.get("/health")(health)
    app.get("/metadata")(get_metadata)
    answer = answerer(forecaster)

    async def post_forecast(raw: Request) -> Response:
        body = await raw.body()
        if len(body) <= large_body_bytes:
            # On the event loop: a small request's forward pass takes about a millisecond,
            # less than a thread hop plus OpenMP waking a new thread team would.
            return Response(answer(body), media_type="application/json")
        # A large one takes long enough (seconds at tens of MB) to stall /health and every
        # other client: a worker thread, at most max_large_requests at once (BodyLimit).
        content = await anyio.to_thread.run_sync(answer, body)
        return Response(content, media_type="application/json")

    app.post(
        "/forecast",
        response_model=ForecastResponse,
        openapi_extra=REQUEST_BODY_DOC,
        description=forecast_description(forecaster),
        responses={
            413: {"description": f"The body is over {max_body_bytes} bytes."},
            422: {"description": "The request is malformed; `detail` names the problem."},
        },
    )(post_forecast)


def health() -> dict[str, str]:
    return {"status": "ok"}


async def bad_request(request: Request, err: ForecastError) -> JSONResponse:
    return JSONResponse({"detail": str(err)}, status_code=422)


async def invalid_request(request: Request, err: Exception) -> JSONResponse:
    # FastAPI's own handler echoes the input, and a NaN or inf in it breaks the JSON reply.
    detail = [{k: e[k] for k in ("loc", "msg", "type")} for e in err.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def describe(forecaster: Forecaster, model_uri: str) -> dict[str, Any]:
    """``GET /metadata``: the model's columns, sizes, frequency and covariates."""
    spec = forecaster.spec
    return {
        "model": model_uri,
        "checkpoint_version": VERSION,
        "timestamp": spec.timestamp,
        "series_id": spec.series_id,
        "columns": spec.features,
        "targets": spec.targets,
        "lookback": spec.lookback,
        "horizon": spec.horizon,
        "frequency": spec.freq,
        "quantiles": forecaster.quantiles,
        "distribution": forecaster.net.config.distribution,
        "output_columns": forecaster.columns,
        "timezone": spec.timezone,
        # Every covariate with its role; what a request must carry follows from the role:
        # future ones in "data" and in "future", static and past ones in "data", calendar none.
        "covariates": [
            {"name": name, "role": role, "categories": spec.categories.get(name)}
            for role, names in (
                ("future", spec.future_covariates),
                ("static", spec.static_covariates),
                ("past", spec.past_categorical),
                ("calendar", spec.calendar),
            )
            for name in names
        ],
    }


def forecast_description(forecaster: Forecaster) -> str:
    spec = forecaster.spec
    return (
        f"Forecasts the next {spec.horizon} steps of each series. Send at least the last "
        f"{spec.lookback} rows of each, at frequency {spec.freq}, with the columns "
        f"{[*spec.timestamp_columns, *spec.features, *spec.side_columns]}"
        + (f" and, in `future`, its next {spec.horizon} rows" if spec.future_covariates else "")
        + ". GET /metadata describes the model."
    )


def answerer(forecaster: Forecaster) -> Callable[[bytes], bytes]:
    """A request's body to its answer's: every series in one forward pass."""
    spec = forecaster.spec

    def answer(body: bytes) -> bytes:
        # The body is parsed and validated by pydantic in one pass from bytes: a third of the
        # time of json.loads plus validation, which FastAPI does for a ForecastRequest argument.
        request = ForecastRequest.model_validate_json(body)
        one_answer(request.quantiles, request.samples)
        levels = forecaster.levels(request.quantiles)
        inputs = [
            forecaster.checked(series_input(series, k, spec))
            for k, series in enumerate(request.series)
        ]
        if request.samples is None:
            futures, forecast = forecaster.forecast(inputs, levels)
            names = [*spec.stamp_names, *forecaster.columns_for(levels)]
        else:  # each path's steps in turn, with its number
            futures, paths = forecaster.paths(inputs, request.samples, request.seed)
            futures = [np.tile(future, request.samples) for future in futures]
            draws = np.repeat(np.arange(request.samples), spec.horizon)[:, None]
            forecast = [np.hstack([draws, p.reshape(-1, spec.n_targets)]) for p in paths]
            names = [*spec.stamp_names, "sample", *spec.targets]
        answer = []
        for series, future, values in zip(request.series, futures, forecast, strict=True):
            stamps = spec.stamp_rows(future)
            rows = [
                dict(zip(names, (*stamp, *row), strict=True))
                for stamp, row in zip(stamps, values.tolist(), strict=True)
            ]
            answer.append({"id": series.id, "data": rows})
        return orjson.dumps({"forecasts": answer})

    return answer


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus ForecastRequest, which the route reads from raw bytes itself."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    request = ForecastRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(request.pop("$defs", {}), ForecastRequest=request)
    app.openapi_schema = schema
    return schema
