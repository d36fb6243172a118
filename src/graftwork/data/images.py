"""Image files: recognising them and decoding any image into RGB (class folders are scanned in :mod:`.files`)."""

from __future__ import annotations

import re
import warnings
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
        return Image.fromarray(_wide_to_8_bit(image), "L").convert("RGB")
    if mode in ("P", "L", "RGB") and "transparency" in image.info:  # palette or tRNS colour key
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_to_8_bit(image: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grey image as uint8, without a float64 copy of the frame.

    16-bit: ``value // 257`` in integer arithmetic (65535 -> 255). 32-bit integer: kept if within 0..255, else
    scaled so the maximum is 255. Float: the finite range stretched to 0..255 (NaN and infinities become 0).
    The scaling happens in place on one float32 copy.
    """
    arr = np.asarray(image)
    if image.mode.startswith("I;16"):
        return (arr // 257).astype(np.uint8)  # arr is uint16 (either byte order); // 257 stays uint16
    if image.mode == "I":
        top = int(arr.max(initial=0))
        if top <= 255:
            return np.clip(arr, 0, 255).astype(np.uint8)
        out = arr.astype(np.float32)
        out *= np.float32(255.0 / top)
    else:  # "F"
        out = np.array(arr, dtype=np.float32)  # a writable copy
        finite = np.isfinite(out)
        lo = float(out.min(initial=0.0, where=finite))
        hi = float(out.max(initial=1.0, where=finite)) if finite.any() else 1.0
        lo = min(lo, hi) if finite.any() else 0.0
        out[~finite] = lo
        out -= np.float32(lo)
        out *= np.float32(255.0 / ((hi - lo) or 1.0))
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _check_size(image: Image.Image) -> None:
    """Refuse an image larger than PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) before decoding.

    PIL itself refuses images above twice the limit and only warns between one and two times it; graftwork refuses
    both, so a huge image never slips through to fill the memory.
    """
    limit = Image.MAX_IMAGE_PIXELS
    w, h = image.size
    if limit is not None and w * h > limit:
        raise ImageDecodeError(_too_large(f"{w}x{h} = {w * h:,} pixels", limit))


def _too_large(pixels: str, limit: int) -> str:
    return (f"image too large to decode safely: {pixels}, above the limit of {limit:,} (a possible "
            "decompression bomb); shrink it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file")


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file (first frame of animations) into an RGB PIL image.

    Raises :class:`ImageDecodeError` with a readable reason for unreadable, truncated or non-image files, and for
    images too large to decode safely (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``), before decoding them.
    """
    try:
        with warnings.catch_warnings():  # the size is checked below; PIL's warning for it would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            _check_size(im)
            frame = next(iter(ImageSequence.Iterator(im))) if getattr(im, "n_frames", 1) > 1 else im
            frame.load()
            return _to_rgb(frame.copy())
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image PIL can read (corrupt, or another file type)") from None
    except FileNotFoundError:
        raise ImageDecodeError("file not found") from None
    except Image.DecompressionBombError as e:  # above twice the limit: PIL refuses it while opening
        size = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{int(size.group(1)):,} pixels" if size else "its size"
        raise ImageDecodeError(_too_large(pixels, Image.MAX_IMAGE_PIXELS or 0)) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"cannot decode: {e}") from None


def resized_centre_crop(image: Image.Image, resize: int, crop: int, resample: int) -> Image.Image:
    """torchvision's ``Resize(resize)`` (the shorter side, its rounding) then ``CenterCrop(crop)``, as one PIL
    resampling of the crop's source box: the same sampling positions and filter, but only the ``crop x crop``
    output pixels are computed (1.5-4x faster than resizing the whole image first; at most two steps of 255
    apart from the two-step result, a quarter of a step on average: PIL rounds to 8 bits between its horizontal
    and vertical passes, at other intermediate sizes). A crop larger than the resized image is padded with zeros,
    as ``CenterCrop`` pads. Every image path (training features, ``predict``, the torch-free runtime) uses it."""
    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_long = int(resize * long / short)
    new_w, new_h = (resize, new_long) if w <= h else (new_long, resize)
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    if crop > min(new_w, new_h):  # padding: the two steps, PIL's crop pads with zeros as CenterCrop does
        resized = image.resize((new_w, new_h), resample) if (new_w, new_h) != (w, h) else image
        return resized.crop((left, top, left + crop, top + crop))
    if (new_w, new_h) == (w, h):
        return image.crop((left, top, left + crop, top + crop))
    sx, sy = w / new_w, h / new_h
    return image.resize((crop, crop), resample, box=(left * sx, top * sy, (left + crop) * sx, (top + crop) * sy))
