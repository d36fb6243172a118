"""Token-tagged sentences for NER: CoNLL-style or JSONL files, read strictly, tags checked as BIO.

Formats (chosen by the file's suffix):

* CoNLL (``.conll``, ``.txt``, ``.bio``, ``.iob``, ``.iob2``, ``.tsv``): one token per line, the token in the
  first column and its tag in the last (``token tag``, or the 4-column CoNLL-2003 form ``token POS chunk tag``),
  a blank line between sentences; ``-DOCSTART-`` lines are ignored. Every line of a file must have the same
  number of columns, so a token that holds a space is caught instead of shifting the tag.
* JSONL (``.jsonl``): one sentence per line, ``{"tokens": [...], "tags": [...]}`` of equal length.

Tags are ``O``, ``B-TYPE`` or ``I-TYPE``. IOB2 is expected: every entity starts with ``B-``. A file written in
IOB1 (an entity starts with ``I-`` and ``B-`` only separates two adjacent entities of one type) is recognised
as a whole and converted to IOB2, with a note. A file that mixes the two (``B-`` starting an entity after ``O``
somewhere, an ``I-X`` after ``O`` or another type elsewhere) is an annotation error, reported with file:line.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..data.text import read_utf8
from ..errors import DataError, ProblemList

CONLL_EXTENSIONS = {".conll", ".txt", ".bio", ".iob", ".iob2", ".tsv"}
NER_EXTENSIONS = CONLL_EXTENSIONS | {".jsonl"}
_SPLIT_ALIASES = {"train": ("train",), "val": ("val", "valid", "validation", "dev"), "test": ("test",)}


@dataclass
class Sentence:
    """One tagged sentence; ``lines[i]`` is the line of token ``i`` (for CoNLL; the sentence's line for JSONL)."""

    tokens: list[str]
    tags: list[str]
    file: str
    lines: list[int]

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.lines[0]}"


@dataclass
class NerSplits:
    """The sentences of each split, and what was noticed while reading them."""

    source: str
    train: list[Sentence]
    val: list[Sentence] | None = None
    test: list[Sentence] | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def entity_types(self) -> list[str]:
        return entity_types(self.train)

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source, "modality": "text", "task": "ner",
                                  "entity_types": self.entity_types}
        for name in ("train", "val", "test"):
            split = getattr(self, name)
            if split is not None:
                out[name] = {"sentences": len(split), "tokens": sum(len(s.tokens) for s in split),
                             "entities": mention_counts(split)}
        out["skipped"] = list(self.skipped)
        return out


def entity_types(sentences: list[Sentence]) -> list[str]:
    return sorted({t[2:] for s in sentences for t in s.tags if t != "O"})


def tag_list(types: list[str]) -> list[str]:
    """The model's output tags: O, then B-/I- of every entity type (I- too when training only saw B-)."""
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def mention_counts(sentences: list[Sentence]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in sentences:
        for t in s.tags:
            if t.startswith("B-"):
                counts[t[2:]] = counts.get(t[2:], 0) + 1
    return dict(sorted(counts.items()))


def _tag_problem(tag: str) -> str | None:
    if tag == "O":
        return None
    prefix, sep, kind = tag.partition("-")
    if sep and prefix in ("B", "I") and kind:
        return None
    return f"tag {tag!r} is not O, B-TYPE or I-TYPE (BIO/IOB2 tags expected)"


def _orphans(tags: list[str]) -> tuple[list[int], list[int]]:
    """Positions of ``I-X`` that begin an entity (after O, another type, or at the start: IOB1 style), and of
    ``B-X`` that begin one after O or another type (IOB2 style)."""
    orphan_i, fresh_b = [], []
    prev = "O"
    for i, tag in enumerate(tags):
        same = prev != "O" and prev[2:] == tag[2:]
        if tag.startswith("I-") and not same:
            orphan_i.append(i)
        elif tag.startswith("B-") and not same:
            fresh_b.append(i)
        prev = tag
    return orphan_i, fresh_b


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 to IOB2: an ``I-X`` that begins an entity becomes ``B-X`` (the conlleval reading)."""
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def check_scheme(sentences: list[Sentence], path: Path, problems: ProblemList, notes: list[str]) -> list[Sentence]:
    """IOB2 as is; a consistent IOB1 file converted (noted); a mix reported line by line."""
    orphan_at = [(s, i) for s in sentences for i in _orphans(s.tags)[0]]
    if not orphan_at:
        return sentences
    fresh_b = [(s, i) for s in sentences for i in _orphans(s.tags)[1]]
    if not fresh_b:
        notes.append(f"{path}: tags are IOB1 (entities start with I-); converted {len(orphan_at)} entity start(s) "
                     "to B- (IOB2)")
        return [Sentence(s.tokens, to_iob2(s.tags), s.file, s.lines) for s in sentences]
    for s, i in orphan_at:
        prev = s.tags[i - 1] if i else "the start of the sentence"
        problems.add(f"{s.file}:{s.lines[i]}", f"{s.tags[i]!r} follows {prev!r}: not valid BIO (an entity must "
                     f"start with B-); the file also starts entities with B- elsewhere (e.g. line "
                     f"{fresh_b[0][0].lines[fresh_b[0][1]]}), so it is neither consistent IOB2 nor IOB1")
    return [s for s in sentences if not _orphans(s.tags)[0]]


def read_conll(path: Path, problems: ProblemList) -> list[Sentence]:
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    columns: tuple[int, int] | None = None  # (count, first line with it)
    bad = False

    def flush() -> None:
        nonlocal bad
        if tokens and not bad:
            sentences.append(Sentence(list(tokens), list(tags), str(path), list(lines)))
        tokens.clear()
        tags.clear()
        lines.clear()
        bad = False

    for n, line in enumerate(read_utf8(path).split("\n"), start=1):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        where = f"{path}:{n}"
        if len(parts) < 2:
            problems.add(where, f"expected `token tag` (or `token POS chunk tag`); got {line.strip()!r}")
            bad = True
            continue
        if columns is None:
            columns = (len(parts), n)
        elif len(parts) != columns[0]:
            problems.add(where, f"{len(parts)} columns, but line {columns[1]} has {columns[0]}: every line needs "
                         "the same columns (a token cannot contain spaces)")
            bad = True
            continue
        if why := _tag_problem(parts[-1]):
            problems.add(where, why)
            bad = True
            continue
        tokens.append(parts[0])
        tags.append(parts[-1])
        lines.append(n)
    flush()
    return sentences


def read_jsonl(path: Path, problems: ProblemList) -> list[Sentence]:
    sentences = []
    for n, line in enumerate(read_utf8(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.add(where, f"not valid JSON ({e.msg})")
            continue
        tokens, tags = (obj.get("tokens"), obj.get("tags")) if isinstance(obj, dict) else (None, None)
        if not (isinstance(tokens, list) and isinstance(tags, list)):
            problems.add(where, 'each line must be a JSON object like {"tokens": ["Ann", "lives"], '
                         '"tags": ["B-PER", "O"]}')
            continue
        if len(tokens) != len(tags) or not tokens:
            problems.add(where, f"{len(tokens)} tokens but {len(tags)} tags (they must pair up, at least one)")
            continue
        if not all(isinstance(t, str) and t.strip() for t in tokens):
            problems.add(where, "every token must be a non-empty string")
            continue
        why = next((w for t in tags if (w := _tag_problem(str(t)))), None)
        if why:
            problems.add(where, why)
            continue
        sentences.append(Sentence([str(t) for t in tokens], [str(t) for t in tags], str(path), [n] * len(tokens)))
    return sentences


def read_ner_file(path: Path, problems: ProblemList, notes: list[str]) -> list[Sentence]:
    """The sentences of one file; bad lines go to ``problems`` (their sentence is dropped)."""
    if path.suffix.lower() not in NER_EXTENSIONS:
        raise DataError(f"{path}: an NER file must be CoNLL ({', '.join(sorted(CONLL_EXTENSIONS))}) or .jsonl; "
                        f"got '{path.suffix}'.", hint="rename the file, or convert it to one of these forms.")
    read = read_jsonl if path.suffix.lower() == ".jsonl" else read_conll
    sentences = check_scheme(read(path, problems), path, problems, notes)
    if not sentences and not problems:
        raise DataError(f"{path}: no sentences found.", hint="one `token tag` per line, a blank line between "
                        "sentences (or JSONL with tokens and tags).")
    return sentences


def _split_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            for ext in sorted(NER_EXTENSIONS):
                if (root / f"{alias}{ext}").is_file():
                    found.setdefault(split, root / f"{alias}{ext}")
    return found


def load_ner_data(path: str | Path, *, skip_bad: bool = False, require_train: bool = True) -> NerSplits:
    """Read a file, or a folder of train/val(dev)/test files; check tags and that val/test types are known."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such file or folder.", hint="check the path of your data.")
    problems, notes = ProblemList(), list[str]()
    if root.is_file():
        files = {"train": root}
    else:
        files = _split_files(root)
        if "train" not in files and (require_train or not files):
            raise DataError(f"{root}: no train file (train.conll, train.txt, train.jsonl, ...).",
                            hint="name the training file train.<ext>, with val/dev and test files beside it.")
    splits = {name: read_ner_file(file, problems, notes) for name, file in files.items()}
    types = set(entity_types(splits.get("train", [])))
    for name in ("val", "test"):
        for s in splits.get(name, []) if "train" in splits else []:
            for tag, n in zip(s.tags, s.lines, strict=True):
                if tag != "O" and tag[2:] not in types:
                    problems.add(f"{s.file}:{n}", f"entity type {tag[2:]!r} ({tag}) does not occur in the training "
                                 f"data (types there: {', '.join(sorted(types)) or 'none'})")
    skipped: list[str] = []
    if problems:
        if not skip_bad:
            raise DataError(f"{len(problems)} problem(s) in {root}; nothing was done:", problems=problems.items,
                            hint="fix these lines, or pass --skip-bad-files to leave their sentences out.")
        skipped = [str(p) for p in problems.items]
        bad = {p.where for p in problems.items}
        splits = {k: [s for s in v if not bad & {f"{s.file}:{n}" for n in s.lines}] for k, v in splits.items()}
    first = next(iter(splits))
    out = NerSplits(str(root), splits.get("train", splits[first]), splits.get("val"), splits.get("test"),
                    notes, skipped)
    if require_train and not out.entity_types:
        raise DataError(f"{root}: the training data has no entities (every tag is O).",
                        hint="tag the entities as B-TYPE / I-TYPE.")
    return out


def hold_out(sentences: list[Sentence], fraction: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    """A random ``fraction`` of the sentences (at least one, never all) held out for validation."""
    if fraction <= 0 or len(sentences) < 2:
        return sentences, []
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    k = min(max(1, round(fraction * len(sentences))), len(sentences) - 1)
    held = set(order[:k])
    return ([s for i, s in enumerate(sentences) if i not in held], [s for i, s in enumerate(sentences) if i in held])
