"""``graftwork predict EXPORT_DIR ...`` for an ONNX export: the same inputs and output as for a run folder,
through the light runtime (nothing here imports torch)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..cli.render import entities_table, predictions_table, skipped_message
from ..console import terminal, visible
from ..errors import DataError
from .predictor import load_export, top_predictions


def predict_export(args: argparse.Namespace, read_texts: Callable[[list[str], str], list[str]],
                   read_files: Callable[..., list[str]]) -> int:
    """Predict with the export ``args.run``; ``read_texts``/``read_files`` are the CLI's input readers."""
    predictor = load_export(args.run)
    skip = bool(getattr(args, "skip_bad_files", False))
    if predictor.manifest["task"] == "ner":
        texts = read_texts(args.inputs, args.text_column)
        if not texts:
            raise DataError("nothing to predict: no inputs.", hint="pass texts, '-' (stdin) or a CSV/JSONL file.")
        preds = predictor.predict(texts)
        if args.json:
            _print_json(preds)
        else:
            terminal().print(entities_table(preds))
        return 0
    skipped: list[dict[str, str]] = []
    if predictor.modality == "text":
        inputs = read_texts(args.inputs, args.text_column)
    else:
        inputs = read_files(args.inputs, predictor.modality, skipped) if skip else \
            read_files(args.inputs, predictor.modality)
    if not inputs:
        raise DataError("nothing to predict: no inputs.", hint="pass image or audio paths, texts, '-' (stdin) or "
                        "a CSV.")
    probs, ok, problems = predictor.probabilities(inputs, skip_bad=skip)
    kept = [x for x, good in zip(inputs, ok, strict=True) if good]
    preds = top_predictions(kept, probs, predictor.classes, args.top_k)
    skipped += [{"path": p.where, "reason": p.what} for p in problems]
    if skipped:
        sys.stderr.write(visible(skipped_message(skipped)) + "\n")
    if args.json:
        _print_json({"predictions": preds, "skipped": skipped, "n_skipped": len(skipped)} if skip else preds)
    else:
        terminal().print(predictions_table(preds))
    return 0


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
