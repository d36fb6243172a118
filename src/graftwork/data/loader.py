"""Find out what a data path holds and read it into :class:`Splits`.

Layouts understood:

* a folder with one sub-folder of images, or of audio files, per class;
* a folder with ``train/`` (and optional ``val/``, ``test/``) sub-folders, each in that form;
* a ``.csv`` or ``.jsonl`` file with ``text,label`` (optional ``group``) columns;
* a folder holding ``train.csv`` (or ``.jsonl``) and optional ``val``/``test`` files.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError, ProblemList
from .dataset import Examples, Splits
from .files import all_extensions, file_modality, scan_class_folders
from .images import list_class_dirs
from .text import TEXT_EXTENSIONS, read_text_file

SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def _split_files(root: Path) -> dict[str, Path]:
    found = {}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            for ext in (".csv", ".jsonl"):
                if (root / f"{alias}{ext}").is_file():
                    found.setdefault(split, root / f"{alias}{ext}")
    return found


def _split_dirs(root: Path) -> dict[str, Path]:
    found = {}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            if (root / alias).is_dir():
                found.setdefault(split, root / alias)
    return found


def _finish(problems: ProblemList, skipped: list[str], skip_bad: bool, what: str) -> None:
    if not problems:
        return
    if skip_bad:
        skipped += [str(p) for p in problems.items]
        return
    raise DataError(
        f"{len(problems)} problem(s) in {what}; nothing was trained:",
        problems=problems.items,
        hint="fix or remove these inputs, or pass --skip-bad-files to skip them (they are listed in the run).",
    )


def load_data(path: str | Path, *, skip_bad_files: bool = False, text_column: str = "text",
              label_column: str = "label", require_classes: bool = True) -> Splits:
    """Read a dataset from ``path`` in any of the supported layouts."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such file or folder.", hint="check the path of your data.")
    problems = ProblemList()
    skipped: list[str] = []
    notes: list[str] = []
    splits: dict[str, Examples] = {}
    kw = {"text_column": text_column, "label_column": label_column}

    if root.is_file():
        if root.suffix.lower() not in TEXT_EXTENSIONS:
            raise DataError(f"{root}: a data file must be .csv or .jsonl; got '{root.suffix}'.",
                            hint="for images, pass the folder that holds one sub-folder per class.")
        splits["train"] = read_text_file(root, problems, **kw)
    elif files := _split_files(root):
        if "train" not in files:
            raise DataError(f"{root}: found {', '.join(p.name for p in files.values())} but no train.csv/.jsonl.",
                            hint="name the training file train.csv (or train.jsonl).")
        for split, file in files.items():
            splits[split] = read_text_file(file, problems, **kw)
    else:
        dirs = _split_dirs(root)
        if dirs and "train" not in dirs:
            raise DataError(f"{root}: has {', '.join(sorted(dirs))}/ but no train/ folder.",
                            hint="put the training images in train/<class>/.")
        ignored: list[str] = []
        targets = dirs if dirs else {"train": root}
        for split, folder in targets.items():
            if not list_class_dirs(folder):
                loose = [m for p in folder.iterdir() if p.is_file() and (m := file_modality(p))]
                kind = "images" if not loose or loose[0] == "image" else f"{loose[0]} files"
                raise DataError(
                    f"{folder}: no class sub-folders found" + (f" ({len(loose)} loose {kind})." if loose else "."),
                    hint=f"arrange images as {folder}/<class name>/<image> (audio clips likewise; extensions: "
                         f"{all_extensions()}), or pass a .csv/.jsonl file for text.")
            splits[split] = scan_class_folders(folder, problems, ignored=ignored)
        kinds = {ex.modality for ex in splits.values() if len(ex)}
        if len(kinds) > 1:
            raise DataError(f"{root}: the splits hold different kinds of files "
                            f"({', '.join(f'{s}: {ex.modality}' for s, ex in splits.items())}).",
                            hint="every split of a dataset must hold the same modality.")
        if ignored:
            kind = next(iter(kinds), "image")
            notes.append(f"ignored {len(ignored)} file(s) that are not {kind} files, e.g. {ignored[0]}")

    _finish(problems, skipped, skip_bad_files, str(root))
    out = Splits(source=str(root), train=splits["train"], val=splits.get("val"), test=splits.get("test"),
                 skipped=skipped, notes=notes)
    if require_classes:
        check_classes(out)
    return out


def check_classes(splits: Splits) -> None:
    """A classifier needs at least two classes, and val/test may only hold classes seen in training."""
    if len(splits.train) == 0:
        raise DataError(f"{splits.source}: no usable training examples.", hint="check the data path and layout.")
    classes = splits.classes
    if len(classes) < 2:
        raise DataError(
            f"{splits.source}: only one class ({classes[0]!r}) in the training data; a classifier needs two or more.",
            hint="add examples of at least one other class.")
    for name in ("val", "test"):
        split = getattr(splits, name)
        if split is None:
            continue
        unknown = sorted(set(split.labels) - set(classes))
        if unknown:
            raise DataError(f"{splits.source}: the {name} split has class(es) not in train: {unknown}.",
                            hint="every class must have training examples; add them or remove these.")
