"""Image files: recognising them and decoding any image into RGB (class folders are scanned in :mod:`.files`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from .dataset import DecodeError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class ImageDecodeError(DecodeError):
    """An image file that cannot be decoded; the message says why."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    Transparent images are composited on white (not black, which would turn transparent backgrounds into a
    feature); 16-bit and float images are rescaled to 8 bits instead of being clipped.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "I" and arr.max(initial=0) > 255:
            arr = arr / max(arr.max(), 1.0) * 255.0
        elif mode == "F":
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr = (arr - lo) / ((hi - lo) or 1.0) * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("P", "L", "RGB") and "transparency" in image.info:  # palette or tRNS colour key
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file (first frame of animations) into an RGB PIL image.

    Raises :class:`ImageDecodeError` with a readable reason for unreadable, truncated or non-image files.
    """
    try:
        with Image.open(path) as im:
            frame = next(iter(ImageSequence.Iterator(im))) if getattr(im, "n_frames", 1) > 1 else im
            frame.load()
            return _to_rgb(frame.copy())
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image PIL can read (corrupt, or another file type)") from None
    except FileNotFoundError:
        raise ImageDecodeError("file not found") from None
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(f"image too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"cannot decode: {e}") from None
