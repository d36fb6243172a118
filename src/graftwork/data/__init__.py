"""Reading labelled data: image and audio folders, CSV/JSONL text; validation with precise error messages."""

from .audio import AudioDecodeError, Waveform, load_audio
from .dataset import DecodeError, Examples, Splits, stratified_split
from .files import load_raw, reads_files
from .images import ImageDecodeError, load_image
from .loader import load_data

__all__ = ["Examples", "Splits", "stratified_split", "DecodeError", "ImageDecodeError", "AudioDecodeError",
           "Waveform", "load_image", "load_audio", "load_raw", "reads_files", "load_data"]
