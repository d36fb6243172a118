"""What ``predict`` reads: texts from arguments, stdin (``-``) and CSV/JSONL files; files and folders of files."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import DataError, Problem, ProblemList


def read_text_inputs(values: list[str], column: str, skipped: list[dict[str, str]] | None = None) -> list[str]:
    """Texts from arguments, stdin (``-``) and CSV/JSONL files; a bad row of a file is an error, or, when
    ``skipped`` is given (--skip-bad-files), noted there."""
    from ..data.skipped import skipped_entries

    texts: list[str] = []
    bad = ProblemList()
    for v in values:
        path = Path(v)
        if v == "-":
            texts += [line.rstrip("\n") for line in sys.stdin if line.strip()]
        elif path.suffix.lower() in (".csv", ".jsonl") and path.is_file():
            from ..data.text import read_texts

            texts += read_texts(path, column, bad if skipped is not None else None)
        else:
            texts.append(v)
    if skipped is not None:
        skipped += skipped_entries(bad.items)
    return texts


def read_file_inputs(values: list[str], modality: str, skipped: list[dict[str, str]] | None = None) -> list[str]:
    """The files named by ``values`` (folders: their ``modality`` files); a missing one is an error, or, when
    ``skipped`` is given (--skip-bad-files), noted there."""
    from ..data.files import file_modality

    paths: list[str] = []
    for v in values:
        p = Path(v)
        if p.is_dir():
            paths += [str(f) for f in sorted(p.rglob("*")) if f.is_file() and file_modality(f) == modality]
        elif not p.exists():
            if skipped is None:
                raise DataError(f"{v}: no such file.", hint=f"pass {modality} file paths (or a folder of them), "
                                "or --skip-bad-files to go on without the missing ones.")
            skipped.append({"path": v, "reason": "no such file"})
        else:
            paths.append(v)
    return paths


def nothing_to_predict(skipped: list[dict[str, str]]) -> DataError:
    if not skipped:
        return DataError("nothing to predict: no inputs.", hint="pass image paths, texts, '-' (stdin) or a CSV.")
    return DataError(f"nothing to predict: none of the {len(skipped)} input(s) could be read:",
                     problems=[Problem(s["path"], s["reason"]) for s in skipped], hint="fix or remove these inputs.")
