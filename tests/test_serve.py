"""The HTTP server: the request/answer contract, every kind of bad request, a loopback fuzz."""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient
from helpers import free_port
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from forecast import Forecaster
from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.serving.app import create_app
from forecast.serving.limits import HeaderDeadline


@pytest.fixture(scope="module")
def forecaster(trained) -> Forecaster:
    return Forecaster.load(trained["model"])


@pytest.fixture(scope="module")
def client(forecaster) -> TestClient:
    return TestClient(create_app(forecaster, "test-model", max_body_bytes=200_000))


@pytest.fixture(scope="module")
def history(trained) -> pd.DataFrame:
    return pd.read_csv(trained["csv"]).tail(30).reset_index(drop=True)


def body(*frames: pd.DataFrame, ids=None) -> dict:
    ids = ids or [None] * len(frames)
    return {
        "series": [
            # JSON has no NaN: missing values travel as null
            {"id": i, "data": f.astype(object).where(f.notna(), None).to_dict(orient="records")}
            for i, f in zip(ids, frames, strict=True)
        ]
    }


def test_health_metadata_and_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["columns"] == ["load", "temp", "price"] == meta["targets"]
    assert (meta["lookback"], meta["horizon"], meta["frequency"]) == (24, 6, "h")
    assert meta["model"] == "test-model" and meta["quantiles"] == []
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ForecastRequest"}
    assert {"ForecastRequest", "SeriesIn", "ForecastResponse"} <= set(
        schema["components"]["schemas"]
    )
    assert client.get("/docs").status_code == 200
    post = schema["paths"]["/forecast"]["post"]
    assert {"200", "413", "422"} <= set(post["responses"])
    assert "at least the last 24 rows of each, at frequency h" in post["description"]
    assert "event loop" not in post["description"]  # a user's description, not our notes


def test_docs_are_served_by_the_server_itself(forecaster, monkeypatch):
    """Offline, /docs still shows the API: no script or stylesheet from another host."""
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)  # the docs extra not installed
    page = TestClient(create_app(forecaster, "m")).get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "POST /forecast" in page.text and "ForecastRequest" in page.text
    assert "<script" not in page.text and 'href="http' not in page.text


def test_swagger_ui_comes_from_packaged_files(forecaster):
    pytest.importorskip("swagger_ui_bundle")
    client = TestClient(create_app(forecaster, "m"))
    page = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in page
    assert 'src="http' not in page and 'href="http' not in page
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_forecast_matches_the_python_api(client, forecaster, history):
    answer = client.post("/forecast", json=body(history, ids=["north"]))
    assert answer.status_code == 200
    (series,) = answer.json()["forecasts"]
    assert series["id"] == "north"
    got = pd.DataFrame(series["data"])
    expected = forecaster.predict(history)
    assert list(got.columns) == ["date", "load", "temp", "price"]
    assert list(got["date"]) == list(expected["date"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    np.testing.assert_allclose(got[["load", "temp", "price"]], expected[["load", "temp", "price"]])


def test_many_series_share_one_forward_pass(client, forecaster, history, monkeypatch):
    calls = []
    forecast = forecaster.net.forecast
    monkeypatch.setattr(
        forecaster.net, "forecast", lambda x, *rest: calls.append(x.shape) or forecast(x, *rest)
    )
    later = history.assign(load=history.load + 1.0)
    answer = client.post("/forecast", json=body(history, later, history.tail(24), ids=[1, 2, 3]))
    assert answer.status_code == 200
    assert calls == [(3, 24, 3)]
    first, second, third = answer.json()["forecasts"]
    assert [first["id"], second["id"], third["id"]] == [1, 2, 3]
    assert first["data"] == third["data"]  # only the last lookback rows matter
    assert first["data"] != second["data"]


def test_repeated_timestamps_in_a_request_merge_as_the_model_was_trained(forecaster, history):
    repeated = pd.concat(
        [history.iloc[:25], history.iloc[[24]].assign(load=0.0), history.iloc[25:]]
    )
    client = TestClient(create_app(forecaster, "m"))
    answer = client.post("/forecast", json=body(repeated))
    assert answer.status_code == 422 and "timestamps duplicated" in answer.json()["detail"]
    first = Forecaster(forecaster.net, replace(forecaster.spec, duplicates="first"))
    answer = TestClient(create_app(first, "m")).post("/forecast", json=body(repeated))
    assert answer.status_code == 200
    expected = client.post("/forecast", json=body(history)).json()
    assert answer.json() == expected


def test_quantile_model_answers_interval_columns(forecaster, history):
    """A model with quantiles: /metadata lists them and every answer row carries them."""
    config = LSTMConfig(hidden_size=8, num_layers=1, quantiles=[0.1, 0.9])
    net = LSTMNet(config, forecaster.spec).eval()
    quantile_client = TestClient(create_app(Forecaster(net, forecaster.spec), "q-model"))
    meta = quantile_client.get("/metadata").json()
    assert meta["quantiles"] == [0.1, 0.9]
    assert meta["output_columns"][:4] == ["load", "temp", "price", "load_q0.1"]
    answer = quantile_client.post("/forecast", json=body(history))
    assert answer.status_code == 200
    rows = answer.json()["forecasts"][0]["data"]
    assert len(rows) == 6 and list(rows[0]) == ["date", *meta["output_columns"]]
    expected = Forecaster(net, forecaster.spec).predict(history)
    assert rows[0]["price_q0.9"] == pytest.approx(expected["price_q0.9"].iloc[0], rel=1e-6)


def shifted(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    stamps = pd.to_datetime(frame.date) + pd.Timedelta(minutes=minutes) * np.arange(len(frame))
    return frame.assign(date=stamps.dt.strftime("%Y-%m-%d %H:%M:%S"))


BAD_BODIES = {
    "missing column": lambda h: body(h.drop(columns="temp")),
    "too few rows": lambda h: body(h.tail(10)),
    "NaN value": lambda h: body(h.assign(load=h.load.where(h.index != 28))),
    "unsorted": lambda h: body(h.iloc[::-1]),
    "duplicated": lambda h: body(pd.concat([h.head(1), h])),
    "wrong frequency": lambda h: body(shifted(h, 30)),
    "text value": lambda h: body(h.assign(price="cheap")),
    "numeric timestamp": lambda h: body(h.assign(date=1)),
    "not a timestamp": lambda h: body(h.assign(date="soon")),
    "no series": lambda h: {"series": []},
    "no rows": lambda h: {"series": [{"data": []}]},
    "wrong shape": lambda h: {"series": {"data": 1}},
    "bool value": lambda h: body(h.assign(load=True)),
    "huge value": lambda h: body(h.assign(load=1e308)),
    "integer beyond float": lambda h: body(h.assign(load=10**400)),
    "year 1500": lambda h: body(h.assign(date=h.date.str.replace("2024", "1500"))),
    "forecast past 2262": lambda h: body(
        h.assign(date=pd.date_range(end="2262-04-11 20:00", periods=len(h), freq="h").astype(str))
    ),
    "id beyond 64 bits": lambda h: {
        "series": [{"id": 2**64, "data": body(h)["series"][0]["data"]}]
    },
}

MESSAGES = {
    "missing column": "series 0, row 0: missing column(s) ['temp']",
    "too few rows": "series 0 has 10 rows, the model needs lookback=24",
    "NaN value": "column 'load' has 1 NaN/inf value(s), first at data row 28 (0-based)",
    "unsorted": "timestamps not sorted at data row 1 ",
    "duplicated": "timestamps duplicated at data row 1 ",
    "wrong frequency": "at frequency h",
    "text value": "column 'price' is not a number",
    "numeric timestamp": "column 'date' must hold timestamp strings",
    "not a timestamp": "column 'date'",
    "huge value": "column 'load' at step 0 is too large for the model once scaled",
    "integer beyond float": "series 0: a value is too large for a 64-bit float",
    "year 1500": "outside the range timestamps can be held in",
    "forecast past 2262": "6 steps after 2262-04-11 20:00:00 reach past 2262-04-11",
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_requests_get_a_4xx_naming_the_problem(client, history, case):
    answer = client.post("/forecast", json=BAD_BODIES[case](history))
    assert answer.status_code == 422
    if case in MESSAGES:
        assert MESSAGES[case] in answer.json()["detail"]
    assert client.post("/forecast", json=body(history)).status_code == 200  # still serving


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"", 422), (b"{not json", 422), (b"[1, 2]", 422), (b"x" * 300_000, 413)],
)
def test_malformed_empty_and_huge_bodies(client, content, status):
    answer = client.post("/forecast", content=content, headers={"content-type": "application/json"})
    assert answer.status_code == status


@contextlib.contextmanager
def running(app, **settings: Any) -> Iterator[str]:
    """``app`` under uvicorn on a loopback port, in a thread of this process; its base URL.
    ``log_config=None`` leaves uvicorn's records to the root logger, where caplog sees them;
    ``settings`` are more of uvicorn.Config's; its protocol is forecast-serve's."""
    port = free_port()
    protocol = functools.partial(HeaderDeadline, header_timeout_s=10.0)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level="info",
        **({"http": protocol} | settings),
    )  # fmt: skip
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(forecaster):
    with running(create_app(forecaster, "test-model", 200_000)) as url:
        yield url


def test_concurrent_requests_are_answered_alike(server, history):
    payload = body(history)
    with httpx.Client(base_url=server, timeout=30) as http:
        expected = http.post("/forecast", json=payload).json()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: http.post("/forecast", json=payload), range(32)))
    assert all(a.status_code == 200 for a in answers)
    assert all(a.json() == expected for a in answers)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def hourly_from(start: datetime.datetime, n: int) -> list[str]:
    return [str(start + datetime.timedelta(hours=k)).replace("T", " ") for k in range(n)]


FUZZ_KINDS = [
    "random", "corrupt value", "corrupt key", "raw bytes", "huge value", "id", "timestamp", "size",
]  # fmt: skip


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_finds_no_server_error(http, history, data):
    """1,000 requests: random JSON, valid requests with one row corrupted, and the classes that
    once gave a 500 or non-numbers (huge values, big ids, timestamps at the edges of what can be
    held, sizes up to the body limit). Every answer is a 200 with finite numbers or a 4xx."""
    payload = body(history)
    series = payload["series"][0]
    rows = series["data"]
    kind = data.draw(st.sampled_from(FUZZ_KINDS))
    if kind == "random":
        payload = data.draw(json_values)
    elif kind == "corrupt value":
        row, key = (
            data.draw(st.integers(0, len(rows) - 1)),
            data.draw(st.sampled_from(list(rows[0]))),
        )
        rows[row][key] = data.draw(json_values)
    elif kind == "corrupt key":
        rows[data.draw(st.integers(0, len(rows) - 1))][data.draw(st.text(max_size=8))] = 1.0
    elif kind == "huge value":  # one column, some or all rows, up to the float64 limit and past it
        column = data.draw(st.sampled_from(["load", "temp", "price"]))
        value = data.draw(
            st.floats(min_value=1e15, max_value=1.7e308)
            | st.floats(min_value=-1.7e308, max_value=-1e15)
            | st.integers(min_value=10**15, max_value=10**400)
        )
        for row in rows[data.draw(st.integers(0, len(rows) - 1)) :]:
            row[column] = value
    elif kind == "id":
        series["id"] = data.draw(
            st.integers(min_value=-(2**80), max_value=2**80) | st.text(max_size=30) | json_values
        )
    elif kind == "timestamp":  # consecutive hours from anywhere in 1-9999, so only range matters
        start = data.draw(st.datetimes(min_value=datetime.datetime(1, 1, 1)))
        for row, stamp in zip(rows, hourly_from(start, len(rows)), strict=False):
            row["date"] = stamp
    elif kind == "size":  # many series, many rows: near and past the 200 kB body limit
        n_series, repeat = data.draw(st.integers(1, 80)), data.draw(st.integers(1, 40))
        stamps = hourly_from(datetime.datetime(2000, 1, 1), len(rows) * repeat)
        long = [{**rows[k % len(rows)], "date": stamps[k]} for k in range(len(rows) * repeat)]
        payload = {"series": [{"id": k, "data": long} for k in range(n_series)]}
    content = (
        data.draw(st.binary(max_size=200))
        if kind == "raw bytes"
        else json.dumps(payload, allow_nan=True).encode()
    )
    answer = http.post("/forecast", content=content, headers={"content-type": "application/json"})
    event(f"{kind}: {answer.status_code}")  # --hypothesis-show-statistics lists the mix
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        values = [
            v for f in answer.json()["forecasts"] for row in f["data"] for k, v in row.items()
            if k != "date"
        ]  # fmt: skip
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), kind


@contextlib.contextmanager
def held_forecasts(forecaster, monkeypatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The forward pass blocks until ``release`` is set; ``entered`` says one has started."""
    entered, release = threading.Event(), threading.Event()
    forecast = forecaster.net.forecast

    def held(*args):
        entered.set()
        release.wait(timeout=60)
        return forecast(*args)

    monkeypatch.setattr(forecaster.net, "forecast", held)
    try:
        yield entered, release
    finally:
        release.set()


def test_a_large_request_leaves_the_server_answering(forecaster, history, monkeypatch):
    """While a large request is forecast, /health answers: it does not wait for the request."""
    app = create_app(forecaster, "test-model", 200_000, large_body_bytes=1_000)
    with running(app) as url, held_forecasts(forecaster, monkeypatch) as (entered, release):
        with ThreadPoolExecutor(1) as pool:
            large = pool.submit(httpx.post, f"{url}/forecast", json=body(history), timeout=60)
            assert entered.wait(timeout=30)
            assert httpx.get(f"{url}/health", timeout=10).status_code == 200
            assert not large.done()  # /health was answered while the forecast was held
            release.set()
            assert large.result().status_code == 200
        # and the answer is the one the event-loop path gives
        expected = Forecaster(forecaster.net, forecaster.spec).predict(history)
    got = pd.DataFrame(large.result().json()["forecasts"][0]["data"])
    np.testing.assert_allclose(got[["load", "temp", "price"]], expected[["load", "temp", "price"]])


def test_large_requests_are_forecast_a_bounded_number_at_a_time(forecaster, history, monkeypatch):
    app = create_app(
        forecaster, "test-model", 200_000, large_body_bytes=1_000, max_large_requests=1
    )
    running_now, most = 0, 0
    lock = threading.Lock()
    forecast = forecaster.net.forecast

    def counted(*args):
        nonlocal running_now, most
        with lock:
            running_now += 1
            most = max(most, running_now)
        time.sleep(0.2)
        with lock:
            running_now -= 1
        return forecast(*args)

    monkeypatch.setattr(forecaster.net, "forecast", counted)
    with running(app) as url, ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.post(f"{url}/forecast", json=body(history), timeout=60), range(4)
            )
        )
    assert [a.status_code for a in answers] == [200] * 4
    assert most == 1


def raw_post(url: str, headers: str, content: bytes) -> socket.socket:
    """A POST written by hand, so that its body can stop short of its Content-Length."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST /forecast HTTP/1.1\r\nhost: {host}\r\n{headers}\r\n".encode() + content)
    return sock


def test_a_stalled_body_is_answered_408(forecaster):
    app = create_app(forecaster, "test-model", 200_000, body_timeout_s=0.5)
    with running(app) as url:
        sock = raw_post(url, "content-type: application/json\r\ncontent-length: 1000\r\n", b"{")
        with sock:
            status = sock.recv(4096).split(b"\r\n")[0]
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert httpx.get(f"{url}/health").status_code == 200


def test_a_body_trickling_in_just_in_time_is_answered_408_at_the_deadline(forecaster):
    """A byte every 0.2 s never stalls 0.5 s, and 1,000 bytes would take 200 s: the whole
    body's deadline frees the connection and its slot after 1 s."""
    app = create_app(forecaster, "test-model", 200_000, body_timeout_s=0.5, body_deadline_s=1.0)
    with running(app) as url:
        sock = raw_post(url, "content-type: application/json\r\ncontent-length: 1000\r\n", b"{")
        with sock:
            sock.settimeout(0.2)
            answer = b""
            for _ in range(50):  # at most 10 s of trickling
                try:
                    answer = sock.recv(4096)
                    break
                except TimeoutError:
                    sock.sendall(b" ")
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout"
        assert b"body not whole after 1 s" in answer


def test_a_client_leaving_mid_body_is_one_log_line(forecaster, caplog):
    caplog.set_level(logging.INFO)
    with running(create_app(forecaster, "test-model", 200_000)) as url:
        sock = raw_post(url, "content-type: application/json\r\ncontent-length: 1000\r\n", b"{")
        time.sleep(0.2)
        sock.close()
        deadline = time.monotonic() + 10
        while "left before its request was read" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{url}/health").status_code == 200
    assert "left before its request was read" in caplog.text
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """Whether the server closes ``sock`` within ``seconds``, while ``trickle`` is sent to it a
    byte every 0.2 s."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            if sent < len(trickle):
                try:
                    sock.sendall(trickle[sent : sent + 1])
                except OSError:
                    return True
                sent += 1
        except ConnectionResetError:
            return True
    return False


def test_slow_headers_and_idle_connections_are_closed(forecaster):
    """Issue #24, probe 4: headers sent a byte at a time, a connection left idle, and one idle
    after its answer are closed at the head's deadline; the server answers others meanwhile."""
    protocol = functools.partial(HeaderDeadline, header_timeout_s=1.0)
    with running(create_app(forecaster, "test-model", 200_000), http=protocol) as url:
        host, port = url.removeprefix("http://").split(":")
        head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 100 + b"\r\n\r\n"
        with socket.create_connection((host, int(port))) as slow:
            assert closed_within(slow, 5, trickle=head)  # 22 s of trickling if let be
        with socket.create_connection((host, int(port))) as idle:
            assert closed_within(idle, 3)
        with socket.create_connection((host, int(port))) as kept:
            kept.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            assert kept.recv(4096).startswith(b"HTTP/1.1 200")
            assert closed_within(kept, 3)  # uvicorn's own keep-alive allows 5 s
        assert httpx.get(f"{url}/health").status_code == 200


def test_connections_past_the_cap_are_answered_503(forecaster):
    with running(create_app(forecaster, "test-model", 200_000), limit_concurrency=2) as url:
        host, port = url.removeprefix("http://").split(":")
        address = (host, int(port))
        with socket.create_connection(address), socket.create_connection(address):
            time.sleep(0.2)
            assert httpx.get(f"{url}/health").status_code == 503
        time.sleep(0.2)
        assert httpx.get(f"{url}/health").status_code == 200
