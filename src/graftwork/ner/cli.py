"""What ``graftwork evaluate`` and ``graftwork predict`` print for an NER run."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console as RichConsole
from rich.table import Table
from rich.text import Text

from ..console import Console
from ..errors import DataError
from .model import NerModel


def _print(renderable: Any) -> None:
    RichConsole(file=sys.stdout, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160
                ).print(renderable)


def metrics_table(result: dict[str, Any]) -> Table:
    split = {"all": "all of the data"}.get(result.get("split", ""), result.get("split", "data"))
    table = Table(title=f"entities: {split}, {result['sentences']} sentences", caption=result["scoring"])
    for col in ("type", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for kind, row in result["per_type"].items():
        table.add_row(Text(kind), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                      str(row["support"]))
    table.add_row("overall (micro)", f"{result['precision']:.3f}", f"{result['recall']:.3f}", f"{result['f1']:.3f}",
                  str(result["entities"]), style="bold")
    return table


def evaluate_ner(args: Any) -> int:
    model = NerModel.load(args.run, device=args.device, console=Console(verbose=not args.quiet))
    result = model.evaluate(args.data, skip_bad_files=args.skip_bad_files)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        _print(metrics_table(result))
        _print(f"macro F1 over types {result['macro_f1']:.3f}; token accuracy {result['token_accuracy']:.3f}")
    return 0


def predict_ner(args: Any, texts: list[str]) -> int:
    if not texts:
        raise DataError("nothing to predict: no inputs.", hint="pass texts, '-' (stdin) or a CSV/JSONL file.")
    model = NerModel.load(args.run, device=args.device, console=Console(verbose=not args.quiet))
    preds = model.predict(texts)
    if args.json:
        sys.stdout.write(json.dumps(preds, indent=2) + "\n")
        return 0
    table = Table()
    for col in ("input", "entity", "type", "words", "chars", "score"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for p in preds:
        if not p["entities"]:
            table.add_row(Text(p["input"]), "(none)", "", "", "", "")
        for k, e in enumerate(p["entities"]):
            table.add_row(Text(p["input"] if k == 0 else ""), Text(e["text"]), Text(e["type"]), f"{e['start']}:{e['end']}",
                          f"{e['char_start']}:{e['char_end']}", f"{e['score']:.3f}")
    _print(table)
    return 0
