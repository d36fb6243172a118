"""graftwork: transfer learning in one command.

>>> import graftwork
>>> model = graftwork.fit("photos/", out="run1")          # doctest: +SKIP
>>> model.predict(["a.jpg"])                              # doctest: +SKIP
>>> graftwork.load("run1").evaluate("test/")              # doctest: +SKIP
"""

from .api import backbones, fit, load
from .config import FitConfig
from .errors import GraftworkError
from .model import TransferModel

__version__ = "0.1.0"
__all__ = ["fit", "load", "backbones", "FitConfig", "TransferModel", "GraftworkError", "__version__"]
