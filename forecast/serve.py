"""``forecast-serve``: forecasts over HTTP from one model, loaded once at start.

    forecast-serve ckpt_path=logs/runs/<run>/model.pt port=8000
    curl -X POST localhost:8000/forecast -H 'content-type: application/json' -d @request.json

Request: ``{"series": [{"id": "a", "data": [{"date": "2018-06-26 19:00:00", "OT": 1.0, ...}]}]}``,
each series as ``DataFrame.to_dict(orient="records")`` rows with the training column names.
Answer: ``{"forecasts": [{"id": "a", "data": [{"date": ..., "OT": ...}, ...]}]}``, ``horizon``
rows per series; a model trained with quantiles adds ``OT_q0.1``-style columns (``/metadata``
lists them). All series of a request go through one forward pass. Every problem with a
request is a 4xx naming it; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Annotated, Any

import anyio
import hydra
import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from omegaconf import DictConfig
from pydantic import BaseModel, Field, StrictFloat, StrictInt, ValidationError
from starlette.requests import ClientDisconnect

from forecast.api_docs import add_docs
from forecast.checkpoint import VERSION
from forecast.config import SERVING_CONF_DIR, exit_on_error
from forecast.data import to_nanoseconds
from forecast.errors import ForecastError
from forecast.predict import Forecaster, SeriesInput, parse_stamps
from forecast.spec import DataSpec

log = logging.getLogger(__name__)

Value = StrictFloat | StrictInt | str | None


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


class SeriesOut(BaseModel):
    id: SeriesId
    data: list[dict[str, float | str]]


class ForecastResponse(BaseModel):
    forecasts: list[SeriesOut]


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
        texts = [c for c in numeric if isinstance(row[c], str)]
        if texts:
            raise ForecastError(f"{label}, row {i}: column {texts[0]!r} is not a number")
    try:
        values = np.array(
            [[np.nan if (v := row[c]) is None else v for c in numeric] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(numeric))
    except OverflowError:  # JSON integers have no size limit, float64 has
        raise ForecastError(f"{label}: a value is too large for a 64-bit float") from None
    columns = {c: np.array([row[c] for row in rows]) for c in other}
    if not stamp_columns:  # steps 0, 1, ...: forecasts go on from the last
        return np.arange(len(rows)).astype("datetime64[ns]"), values, columns
    if len(stamp_columns) > 1:
        stamps = {c: np.array([row[c] for row in rows], dtype=object) for c in stamp_columns}
        return parse_stamps(stamps, spec, label), values, columns
    column = stamp_columns[0]
    raw = [row[column] for row in rows]
    if not all(isinstance(s, str) for s in raw):
        raise ForecastError(f"{label}: column {column!r} must hold timestamp strings")
    if spec.timestamp_format is None and spec.timezone is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy warns on an offset: pandas handles those
                parsed = np.array(raw, dtype="datetime64[us]")
            return to_nanoseconds(parsed, label, column), values, columns
        except (ValueError, UserWarning):  # offsets, other formats: as files are read
            pass
    return parse_stamps({column: np.array(raw, dtype=object)}, spec, label), values, columns


def series_input(series: SeriesIn, k: int, forecaster: Forecaster) -> SeriesInput:
    """One series of a request, checked like a file's."""
    spec = forecaster.spec
    label = f"series {k}" if series.id is None else f"series {series.id!r}"
    covariates = [*spec.future_covariates, *spec.static_covariates]
    stamps, values, raw = parse_rows(series.data, spec, spec.features, covariates, label)
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
    kept, stamps, values = forecaster.check(stamps, values, label)
    raw = {name: column[kept] for name, column in raw.items()}
    return SeriesInput(label, stamps, values, raw, future)


class BodyLimit:
    """Bounds what a request costs before the route reads it.

    A body over ``max_bytes`` is refused with 413 (by header, and while streaming when chunked);
    a body that stalls for ``timeout_s`` between chunks gets 408, so a half-sent body does not
    hold its connection and memory forever; at most ``max_large`` bodies over ``large_bytes``
    (or of unknown length) are read and forecast at once, the rest wait their turn, so memory
    stays under about ``max_large * max_bytes`` whatever the clients do. A client that leaves
    before its body is read is one log line, not a traceback.

    Plain ASGI rather than ``@app.middleware``: Starlette's BaseHTTPMiddleware costs about a
    millisecond per request, half the serving budget.
    """

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        large_bytes: int,
        max_large: int,
        timeout_s: float,
    ) -> None:
        self.app, self.max_bytes, self.large_bytes = app, max_bytes, large_bytes
        self.timeout_s = timeout_s
        self.large = asyncio.Semaphore(max_large)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        large = int(length) > self.large_bytes or b"transfer-encoding" in headers
        seen = 0
        done = False

        async def bounded() -> dict:
            nonlocal seen, done
            if done:  # past the body: Starlette listens for a disconnect, with no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise HTTPException(408, f"no body data for {self.timeout_s:g} s") from None
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"body over {self.max_bytes} bytes")
            done = not message.get("more_body", False)
            return message

        try:
            if large:
                async with self.large:
                    await self.app(scope, bounded, send)
            else:
                await self.app(scope, bounded, send)
        except ClientDisconnect:
            client = scope.get("client") or ("?", 0)
            log.info("%s:%s left before its request was read", *client)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse({"detail": f"body over {self.max_bytes} bytes"}, status_code=413)
        await response(scope, receive, send)


def create_app(
    forecaster: Forecaster,
    model_uri: str,
    max_body_bytes: int = 64 << 20,
    large_body_bytes: int = 1 << 20,
    max_large_requests: int = 2,
    body_timeout_s: float = 30.0,
) -> FastAPI:
    app = FastAPI(
        title="forecast", description=__doc__.split("\n\n")[0], docs_url=None, redoc_url=None
    )
    add_docs(app)
    spec = forecaster.spec
    metadata = {
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
        "output_columns": forecaster.columns,
        "timezone": spec.timezone,
        # Every covariate with its role; what a request must carry follows from the role:
        # future ones in "data" and in "future", static ones in "data", calendar none.
        "covariates": [
            {"name": name, "role": role, "categories": spec.categories.get(name)}
            for role, names in (
                ("future", spec.future_covariates),
                ("static", spec.static_covariates),
                ("calendar", spec.calendar),
            )
            for name in names
        ],
    }
    output_columns = [*spec.stamp_names, *forecaster.columns]

    app.add_middleware(
        BodyLimit,
        max_bytes=max_body_bytes,
        large_bytes=large_body_bytes,
        max_large=max_large_requests,
        timeout_s=body_timeout_s,
    )

    @app.exception_handler(ForecastError)
    async def bad_request(request: Request, err: ForecastError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def invalid_request(request: Request, err: Exception) -> JSONResponse:
        # FastAPI's own handler echoes the input, and a NaN or inf in it breaks the JSON reply.
        detail = [{k: e[k] for k in ("loc", "msg", "type")} for e in err.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def get_metadata() -> dict[str, Any]:
        return metadata

    @app.post(
        "/forecast",
        response_model=ForecastResponse,
        openapi_extra=REQUEST_BODY_DOC,
        description=(
            f"Forecasts the next {spec.horizon} steps of each series. Send at least the last "
            f"{spec.lookback} rows of each, at frequency {spec.freq}, with the columns "
            f"{[*spec.timestamp_columns, *spec.features]}"
            + (f" and, in `future`, its next {spec.horizon} rows" if spec.future_covariates else "")
            + ". GET /metadata describes the model."
        ),
        responses={
            413: {"description": f"The body is over {max_body_bytes} bytes."},
            422: {"description": "The request is malformed; `detail` names the problem."},
        },
    )
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

    def answer(body: bytes) -> bytes:
        # The body is parsed and validated by pydantic in one pass from bytes: a third of the
        # time of json.loads plus validation, which FastAPI does for a ForecastRequest argument.
        request = ForecastRequest.model_validate_json(body)
        inputs = [series_input(series, k, forecaster) for k, series in enumerate(request.series)]
        futures, forecast = forecaster.forecast(inputs)
        answer = []
        for series, future, values in zip(request.series, futures, forecast, strict=True):
            if len(spec.timestamp_columns) != 1:  # parts or steps, each in its column
                parts = [np.asarray(v).tolist() for v in spec.stamp_columns(future).values()]
                stamps = list(zip(*parts, strict=True))
            elif spec.timezone is None:
                stamps = np.char.replace(np.datetime_as_string(future, unit="s"), "T", " ")
                stamps = [(str(stamp),) for stamp in stamps]
            else:  # with the data's offset, as its rows came in
                stamps = [(str(stamp),) for stamp in spec.stamps_out(future).astype(str)]
            rows = [
                dict(zip(output_columns, (*stamp, *row), strict=True))
                for stamp, row in zip(stamps, values.tolist(), strict=True)
            ]
            answer.append({"id": series.id, "data": rows})
        return orjson.dumps({"forecasts": answer})

    app.openapi = lambda: app.openapi_schema or _openapi(app)
    return app


REQUEST_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ForecastRequest"}}
        },
    }
}


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


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="serve")
@exit_on_error
def main(cfg: DictConfig) -> None:
    import uvicorn

    forecaster = Forecaster.load(cfg.ckpt_path)
    app = create_app(
        forecaster,
        str(cfg.ckpt_path),
        cfg.max_body_bytes,
        cfg.large_body_bytes,
        cfg.max_large_requests,
        cfg.body_timeout_s,
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level)


if __name__ == "__main__":
    main()
