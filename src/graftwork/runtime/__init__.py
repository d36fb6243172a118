"""Predictions from an ONNX export folder with the light install: onnxruntime, numpy, pillow, tokenizers,
soundfile (no torch, no transformers).

An export folder (``graftwork export RUN --format onnx --out DIR``) holds ``model.onnx`` (backbone + head, softmax
probabilities out), the preprocessing as data and a ``graftwork-onnx.json`` manifest; :func:`load_export` reads
it back as an :class:`OnnxClassifier` or an :class:`OnnxNer` with the same ``predict`` as the PyTorch models.

>>> from graftwork.runtime import load_export
>>> load_export("run1-onnx").predict(["a.jpg"])  # doctest: +SKIP
"""

from .manifest import MANIFEST, is_onnx_export, read_manifest
from .predictor import OnnxClassifier, load_export

__all__ = ["MANIFEST", "is_onnx_export", "read_manifest", "OnnxClassifier", "load_export"]
