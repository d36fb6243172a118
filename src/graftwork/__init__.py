"""graftwork: transfer learning in one command.

>>> import graftwork
>>> model = graftwork.fit("photos/", out="run1")          # doctest: +SKIP
>>> model.predict(["a.jpg"])                              # doctest: +SKIP
>>> graftwork.load("run1").evaluate("test/")              # doctest: +SKIP
>>> graftwork.rank("photos/", ["torchvision:mobilenet_v2", "timm:efficientnet_b0"])  # doctest: +SKIP
"""

from .api import backbones, fit, load, rank
from .config import FitConfig
from .errors import GraftworkError
from .model import TransferModel

__version__ = "0.1.0"
__all__ = ["fit", "load", "backbones", "rank", "FitConfig", "TransferModel", "GraftworkError", "__version__"]
