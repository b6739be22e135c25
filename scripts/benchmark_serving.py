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
from bench_setup import ETTH1, etth1

from forecast.checkpoint import save_checkpoint
from forecast.mlflow_model import log_pyfunc
from forecast.model import LSTMConfig, LSTMNet
from forecast.predict import Forecaster

BIN = Path(sys.executable).parent


def make_model(workdir: Path) -> tuple[Path, str]:
    """An (untrained: speed does not depend on the weights) ETTh1 model, as a file and in MLflow."""
    dm = etth1()
    path = save_checkpoint(workdir / "model.pt", LSTMNet(LSTMConfig(), dm.spec), dm.spec)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    with mlflow.start_run():
        info = log_pyfunc(path, dm.example_input(), registered_model_name=None)
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
    parser.add_argument("--out", type=Path, default=Path("bench/serving.json"))
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
        results["forecast-serve"] = {c: load(url, single, c, n_requests) for c in levels}
        batch_run = load(url, batch, 1, 3)
        results["batch"] = {
            "series": n_batch,
            "seconds": batch_run["p50_ms"] / 1e3,
            "series_per_s": n_batch / (batch_run["p50_ms"] / 1e3),
        }
    if not args.smoke:
        port = free_port()
        argv = [
            str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        with running(argv, f"http://127.0.0.1:{port}/ping", workdir):
            url = f"http://127.0.0.1:{port}/invocations"
            results["mlflow models serve"] = {
                c: load(url, mlflow_single, c, n_requests) for c in levels
            }
    report(results, levels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


def report(results: dict, levels: list[int]) -> None:
    raw = results["raw_forward_ms"]["1 series"]
    print(f"raw forward, 1 series: {raw:.2f} ms")
    print(f"{'server':<22}{'conc':>5}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'p50 - raw':>11}")
    for server in ("forecast-serve", "mlflow models serve"):
        for c in levels if server in results else []:
            r = results[server][c]
            print(
                f"{server:<22}{c:>5}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                f"{r['requests_per_s']:>9.0f}{r['p50_ms'] - raw:>11.2f}"
            )
    if "mlflow models serve" in results:
        for c in levels:
            ratio = (
                results["forecast-serve"][c]["requests_per_s"]
                / results["mlflow models serve"][c]["requests_per_s"]
            )
            print(f"requests/s forecast-serve / mlflow at concurrency {c}: {ratio:.1f}x")
    b = results["batch"]
    batch_raw = results["raw_forward_ms"][f"{b['series']} series"]
    print(
        f"one request of {b['series']} series: {b['seconds'] * 1e3:.0f} ms, "
        f"{b['series_per_s']:.0f} series/s (raw forward {batch_raw:.0f} ms)"
    )


if __name__ == "__main__":
    main()
