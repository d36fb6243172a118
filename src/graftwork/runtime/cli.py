"""``graftwork predict EXPORT_DIR ...`` for an ONNX export: the same inputs and output as for a run folder,
through the light runtime (nothing here imports torch)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

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
        _print_json(predictor.predict(texts)) if args.json else _ner_table(predictor.predict(texts))
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
        sys.stderr.write(f"skipped {len(skipped)} unreadable input(s) (--skip-bad-files)\n")
    if args.json:
        _print_json({"predictions": preds, "skipped": skipped, "n_skipped": len(skipped)} if skip else preds)
    else:
        from ..cli.render import predictions_table

        _console().print(predictions_table(preds))
    return 0


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _ner_table(preds: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    out = Table()
    for col in ("input", "entity", "type", "words", "chars", "score"):
        out.add_column(col, justify="right" if col == "score" else "left")
    for p in preds:
        if not p["entities"]:
            out.add_row(Text(p["input"]), "(none)", "", "", "", "")
        for k, e in enumerate(p["entities"]):
            out.add_row(Text(p["input"] if k == 0 else ""), Text(e["text"]), Text(e["type"]),
                        f"{e['start']}:{e['end']}", f"{e['char_start']}:{e['char_end']}", f"{e['score']:.3f}")
    _console().print(out)
