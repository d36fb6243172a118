"""Tagged sentences over the tiny BERT's vocabulary: fruit words are FRUIT entities (a plural such as "apples"
splits into two word pieces, "apple ##s"), vehicle words VEH entities, the rest O."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ..conftest import WORDS

FILLER = ["the", "a", "is", "i", "my", "hello", "world"]


def make_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(3, 7)):
            r = rng.random()
            if r < 0.3:
                tokens.append(rng.choice(WORDS["fruit"]) + rng.choice(["", "s"]))
                tags.append("B-FRUIT")
            elif r < 0.5:
                tokens.append(rng.choice(WORDS["vehicle"]))
                tags.append("B-VEH")
                if rng.random() < 0.3:
                    tokens.append(rng.choice(WORDS["vehicle"]))
                    tags.append("I-VEH")
            else:
                tokens.append(rng.choice(FILLER))
                tags.append("O")
        out.append((tokens, tags))
    return out


def write_conll(path: Path, sentences: list[tuple[list[str], list[str]]], *, columns: int = 2) -> Path:
    mid = " NN O" if columns == 4 else ""
    blocks = ["\n".join(f"{t}{mid} {g}" for t, g in zip(toks, tags, strict=True)) for toks, tags in sentences]
    path.write_text("-DOCSTART- -X- O O\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    path.write_text("".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in sentences), encoding="utf-8")
    return path


@pytest.fixture
def ner_folder(tmp_path) -> Path:
    root = tmp_path / "ner"
    root.mkdir()
    write_conll(root / "train.conll", make_sentences(60, seed=0))
    write_conll(root / "dev.conll", make_sentences(15, seed=1))
    write_jsonl(root / "test.jsonl", make_sentences(15, seed=2))
    return root


@pytest.fixture(autouse=True, scope="package")
def _short_head_stage():
    """The head stage's 100-epoch budget is for real data; a dozen epochs tell the tiny model's story."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("graftwork.ner.train.HEAD_EPOCHS", 12)
        yield
