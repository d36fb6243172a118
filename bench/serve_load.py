"""Benchmark: requests per second and latency percentiles of ``graftwork serve`` under concurrent load.

Starts the real server (``graftwork serve``, a separate process) on a free 127.0.0.1 port for an ONNX export,
sends a bounded number of single-input requests from concurrent client threads, and reports requests/s and
p50/p95/p99 latency; the same with micro-batching off (``--max-wait-ms 0``) for comparison. Only the loopback
address is ever contacted.

Usage: python bench/serve_load.py EXPORT_DIR INPUT [--requests 300] [--concurrency 16] [--out FILE]
(INPUT: an image or audio file for an image/audio export, else a text)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, value: str) -> urllib.request.Request:
    path = Path(value)
    if path.is_file():
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n\r\n"
                .encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode())
        kind = f"multipart/form-data; boundary={boundary}"
    else:
        body, kind = json.dumps({"inputs": [value]}).encode(), "application/json"
    return urllib.request.Request(url, data=body, headers={"Content-Type": kind}, method="POST")


def load(folder: str, value: str, requests: int, concurrency: int, wait_ms: float) -> dict:
    port = _port()
    cmd = [sys.executable, "-m", "graftwork", "serve", folder, "--port", str(port), "--max-wait-ms", str(wait_ms)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        url = base + "/predict"

        def one(_: int) -> float:
            t0 = time.perf_counter()
            with urllib.request.urlopen(_request(url, value), timeout=60) as r:
                r.read()
            return time.perf_counter() - t0

        for i in range(8):
            one(i)  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = np.array(list(pool.map(one, range(requests))))
        wall = time.perf_counter() - t0
        batches = json.loads(urllib.request.urlopen(base + "/info", timeout=5).read())["batches_run"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = latencies * 1000
    return {"max_wait_ms": wait_ms, "requests": requests, "concurrency": concurrency,
            "requests_per_s": round(requests / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_inputs_per_batch": round((requests + 8) / max(batches, 1), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("input")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default="bench/results/serve_load.json")
    args = parser.parse_args()
    result = {"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "folder": args.folder,
              "batched": load(args.folder, args.input, args.requests, args.concurrency, 5.0),
              "no_wait": load(args.folder, args.input, args.requests, args.concurrency, 0.0)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
