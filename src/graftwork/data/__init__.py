"""Reading labelled data: image folders, CSV/JSONL text; validation with precise error messages."""

from .dataset import Examples, Splits, stratified_split
from .images import ImageDecodeError, load_image
from .loader import load_data

__all__ = ["Examples", "Splits", "stratified_split", "ImageDecodeError", "load_image", "load_data"]
