"""The HTTP routes and :func:`serve`.

``POST /predict`` answers with ``graftwork predict --json``'s list. Texts come as JSON ``{"inputs": ["...",
...]}`` (the form of Hugging Face inference endpoints; a single string is accepted too); images and audio as
``multipart/form-data`` file uploads (field ``files``, repeated), each answered under its file name. ``top_k``
is a query parameter. Errors are JSON ``{"error", "hint", "problems"}`` with the CLI's message: 400 for a
body that is not valid JSON, 413 for a body over ``--max-upload-mb``, 415 for the wrong kind of body, 422 for
inputs that cannot be used (an unreadable image, a text model sent files). ``GET /health`` says the model is
loaded; ``GET /info`` gives the labels, backbone and metrics summary.

Uploads are written to a temporary folder (deleted after the request) and the feature cache is not used, so the
server never writes to the run folder or anywhere else that lasts.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import ConfigError, DataError, GraftworkError, Problem
from ..runtime.predictor import top_predictions
from .backends import Backend, load_backend
from .batcher import MicroBatcher
from .limits import BodyLimit

MAX_INPUTS = 1024  # per request: more belongs in a batch job (`graftwork predict`)
_ENV = "GRAFTWORK_SERVE_OPTIONS"


def _error(status: int, e: GraftworkError) -> Any:
    return JSONResponse({"error": e.message, "hint": e.hint, "problems": [str(p) for p in e.problems]},
                        status_code=status)


def _run_batch(backend: Backend) -> Any:
    """The batch function: texts (or NER texts) and uploaded file paths, one result per item."""
    def run(items: list[tuple[str, str]]) -> list[Any]:
        values = [v for v, _ in items]
        if backend.task == "ner":
            return list(backend.entities(values))
        probs, bad = backend.classify(values)
        return [("error", bad[i]) if i in bad else ("ok", probs[i]) for i in range(len(values))]

    return run


def _texts(body: bytes) -> list[str]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _BadJson(f"the request body is not valid JSON ({e}).",
                          hint='send {"inputs": ["a text", "another"]} with Content-Type: application/json.') from None
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
        raise DataError("'inputs' must be a string or a list of strings. Got "
                        f"{type(inputs).__name__ if inputs is not None else 'nothing'} instead.",
                        hint='send {"inputs": ["a text", "another"]}.')
    return inputs


async def _files(request: Any, limit: int, folder: Path) -> list[tuple[str, str]]:
    form = await request.form(max_files=MAX_INPUTS, max_part_size=limit)
    items = []
    for i, (_, value) in enumerate(form.multi_items()):
        if not hasattr(value, "read"):
            continue
        name = Path(value.filename or f"upload-{i}").name
        path = folder / f"{i}{Path(name).suffix.lower()}"  # the suffix tells the decoder nothing; PIL sniffs
        path.write_bytes(await value.read())
        items.append((str(path), name))
    return items


def create_app(path: str | Path, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_upload_mb: float = 20.0,
               device: str = "auto") -> Any:
    """The ASGI application serving the run folder or ONNX export ``path`` (loaded now)."""
    backend = load_backend(path, device)
    batcher = MicroBatcher(_run_batch(backend), max_batch=max_batch, max_wait_ms=max_wait_ms)
    limit = int(max_upload_mb * 1e6)

    @asynccontextmanager
    async def lifespan(_: Any):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="graftwork", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "task": backend.task, "modality": backend.modality}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return backend.info() | {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_upload_mb": max_upload_mb,
                                 "batches_run": batcher.batches}

    @app.post("/predict")
    async def predict(request: Request, top_k: int = 3) -> Any:
        try:
            return await _predict(request, top_k)
        except GraftworkError as e:
            return _error(400 if isinstance(e, _BadJson) else 415 if isinstance(e, _WrongBody) else 422, e)

    async def _predict(request: Request, top_k: int) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        takes_files = backend.modality in ("image", "audio")
        if takes_files != (kind == "multipart/form-data"):
            raise _WrongBody(f"this model takes {backend.modality}; the request is {kind or 'without a type'}.",
                             hint="upload files as multipart/form-data (field 'files')" if takes_files else
                             'send JSON {"inputs": ["a text", ...]} with Content-Type: application/json.')
        with tempfile.TemporaryDirectory(prefix="graftwork-serve-") as tmp:
            if takes_files:
                items = await _files(request, limit, Path(tmp))
            else:
                items = [(t, t) for t in _texts(await request.body())]
            if not items:
                raise DataError("nothing to predict: no inputs.", hint="send at least one " +
                                ("file (multipart field 'files')." if takes_files else 'text in "inputs".'))
            if len(items) > MAX_INPUTS:
                raise DataError(f"{len(items)} inputs in one request; the limit is {MAX_INPUTS}.",
                                hint="split them over several requests, or use `graftwork predict` for batch jobs.")
            results = await batcher.submit(items)
        if backend.task == "ner":
            return results
        bad = [Problem(name, r[1]) for (_, name), r in zip(items, results, strict=True) if r[0] == "error"]
        if bad:
            raise DataError(f"{len(bad)} input(s) could not be read:", problems=bad, hint="fix or remove these files.")
        import numpy as np

        probs = np.stack([r[1] for r in results])
        return top_predictions([name for _, name in items], probs, backend.labels, top_k)

    return BodyLimit(app, limit)


class _WrongBody(GraftworkError):
    """A request body of the wrong kind for the model (answered 415)."""


class _BadJson(GraftworkError):
    """A request body that does not parse as JSON (answered 400)."""


def app_from_env() -> Any:
    """The application for uvicorn's worker processes (``--workers N``): options from the environment."""
    options = json.loads(os.environ[_ENV])
    return create_app(options.pop("path"), **options)


def serve(path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, max_batch: int = 32,
          max_wait_ms: float = 5.0, max_upload_mb: float = 20.0, device: str = "auto") -> None:
    """Serve ``path`` (a run folder or an ONNX export) until interrupted."""
    import uvicorn

    if workers < 1 or max_batch < 1 or max_upload_mb <= 0 or max_wait_ms < 0:
        raise ConfigError("--workers and --max-batch must be at least 1, --max-upload-mb above 0 and "
                          f"--max-wait-ms at least 0. Got {workers}, {max_batch}, {max_upload_mb}, {max_wait_ms}.")
    options = {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_upload_mb": max_upload_mb, "device": device}
    if workers == 1:
        uvicorn.run(create_app(path, **options), host=host, port=port, log_level="warning")
        return
    load_backend(path, device)  # fail here, with the CLI's message, rather than in every worker
    os.environ[_ENV] = json.dumps({"path": str(Path(path).absolute()), **options})
    uvicorn.run("graftwork.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")
