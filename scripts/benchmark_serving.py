"""Serving speed on loopback: forecast-serve vs ``mlflow models serve`` vs the raw forward.

One run measures, for the same model (ETTh1 columns, default LSTM, lookback 96, horizon 96):
p50/p99 latency and requests/s of single-series requests at concurrency 1, 8 and 32 against
both servers, series/s of one 1,000-series request to forecast-serve, and the model's raw
forward time in this process, so the serving overhead is visible.

    python scripts/benchmark_serving.py              # full run, about two minutes
    python scripts/benchmark_serving.py --smoke      # seconds, forecast-serve only (CI)

Prints a table and writes JSON (``--out``). The load generator shares the 2 cores with the
server, so absolute figures are pessimistic; compare the rows of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import torch
from bench_setup import (
    BENCHMARKS,
    ETTH1,
    etth1,
    markdown_table,
    provenance,
    run_meta,
    write_results,
)

from forecast.model.config import LSTMConfig
from forecast.model.net import LSTMNet
from forecast.serving.checkpoint import save_checkpoint
from forecast.serving.forecaster import Forecaster
from forecast.serving.pyfunc import example_input, log_pyfunc

BIN = Path(sys.executable).parent


def make_model(workdir: Path) -> tuple[Path, str]:
    """An (untrained: speed does not depend on the weights) ETTh1 model, as a file and in MLflow."""
    dm = etth1()
    path = save_checkpoint(workdir / "model.pt", LSTMNet(LSTMConfig(), dm.spec), dm.spec)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    with mlflow.start_run():
        info = log_pyfunc(path, example_input(dm), registered_model_name=None)
    return path, info.model_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(argv: list[str], url: str, workdir: Path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        # `mlflow models serve` starts uvicorn by name: find it next to this Python
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
    }
    process = subprocess.Popen(
        argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {' '.join(argv)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            time.sleep(0.3)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def load(url: str, payload: bytes, concurrency: int, requests: int) -> dict:
    """Fire ``requests`` POSTs from ``concurrency`` keep-alive clients; latency in ms."""
    headers = {"content-type": "application/json"}
    clients = [httpx.Client(timeout=60) for _ in range(concurrency)]

    def worker(k: int) -> list[float]:
        times = []
        for _ in range(requests // concurrency):
            start = time.perf_counter()
            answer = clients[k].post(url, content=payload, headers=headers)
            times.append((time.perf_counter() - start) * 1e3)
            answer.raise_for_status()
        return times

    for client in clients:  # warm connections and the server
        client.post(url, content=payload, headers=headers).raise_for_status()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = [t for ts in pool.map(worker, range(concurrency)) for t in ts]
    elapsed = time.perf_counter() - start
    for client in clients:
        client.close()
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "requests_per_s": len(latencies) / elapsed,
    }


def health_during(base: str, payload: bytes, requests: int) -> dict:
    """/health latency (ms) while ``requests`` large forecast requests run one after another,
    against /health alone: a large request must not hold the event loop."""

    def health_ms(client: httpx.Client) -> float:
        start = time.perf_counter()
        client.get(f"{base}/health").raise_for_status()
        return (time.perf_counter() - start) * 1e3

    with httpx.Client(timeout=60) as client:
        idle = [health_ms(client) for _ in range(50)]
    busy: list[float] = []
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=60) as client:
        headers = {"content-type": "application/json"}
        large = pool.submit(
            lambda: [
                httpx.post(f"{base}/forecast", content=payload, headers=headers, timeout=120)
                for _ in range(requests)
            ]
        )
        while not large.done():
            busy.append(health_ms(client))
            time.sleep(0.02)
        assert all(answer.status_code == 200 for answer in large.result())
    return {
        "idle_p50_ms": float(np.percentile(idle, 50)),
        "busy_p50_ms": float(np.percentile(busy, 50)),
        "busy_p99_ms": float(np.percentile(busy, 99)),
        "busy_max_ms": max(busy),
        "health_requests": len(busy),
        "large_requests": requests,
    }


def raw_forward_ms(forecaster: Forecaster, batch: int, repeats: int) -> float:
    x = torch.randn(batch, forecaster.spec.lookback, forecaster.spec.n_features)
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            forecaster.net(x)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="few requests, no mlflow server")
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "serving.json")
    args = parser.parse_args()
    levels = [1, 8] if args.smoke else [1, 8, 32]
    n_requests = 16 if args.smoke else args.requests
    n_batch = 50 if args.smoke else 1000

    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model_path, model_uri = make_model(workdir)
    forecaster = Forecaster.load(model_path)
    frame = pd.read_csv(ETTH1).tail(forecaster.spec.lookback)
    records = frame.to_dict(orient="records")
    single = json.dumps({"series": [{"id": 0, "data": records}]}).encode()
    batch = json.dumps({"series": [{"id": k, "data": records} for k in range(n_batch)]}).encode()
    mlflow_single = json.dumps({"dataframe_records": records}).encode()

    results: dict = {
        "raw_forward_ms": {
            "1 series": raw_forward_ms(forecaster, 1, 200),
            f"{n_batch} series": raw_forward_ms(forecaster, n_batch, 5),
        }
    }
    port = free_port()
    argv = [
        str(BIN / "forecast-serve"),
        f"ckpt_path={model_path}",
        f"port={port}",
        "log_level=warning",
    ]
    with running(argv, f"http://127.0.0.1:{port}/health", workdir):
        url = f"http://127.0.0.1:{port}/forecast"
        results["forecast-serve"] = {str(c): load(url, single, c, n_requests) for c in levels}
        batch_run = load(url, batch, 1, 3)
        results["batch"] = {
            "series": n_batch,
            "bytes": len(batch),
            "seconds": batch_run["p50_ms"] / 1e3,
            "series_per_s": n_batch / (batch_run["p50_ms"] / 1e3),
        }
        results["health_during_batch"] = health_during(
            f"http://127.0.0.1:{port}", batch, 1 if args.smoke else 3
        )
    if not args.smoke:
        port = free_port()
        argv = [
            str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        with running(argv, f"http://127.0.0.1:{port}/ping", workdir):
            url = f"http://127.0.0.1:{port}/invocations"
            results["mlflow models serve"] = {
                str(c): load(url, mlflow_single, c, n_requests) for c in levels
            }
    results = {"meta": run_meta("benchmark_serving.py"), "levels": levels, **results}
    print(table(results))
    write_results(args.out, results)


def table(results: dict) -> str:
    raw = results["raw_forward_ms"]["1 series"]
    servers = [s for s in ("forecast-serve", "mlflow models serve") if s in results]
    rows = []
    for server in servers:
        for c in results["levels"]:
            r = results[server][str(c)]
            rows.append([server, c, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                         f"{r['requests_per_s']:,.0f}", f"{r['p50_ms'] - raw:.2f}"])  # fmt: skip
    notes = []
    if len(servers) == 2:
        ratios = " / ".join(
            f"{rps(results, 'forecast-serve', c) / rps(results, 'mlflow models serve', c):.1f}x"
            for c in results["levels"]
        )
        levels = " / ".join(str(c) for c in results["levels"])
        notes.append(
            f"forecast-serve answers {ratios} the requests per second of `mlflow models serve` "
            f"at concurrency {levels}."
        )
    b, h = results["batch"], results["health_during_batch"]
    batch_raw = results["raw_forward_ms"][f"{b['series']} series"]
    notes += [
        f"Raw forward of one series {raw:.2f} ms. One request of {b['series']:,} series "
        f"({b['bytes'] / 1e6:.1f} MB): {b['seconds'] * 1e3:,.0f} ms, {b['series_per_s']:,.0f} "
        f"series/s (raw forward {batch_raw:,.0f} ms). `/health` while such requests run: p50 "
        f"{h['busy_p50_ms']:.1f} ms, p99 {h['busy_p99_ms']:.1f} ms, max {h['busy_max_ms']:.1f} ms "
        f"over {h['health_requests']} checks (idle p50 {h['idle_p50_ms']:.1f} ms).",
        provenance(results["meta"]),
    ]
    header = ["server", "concurrency", "p50 ms", "p99 ms", "requests/s", "p50 - raw forward ms"]
    return markdown_table(header, rows, *notes)


def rps(results: dict, server: str, concurrency: int) -> float:
    return results[server][str(concurrency)]["requests_per_s"]


if __name__ == "__main__":
    main()
