"""graftwork: transfer learning in one command.

>>> import graftwork
>>> model = graftwork.fit("photos/", out="run1")          # doctest: +SKIP
>>> model.predict(["a.jpg"])                              # doctest: +SKIP
>>> graftwork.load("run1").evaluate("test/")              # doctest: +SKIP
>>> graftwork.rank("photos/", ["torchvision:mobilenet_v2", "timm:efficientnet_b0"])  # doctest: +SKIP

The names are imported on first use (PEP 562), so that ``import graftwork`` alone does not load torch: the
ONNX runtime path (:mod:`graftwork.runtime`) and the CLI's ``predict`` on an export run without it.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import GraftworkError

if TYPE_CHECKING:
    from .api import backbones, fit, load, rank
    from .config import FitConfig
    from .model import TransferModel

__version__ = "0.1.0"
__all__ = ["fit", "load", "backbones", "rank", "FitConfig", "TransferModel", "GraftworkError", "__version__"]
_LAZY = {"fit": "api", "load": "api", "backbones": "api", "rank": "api", "FitConfig": "config",
         "TransferModel": "model"}


class _Package(types.ModuleType):
    """``graftwork.backbones`` is the API's listing function, though a subpackage has the same name: importing
    the subpackage (which the import system then sets as an attribute here) must not hide the function. The
    subpackage stays importable by its dotted name (``from graftwork.backbones import build_backbone``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graftwork' has no attribute {name!r}")
