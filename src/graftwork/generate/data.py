"""Reading and checking generation data: prompt/completion pairs, chat messages, or plain text.

Accepted inputs (each row becomes one :class:`GenExample`):

* JSONL or CSV with ``prompt`` and ``completion`` columns (instruction following, extraction, rewriting);
* JSONL with ``messages``: a list of ``{"role", "content"}`` with roles system/user/assistant; multi-turn
  conversations train on every assistant turn;
* JSONL or CSV with a ``text`` column (the ``text_column`` setting): continued pretraining on the user's own
  documents, every token a target;
* a folder of split files: ``train.jsonl|csv``, optionally ``val`` (or ``dev``/``validation``) and ``test``.

Every problem (a non-UTF-8 line, a broken JSONL line, a missing column, an empty completion, a malformed
message list) is collected with its ``file:line`` and reported at once; over-long examples are added when the
examples are tokenised (:mod:`.encode`), before anything is trained.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, Problem

ROLES = ("system", "user", "assistant")
SPLIT_NAMES = {"train": ("train",), "val": ("val", "dev", "validation", "valid"), "test": ("test",)}
SUFFIXES = (".jsonl", ".csv")


@dataclass
class GenExample:
    """One training or test example; ``origin`` is ``file:line`` for error messages and outputs."""

    origin: str
    kind: str  # "pair", "chat" or "text"
    prompt: str = ""
    completion: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    text: str = ""

    def chat(self) -> list[dict[str, str]]:
        """The example as chat messages (a pair is one user turn and one assistant turn)."""
        if self.kind == "chat":
            return self.messages
        return [{"role": "user", "content": self.prompt}, {"role": "assistant", "content": self.completion}]

    def context_and_reference(self) -> tuple[list[dict[str, str]], str]:
        """What the model is prompted with and the answer expected: for a conversation, everything before its
        last assistant turn and that turn."""
        msgs = self.chat()
        return msgs[:-1], msgs[-1]["content"]

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "chat":
            return {"messages": self.messages}
        return {"text": self.text} if self.kind == "text" else {"prompt": self.prompt, "completion": self.completion}


@dataclass
class GenSplits:
    """The examples of each split and every problem found while reading them."""

    train: list[GenExample]
    val: list[GenExample] | None = None
    test: list[GenExample] | None = None
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def kinds(self) -> set[str]:
        return {e.kind for part in (self.train, self.val or [], self.test or []) for e in part}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: len(part) for name, part in
                               (("train", self.train), ("val", self.val), ("test", self.test)) if part is not None}
        return out | {"kinds": sorted(self.kinds()), "sources": self.sources}


def _row_example(row: dict[str, Any], where: str, text_column: str, p: list[Problem]) -> GenExample | None:
    if "messages" in row:
        return _chat_example(row["messages"], where, p)
    if "prompt" in row or "completion" in row:
        prompt, completion = row.get("prompt"), row.get("completion")
        missing = [k for k, v in (("prompt", prompt), ("completion", completion)) if v is None]
        if missing:
            p.append(Problem(where, f"missing column {', '.join(map(repr, missing))} (prompt/completion rows need "
                                    "both)"))
            return None
        if not isinstance(prompt, str) or not isinstance(completion, str):
            p.append(Problem(where, "'prompt' and 'completion' must be strings"))
            return None
        if not completion.strip():
            p.append(Problem(where, "empty completion: nothing to learn from this example"))
            return None
        return GenExample(where, "pair", prompt=prompt, completion=completion)
    if text_column in row:
        text = row[text_column]
        if not isinstance(text, str) or not text.strip():
            p.append(Problem(where, f"empty or non-string '{text_column}'"))
            return None
        return GenExample(where, "text", text=text)
    p.append(Problem(where, f"missing column: expected 'prompt' and 'completion', 'messages', or '{text_column}'; "
                            f"found {sorted(row)}"))
    return None


def _chat_example(messages: Any, where: str, p: list[Problem]) -> GenExample | None:
    if not isinstance(messages, list) or not messages:
        p.append(Problem(where, "'messages' must be a non-empty list of {\"role\", \"content\"} objects"))
        return None
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            p.append(Problem(where, f"message {i}: expected {{\"role\": one of {', '.join(ROLES)}, \"content\": "
                                    f"a string}}; got {str(m)[:60]!r}"))
            return None
        if m["role"] == "assistant" and not m["content"].strip():
            p.append(Problem(where, f"message {i}: empty assistant turn (an empty completion)"))
            return None
        clean.append({"role": m["role"], "content": m["content"]})
    if clean[-1]["role"] != "assistant":
        p.append(Problem(where, "the conversation must end with an assistant turn (the completion to learn)"))
        return None
    return GenExample(where, "chat", messages=clean)


def _decoded_lines(path: Path, p: list[Problem]) -> list[tuple[int, str]]:
    lines = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            lines.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError as e:
            p.append(Problem(f"{path}:{number}", f"not UTF-8 (byte {e.start}); save the file as UTF-8"))
    return lines


def read_jsonl(path: Path, text_column: str, p: list[Problem]) -> list[GenExample]:
    out = []
    for number, line in _decoded_lines(path, p):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            p.append(Problem(where, f"broken JSON line ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(row, dict):
            p.append(Problem(where, "expected a JSON object per line"))
            continue
        if (ex := _row_example(row, where, text_column, p)) is not None:
            out.append(ex)
    return out


def read_csv(path: Path, text_column: str, p: list[Problem]) -> list[GenExample]:
    lines = _decoded_lines(path, p)
    if not lines:
        return []
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    rows = list(reader)
    header = rows[0]
    if not ({"prompt", "completion"} <= set(header) or text_column in header):
        p.append(Problem(f"{path}:{lines[0][0]}", f"missing column: the header needs 'prompt' and 'completion', "
                                                  f"or '{text_column}'; found {header}"))
        return []
    out = []
    for (number, _), values in zip(lines[1:], rows[1:], strict=False):  # a quoted newline shifts later numbers
        if not values:
            continue
        row = dict(zip(header, values, strict=False))
        if (ex := _row_example(row, f"{path}:{number}", text_column, p)) is not None:
            out.append(ex)
    return out


def read_file(path: Path, text_column: str, p: list[Problem]) -> list[GenExample]:
    if path.suffix.lower() == ".csv":
        return read_csv(path, text_column, p)
    return read_jsonl(path, text_column, p)


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            for suffix in SUFFIXES:
                if (folder / f"{name}{suffix}").is_file() and split not in found:
                    found[split] = folder / f"{name}{suffix}"
    return found


def load_generation_data(data: str | Path, *, text_column: str = "text") -> GenSplits:
    """Read ``data`` (a file or a folder of split files); problems are collected, not raised (see
    :func:`raise_problems`), so over-long examples found at tokenisation are reported with them."""
    path = Path(data).expanduser()
    p: list[Problem] = []
    if path.is_dir():
        files = _split_files(path)
        if "train" not in files:
            raise DataError(f"{path}: no train.jsonl or train.csv in the folder.",
                            hint="a folder of split files needs train.jsonl|csv (and optionally val, test).")
        parts = {name: read_file(f, text_column, p) for name, f in files.items()}
        return GenSplits(parts["train"], parts.get("val"), parts.get("test"), p,
                         {k: str(v) for k, v in files.items()})
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder.", hint="pass a JSONL/CSV file or a folder of split files.")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: expected a .jsonl or .csv file (got {path.suffix or 'no suffix'}).",
                        hint="prompt/completion or messages as JSONL, prompt,completion or text as CSV.")
    return GenSplits(read_file(path, text_column, p), problems=p, sources={"train": str(path)})


def raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise DataError(f"{len(problems)} problem(s) in the data; nothing was trained:", problems=problems,
                        hint="fix the lines named above (every problem is listed, not just the first).")


def load_examples(data: str | Path, *, text_column: str = "text") -> list[GenExample]:
    """The examples to evaluate on: a folder's test split (else all its files), or a file; problems raised."""
    splits = load_generation_data(data, text_column=text_column)
    raise_problems(splits.problems)
    if splits.test is not None:
        return splits.test
    return splits.train
