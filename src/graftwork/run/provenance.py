"""Where a run keeps its resumable state, and the library versions it records: shared by every task's fit."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CLASSIFY_LIBRARIES = ("torch", "torchvision", "timm", "transformers", "safetensors", "scikit-learn")


def data_path(data: str | Path) -> Path:
    """The data's absolute path, as every fit records and reads it: a fit started with a relative path and
    resumed from its saved (absolute) path then names its examples the same way, so its data signature matches."""
    return Path(data).expanduser().absolute()


def partial_dir(out: str | Path) -> Path:
    """``.NAME.partial`` beside the run folder ``out``: an interrupted fit's checkpoint and settings."""
    path = Path(out).expanduser().absolute()
    return path.parent / f".{path.name}.partial"


def library_versions(libraries: Iterable[str] = CLASSIFY_LIBRARIES) -> dict[str, str]:
    """Python's, graftwork's and the installed ``libraries``' versions (a library not installed is left out)."""
    out = {"python": platform.python_version()}
    for dist in ("graftwork", *libraries):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out
