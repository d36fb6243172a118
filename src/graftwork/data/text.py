"""Labelled text in CSV or JSONL files, read strictly: every bad row is reported with its line number."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..errors import DataError, ProblemList
from .dataset import Examples

TEXT_EXTENSIONS = {".csv", ".jsonl"}


def allow_long_csv_fields() -> None:
    """Let a CSV field be as long as the platform allows (the csv module's default refuses fields over 128K
    characters: a long document is a valid example). The limit is a C long: 2**31-1 where that is 32 bits."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def read_utf8(path: Path) -> str:
    """A text file's content; a file that is not UTF-8 is an error naming the line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: the file is not valid UTF-8 (byte {data[e.start]:#04x} at offset {e.start}).",
            hint="re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`).",
        ) from None


def _rows_csv(path: Path, text: str) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    allow_long_csv_fields()
    buffer = io.StringIO(text, newline="")
    reader = csv.reader(buffer)
    columns: list[str] = []
    rows = []
    start, offset = 1, 0  # a quoted field may span lines: a row is named by the line it starts on
    try:
        columns = [c.strip() for c in next(reader, [])]
        start, offset = reader.line_num + 1, buffer.tell()
        last = (start, offset)
        for record in reader:
            # short rows lack the last columns and extra fields are dropped, as with csv.DictReader
            row: dict[str, str | None] = dict(zip(columns, record, strict=False))
            if any((v or "").strip() for v in row.values()):  # else a blank line
                rows.append((start, row))
            last = (start, offset)
            start, offset = reader.line_num + 1, buffer.tell()
        if rows and _ends_inside_quotes(text[last[1]:]):
            start = last[0]
            raise csv.Error("a quoted field is never closed: it runs to the end of the file")
    except csv.Error as e:
        raise DataError(f"{path}:{start}: cannot read this CSV row ({e}).",
                        hint='look on that row for a quote (") that is never closed.') from None
    return columns, rows


def _ends_inside_quotes(tail: str) -> bool:
    """Whether the last record (``tail``, from its first line to the end of the file) leaves a quote open.

    The lenient reader takes everything up to the end of the file into such a field, which, now that fields may
    be long, would silently turn the rest of the file into one text; the strict reader says so.
    """
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), strict=True):
            pass
    except csv.Error as e:
        return "unexpected end of data" in str(e)
    return False


def _rows_jsonl(path: Path, text: str, problems: ProblemList) -> tuple[list[str], list[tuple[int, dict]]]:
    rows: list[tuple[int, dict]] = []
    columns: list[str] = []
    for n, line in enumerate(text.split("\n"), start=1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.add(f"{path}:{n}", f"not valid JSON ({e.msg})")
            continue
        if not isinstance(obj, dict):
            problems.add(f"{path}:{n}", "each line must be a JSON object like {\"text\": ..., \"label\": ...}")
            continue
        columns += [k for k in obj if k not in columns]
        rows.append((n, obj))
    return columns, rows


def read_texts(path: Path, column: str = "text", skipped: ProblemList | None = None) -> list[str]:
    """The texts of one column of a CSV/JSONL file, for prediction (no labels needed); strict like training: a
    bad row is an error, unless ``skipped`` is given (``predict --skip-bad-files``), which collects it."""
    problems = skipped if skipped is not None else ProblemList()
    raw = read_utf8(path)
    columns, rows = _rows_jsonl(path, raw, problems) if path.suffix.lower() == ".jsonl" else _rows_csv(path, raw)
    if rows and column not in columns:
        raise DataError(f"{path}: no column {column!r}; found {columns}.", hint="pass --text-column NAME.")
    texts = []
    for line, row in rows:
        text = row.get(column)
        if text is None or not str(text).strip():
            problems.add(f"{path}:{line}", f"empty `{column}`")
        else:
            texts.append(str(text))
    if problems and skipped is None:
        raise DataError(f"{len(problems)} problem(s) in {path}:", problems=problems.items,
                        hint="fix or remove these rows.")
    return texts


def read_text_file(path: Path, problems: ProblemList, *, text_column: str = "text",
                   label_column: str = "label", group_column: str = "group") -> Examples:
    """Read one CSV/JSONL file of labelled texts. Bad rows are added to ``problems``, good ones returned."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty.", hint=f"it needs a header row `{text_column},{label_column}`.")
    raw = read_utf8(path)
    if path.suffix.lower() == ".jsonl":
        columns, rows = _rows_jsonl(path, raw, problems)
    else:
        columns, rows = _rows_csv(path, raw)
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing and rows:
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; found {columns}.",
            hint=f"the file needs columns `{text_column}` and `{label_column}` (optional `{group_column}`); "
                 "rename them, or pass --text-column/--label-column.",
        )
    items, labels, origins, groups = [], [], [], []
    has_groups = group_column in columns
    for line, row in rows:
        where = f"{path}:{line}"
        text, label = row.get(text_column), row.get(label_column)
        text = "" if text is None else str(text)
        label = "" if label is None else str(label).strip()
        if not text.strip():
            problems.add(where, f"empty `{text_column}`")
            continue
        if not label:
            problems.add(where, f"missing `{label_column}`")
            continue
        items.append(text)
        labels.append(label)
        origins.append(where)
        if has_groups:
            groups.append("" if row.get(group_column) is None else str(row.get(group_column)).strip())
    if not rows and not problems:
        raise DataError(f"{path}: no rows found.", hint=f"add rows under the header `{text_column},{label_column}`.")
    return Examples("text", items, labels, origins, groups if has_groups else None)
