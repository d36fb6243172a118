"""A real server on a free 127.0.0.1 port in a thread, and a small HTTP client (urllib, no extra dependency)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..export.conftest import image_run, ner_run, runs_root, text_run  # noqa: F401  (shared session fixtures)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(path: Path, **options: Any) -> Iterator[str]:
    """Serve ``path`` on 127.0.0.1 until the block ends; yields the base URL."""
    import uvicorn

    from graftwork.serve.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(path, **options), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def call(url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, Any]:
    """(status, parsed JSON) of a GET (no body) or POST."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def post_json(url: str, data: Any) -> tuple[int, Any]:
    return call(url, json.dumps(data).encode(), "application/json")


def post_files(url: str, files: list[Path]) -> tuple[int, Any]:
    boundary = uuid.uuid4().hex
    parts = []
    for f in files:
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{f.name}\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + f.read_bytes() + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return call(url, body, f"multipart/form-data; boundary={boundary}")
