"""What ``graftwork evaluate`` and ``graftwork predict`` print for a classification run (image, text, audio);
:mod:`graftwork.ner.cli` and :mod:`graftwork.generate.cli` do the same for their tasks."""

from __future__ import annotations

import argparse

from ..console import Console
from .inputs import nothing_to_predict, read_file_inputs, read_text_inputs
from .io import out, print_json, render


def evaluate_classify(args: argparse.Namespace) -> int:
    from ..model import TransferModel

    console = Console(verbose=not args.quiet)
    model = TransferModel.load(args.run, device=args.device, console=console, weights=args.weights)
    result = model.evaluate(args.data, use_cache=not args.no_cache, skip_bad_files=args.skip_bad_files,
                            text_column=args.text_column, label_column=args.label_column, groups=args.groups)
    if result.get("skipped"):
        console.warn(render().skipped_message(result["skipped"]))
    if args.json:
        print_json(result)
        return 0
    for table in render().metrics_tables(result):
        out().print(table)
    if "groups" in result:
        out().print(render().groups_table(result["groups"]))
    for finding in result.get("findings", []):
        out().print(render().finding_line(finding))
    return 0


def predict_classify(args: argparse.Namespace) -> int:
    from ..data.files import reads_files
    from ..model import TransferModel

    console = Console(verbose=not args.quiet)
    model = TransferModel.load(args.run, device=args.device, console=console, weights=args.weights)
    skipped: list[dict[str, str]] = []
    noted = skipped if args.skip_bad_files else None
    inputs = (read_file_inputs(args.inputs, model.modality, noted) if reads_files(model.modality)
              else read_text_inputs(args.inputs, args.text_column, noted))
    if not inputs:
        raise nothing_to_predict(skipped)
    preds, unread = model.predict_with_skipped(inputs, top_k=args.top_k, skip_bad_files=args.skip_bad_files)
    skipped += unread
    if skipped:
        console.warn(render().skipped_message(skipped))
    if args.json:  # with --skip-bad-files an object that also says what was left out; else the bare list
        print_json({"predictions": preds, "skipped": skipped, "n_skipped": len(skipped)}
                   if args.skip_bad_files else preds)
    else:
        out().print(render().predictions_table(preds))
    return 0
