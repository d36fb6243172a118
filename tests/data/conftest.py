"""Builders for tiny image folders and text files, written into each test's tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

COLOUR = (200, 80, 40)


def save_image(path: Path, colour: tuple[int, int, int] = COLOUR, size: int = 8) -> Path:
    """A small solid-colour RGB image, in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


def build_class_folders(root: Path, classes: dict[str, int] | None = None, ext: str = "png") -> Path:
    """``root/<class>/<class>_<i>.<ext>`` for each class, with the given number of images."""
    for name, n in (classes or {"cat": 3, "dog": 3}).items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            save_image(root / name / f"{name}_{i}.{ext}")
    return root


def write_file(path: Path, content: str | bytes) -> Path:
    """Write exactly these bytes (str is encoded as UTF-8, newlines left as written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.fixture
def image_file() -> Callable[..., Path]:
    return save_image


@pytest.fixture
def class_folders() -> Callable[..., Path]:
    return build_class_folders


@pytest.fixture
def text_file() -> Callable[[Path, str | bytes], Path]:
    return write_file
