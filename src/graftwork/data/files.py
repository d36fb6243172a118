"""Example files of any modality: which modality a file is, scanning class folders, and loading one example.

Image and audio datasets share one layout (a sub-folder per class), so one scan serves both; the file
extensions decide the modality. Code that needs an example's raw form calls :func:`load_raw` instead of
testing the modality itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from ..errors import DataError, ProblemList
from .audio import AUDIO_EXTENSIONS
from .dataset import FILE_MODALITIES, Examples, Modality
from .images import IMAGE_EXTENSIONS, list_class_dirs

EXTENSIONS: dict[str, set[str]] = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}


def file_modality(path: Path) -> str | None:
    """``"image"``, ``"audio"``, or None for a file of neither kind (hidden files are neither)."""
    if path.name.startswith("."):
        return None
    suffix = path.suffix.lower()
    return next((m for m, exts in EXTENSIONS.items() if suffix in exts), None)


def reads_files(modality: str) -> bool:
    """Whether examples of ``modality`` are file paths (read from disk) rather than the example itself."""
    return modality in FILE_MODALITIES


def load_raw(modality: str, item: str) -> Any:
    """One example in the form a backbone's ``prepare`` takes: an RGB image, a :class:`~.audio.Waveform`, or
    the text itself. Unreadable files raise a :class:`~.dataset.DecodeError`."""
    if modality == "image":
        from .images import load_image

        return load_image(item)
    if modality == "audio":
        from .audio import load_audio

        return load_audio(item)
    return item


def all_extensions() -> str:
    return ", ".join(sorted(set().union(*EXTENSIONS.values())))


def _files_of(class_dir: Path) -> list[Path]:
    """Files of a class folder, nested ones included; hidden files and folders (.DS_Store, .thumbnails/) skipped."""
    return sorted(p for p in class_dir.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(class_dir).parts))


def scan_class_folders(root: Path, problems: ProblemList, *, ignored: list[str]) -> Examples:
    """Read ``root/<class>/<file>``: image or audio files (one modality per dataset)."""
    found: dict[str, list[tuple[Path, str]]] = {}
    empty: list[Path] = []
    for class_dir in list_class_dirs(root):
        files = _files_of(class_dir)
        usable = [(p, m) for p in files if (m := file_modality(p)) is not None]
        ignored += [str(p) for p in files if file_modality(p) is None]
        if not usable:
            empty.append(class_dir)
        for path, kind in usable:
            found.setdefault(kind, []).append((path, class_dir.name))
    if len(found) > 1:
        examples = "; ".join(f"{m}: {pairs[0][0]}" for m, pairs in sorted(found.items()))
        raise DataError(f"{root}: holds both {' and '.join(sorted(found))} files ({examples}); a dataset is one "
                        "modality.", hint="move the files of the other kind out of the class folders.")
    modality = cast(Modality, next(iter(found), "image"))
    for class_dir in empty:
        what = "images" if modality == "image" else f"{modality} files"
        problems.add(str(class_dir), f"class folder holds no {what} (looked for "
                     f"{', '.join(sorted(EXTENSIONS[modality]))})")
    items: list[str] = []
    labels: list[str] = []
    for path, label in found.get(modality, []):
        if path.stat().st_size == 0:
            problems.add(str(path), "empty file (0 bytes)")
            continue
        items.append(str(path))
        labels.append(label)
    return Examples(modality, items, labels, origins=list(items))
