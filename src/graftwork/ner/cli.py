"""What ``graftwork evaluate`` and ``graftwork predict`` print for an NER run.

Texts, entity types and split names are the user's: tables are built with :func:`~graftwork.console.table`
and :func:`~graftwork.console.add_row`, which show them literally.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.table import Table

from ..cli.render import entities_table, skipped_message
from ..console import Console, add_row, literal, table, terminal
from ..data.skipped import read_noting_skips, skipped_entries
from ..errors import DataError
from .data import load_ner_data
from .model import NerModel


def _print(renderable: Any) -> None:
    terminal(sys.stdout).print(literal(renderable) if isinstance(renderable, str) else renderable)


def metrics_table(result: dict[str, Any]) -> Table:
    split = {"all": "all of the data"}.get(result.get("split", ""), result.get("split", "data"))
    numbers = ("precision", "recall", "F1", "support")
    out = table(f"entities: {split}, {result['sentences']} sentences", ("type", *numbers), right=numbers)
    out.caption = literal(result["scoring"])
    for kind, row in result["per_type"].items():
        add_row(out, kind, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", row["support"])
    add_row(out, "overall (micro)", f"{result['precision']:.3f}", f"{result['recall']:.3f}", f"{result['f1']:.3f}",
            result["entities"], style="bold")
    return out


def evaluate_ner(args: Any) -> int:
    console = Console(verbose=not args.quiet)
    model = NerModel.load(args.run, device=args.device, console=console, weights=getattr(args, "weights", None))
    result = model.evaluate(args.data, skip_bad_files=args.skip_bad_files)
    if args.skip_bad_files:
        result |= _skipped(args.data)
        if result["skipped"]:
            console.warn(skipped_message(result["skipped"]))
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        _print(metrics_table(result))
        _print(f"macro F1 over types {result['macro_f1']:.3f}; token accuracy {result['token_accuracy']:.3f}")
    return 0


def _skipped(data: str) -> dict[str, Any]:
    """What --skip-bad-files left out of ``data`` (the lines of the sentences left out, with why)."""
    _, problems = read_noting_skips(lambda skip: load_ner_data(data, skip_bad=skip, require_train=False), skip=True)
    return {"skipped": skipped_entries(problems), "n_skipped": len(problems)}


def predict_ner(args: Any, texts: list[str]) -> int:
    if not texts:
        raise DataError("nothing to predict: no inputs.", hint="pass texts, '-' (stdin) or a CSV/JSONL file.")
    model = NerModel.load(args.run, device=args.device, console=Console(verbose=not args.quiet),
                          weights=getattr(args, "weights", None))
    preds = model.predict(texts)
    if args.json:
        sys.stdout.write(json.dumps(preds, indent=2) + "\n")
        return 0
    _print(entities_table(preds))
    return 0
