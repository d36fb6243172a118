"""Reading the group of every example, for the per-group metrics of :mod:`.groups`.

Text data name a column of their CSV/JSONL files (:func:`read_text_groups`); an image or audio folder comes
with a ``path,group`` CSV manifest (:func:`read_image_groups`); :func:`read_groups` does either for every
split of a dataset. Every problem is a :class:`~graftwork.errors.DataError` that names the file and the lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..data.dataset import Splits
from ..data.files import reads_files
from ..data.text import _rows_csv, _rows_jsonl, read_text_file, read_utf8
from ..errors import DataError, ProblemList

_SHOWN = 5  # how many missing images an error names


def _text_groups(path: Path, column: str, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """(origins, groups) of the examples of one CSV/JSONL file, read as loading reads it."""
    if not path.is_file():
        raise DataError(f"{path}: no such file.", hint="check the path of your data.")
    examples = read_text_file(path, ProblemList(), text_column=text_column, label_column=label_column,
                              group_column=column)
    if examples.groups is None:
        raw = read_utf8(path)
        columns = (_rows_jsonl(path, raw, ProblemList())[0] if path.suffix.lower() == ".jsonl"
                   else _rows_csv(path, raw)[0])
        raise DataError(f"{path}: no group column {column!r}; the columns are {columns}.",
                        hint="pass --groups with one of these column names, or add the column to the file.")
    problems = ProblemList()
    for origin, group in zip(examples.origins, examples.groups, strict=True):
        if not group:
            problems.add(origin, f"empty group (column {column!r})")
    if problems:
        raise DataError(f"{len(problems)} row(s) of {path} have no group:", problems=problems.items,
                        hint="fill in the group of every row (use a value such as 'unknown' where it is not "
                             "known), or remove these rows.")
    return examples.origins, examples.groups


def read_text_groups(path: str | Path, column: str, *, text_column: str = "text",
                     label_column: str = "label") -> list[str]:
    """The group of each example of a CSV/JSONL data file, in the order :func:`~graftwork.data.load_data` reads them.

    Rows that loading drops (an empty text or label) are dropped here too, so the result lines up with the
    examples. Raises :class:`DataError` naming the file when ``column`` is missing (listing the columns that
    exist) or when rows have an empty group (naming the lines).
    """
    return _text_groups(Path(path).expanduser(), column, text_column, label_column)[1]


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def read_image_groups(manifest: str | Path, data_root: str | Path, images: Iterable[str]) -> dict[str, str]:
    """Map each image of the data to its group, from a CSV manifest with header ``path,group``.

    ``path`` is relative to ``data_root`` (the data folder) or absolute. ``images`` are all the image paths of
    the data (every split), as :func:`~graftwork.data.load_data` lists them; the result is keyed by them. Raises
    :class:`DataError` naming the manifest and its lines for: a header without ``path`` and ``group``, empty
    or conflicting rows, paths that are not images of the data, and images of the data missing from the manifest.
    """
    manifest = Path(manifest).expanduser()
    root = Path(data_root).expanduser()
    if not manifest.is_file():
        raise DataError(f"{manifest}: no such file.", hint="pass a CSV file with the header `path,group`.")
    if manifest.stat().st_size == 0:
        raise DataError(f"{manifest}: the file is empty.", hint="it needs a header row `path,group`.")
    columns, rows = _rows_csv(manifest, read_utf8(manifest))
    missing = [c for c in ("path", "group") if c not in columns]
    if missing:
        raise DataError(f"{manifest}:1: the header lacks column(s) {', '.join(repr(c) for c in missing)}; "
                        f"found {columns}.",
                        hint="the first line of the manifest must be `path,group` (path relative to "
                             f"{root} or absolute).")
    images = list(images)
    by_key = {_key(im): im for im in images}
    found: dict[str, str] = {}
    seen: dict[str, int] = {}
    problems = ProblemList()
    for line, row in rows:
        where = f"{manifest}:{line}"
        value = (row.get("path") or "").strip()
        group = (row.get("group") or "").strip()
        if not value:
            problems.add(where, "empty `path`")
            continue
        if not group:
            problems.add(where, f"empty `group` for {value}")
            continue
        key = _key(Path(value) if Path(value).expanduser().is_absolute() else root / value)
        if key not in by_key:
            problems.add(where, f"{value}: no such file (looked for {key})" if not Path(key).exists()
                         else f"{value} is not one of the images of the data in {root}")
            continue
        image = by_key[key]
        if image in found and found[image] != group:
            problems.add(where, f"{value} is already in group {found[image]!r} (line {seen[image]}); "
                                f"here it is {group!r}")
            continue
        found[image] = group
        seen.setdefault(image, line)
    absent = [im for im in images if im not in found]
    if absent:
        shown = ", ".join(str(Path(im).relative_to(root)) if Path(im).is_relative_to(root) else im
                          for im in absent[:_SHOWN])
        problems.add(str(manifest), f"{len(absent)} image(s) of the data have no row: {shown}"
                                    + (", ..." if len(absent) > _SHOWN else ""))
    if problems:
        raise DataError(f"{len(problems)} problem(s) in the group manifest {manifest}:", problems=problems.items,
                        hint=f"give every image of {root} one row `path,group`, with the path relative to "
                             f"{root} (e.g. cat/img001.jpg) or absolute.")
    return found


def read_groups(splits: Splits, groups: str | Path, *, text_column: str = "text",
                label_column: str = "label") -> dict[str, list[str]]:
    """The group of every example of each split (``{"train": [...], "test": [...]}``), in the splits' order.

    For text data ``groups`` is a column of the data files; for an image folder it is a ``path,group`` manifest
    (see :func:`read_image_groups`). Examples are matched by their origin (``file:line``, or the image path), so
    subsets of a split line up too.
    """
    present = {name: getattr(splits, name) for name in ("train", "val", "test") if getattr(splits, name) is not None}
    if reads_files(splits.modality):  # image or audio folder: a path,group manifest
        everything = [im for ex in present.values() for im in ex.items]
        mapping = read_image_groups(groups, splits.source, everything)
        return {name: [mapping[im] for im in ex.items] for name, ex in present.items()}
    by_origin: dict[str, str] = {}
    for file in dict.fromkeys(o.rsplit(":", 1)[0] for ex in present.values() for o in ex.origins):
        origins, found = _text_groups(Path(file), str(groups), text_column, label_column)
        by_origin.update(zip(origins, found, strict=True))
    return {name: [by_origin[o] for o in ex.origins] for name, ex in present.items()}
