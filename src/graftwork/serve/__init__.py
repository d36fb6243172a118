"""``graftwork serve RUN``: an HTTP server (FastAPI on uvicorn) for a run folder or an ONNX export.

* :mod:`.backends`: one interface over the PyTorch models and the ONNX runtime;
* :mod:`.batcher`: requests that arrive together are run as one batch (a small wait window);
* :mod:`.limits`: the request size limit (413);
* :mod:`.app`: the routes (``POST /predict``, ``GET /health``, ``GET /info``) and :func:`serve`.
"""
