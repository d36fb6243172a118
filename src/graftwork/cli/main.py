"""``graftwork`` command line: fit, evaluate, predict, backbones, rank, advise, report, export, serve, demo.

Errors graftwork anticipates (bad data, bad settings, missing weights) are printed as a short message with a
hint and exit with status 2; ``--debug`` shows the traceback. JSON goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console as RichConsole

from ..config import STRATEGIES
from ..console import Console, literal, terminal, visible
from ..errors import ConfigError, DataError, GraftworkError, Problem, ProblemList
from .options import add_fit_options, fit_config_from_args

EXIT_USER_ERROR = 2
WEIGHTS_HELP = ("where the run's pretrained backbone weights are on this machine, when they are not found by the "
                "backbone's name (a run folder's recorded paths are never used; the weights are checked against "
                "the run's fingerprint)")


def _out() -> RichConsole:
    """Tables and lines for people on stdout; strings in them go in as :func:`~graftwork.console.literal`."""
    return terminal(sys.stdout)


def _say(message: str) -> None:
    """One line for people on stderr, control characters of file names and texts made visible."""
    sys.stderr.write(visible(message) + "\n")


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def cmd_fit(args: argparse.Namespace) -> int:
    from ..pipeline import run_fit

    console = Console(verbose=not args.quiet)
    if args.resume:
        from ..pipeline import resume_fit

        model = resume_fit(args.resume, console=console)
        args.out = args.resume
    else:
        if args.data is None or args.out is None:
            raise ConfigError("fit needs DATA and --out DIR (or --resume DIR to continue an interrupted run).",
                              hint="e.g. graftwork fit photos/ --out run1")
        model = run_fit(args.data, fit_config_from_args(args), out=args.out, force=args.force, console=console)
    if args.json:
        _print_json({"out": args.out, **{k: v for k, v in model.metrics.items() if k != "history"}})
    return 0


def run_task(path: str) -> str | None:
    """The task of the run folder at ``path`` (config.json's ``task``); the one lookup commands dispatch on."""
    from ..generate.runfolder import run_task as read_task

    return read_task(path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..model import TransferModel
    from ..ner import is_ner_run

    if run_task(args.run) == "generate":
        from ..generate.cli import evaluate_generate

        return evaluate_generate(args)
    if is_ner_run(args.run):
        from ..ner.cli import evaluate_ner

        return evaluate_ner(args)
    console = Console(verbose=not args.quiet)
    model = TransferModel.load(args.run, device=args.device, console=console, weights=args.weights)
    result = model.evaluate(args.data, use_cache=not args.no_cache, skip_bad_files=args.skip_bad_files,
                            text_column=args.text_column, label_column=args.label_column, groups=args.groups)
    if result.get("skipped"):
        console.warn(_render().skipped_message(result["skipped"]))
    if args.json:
        _print_json(result)
    else:
        for table in _render().metrics_tables(result):
            _out().print(table)
        if "groups" in result:
            _out().print(_render().groups_table(result["groups"]))
        for finding in result.get("findings", []):
            _out().print(_render().finding_line(finding))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    path = write_report(args.run, out=args.out, force=args.force)
    _say(f"wrote {path}")
    return 0


def _read_text_inputs(values: list[str], column: str, skipped: list[dict[str, str]] | None = None) -> list[str]:
    """Texts from arguments, stdin (``-``) and CSV/JSONL files; a bad row of a file is an error, or, when
    ``skipped`` is given (--skip-bad-files), noted there."""
    from ..data.skipped import skipped_entries

    texts: list[str] = []
    bad = ProblemList()
    for v in values:
        path = Path(v)
        if v == "-":
            texts += [line.rstrip("\n") for line in sys.stdin if line.strip()]
        elif path.suffix.lower() in (".csv", ".jsonl") and path.is_file():
            from ..data.text import read_texts

            texts += read_texts(path, column, bad if skipped is not None else None)
        else:
            texts.append(v)
    if skipped is not None:
        skipped += skipped_entries(bad.items)
    return texts


def _read_file_inputs(values: list[str], modality: str, skipped: list[dict[str, str]] | None = None
                      ) -> list[str]:
    """The files named by ``values`` (folders: their ``modality`` files); a missing one is an error, or, when
    ``skipped`` is given (--skip-bad-files), noted there."""
    from ..data.files import file_modality

    paths: list[str] = []
    for v in values:
        p = Path(v)
        if p.is_dir():
            paths += [str(f) for f in sorted(p.rglob("*")) if f.is_file() and file_modality(f) == modality]
        elif not p.exists():
            if skipped is None:
                raise DataError(f"{v}: no such file.", hint=f"pass {modality} file paths (or a folder of them), "
                                "or --skip-bad-files to go on without the missing ones.")
            skipped.append({"path": v, "reason": "no such file"})
        else:
            paths.append(v)
    return paths


def _nothing_to_predict(skipped: list[dict[str, str]]) -> DataError:
    if not skipped:
        return DataError("nothing to predict: no inputs.", hint="pass image paths, texts, '-' (stdin) or a CSV.")
    return DataError(f"nothing to predict: none of the {len(skipped)} input(s) could be read:",
                     problems=[Problem(s["path"], s["reason"]) for s in skipped], hint="fix or remove these inputs.")


def cmd_predict(args: argparse.Namespace) -> int:
    from ..runtime.manifest import is_onnx_export

    if is_onnx_export(args.run):  # the light runtime: no torch imported
        from ..runtime.cli import predict_export

        return predict_export(args, _read_text_inputs, _read_file_inputs)
    from ..model import TransferModel
    from ..ner import is_ner_run

    if run_task(args.run) == "generate":
        from ..generate.cli import predict_generate

        return predict_generate(args, _read_text_inputs(args.inputs, args.text_column))
    if is_ner_run(args.run):
        from ..ner.cli import predict_ner

        return predict_ner(args, _read_text_inputs(args.inputs, args.text_column))
    console = Console(verbose=not args.quiet)
    model = TransferModel.load(args.run, device=args.device, console=console, weights=args.weights)
    from ..data.files import reads_files

    skipped: list[dict[str, str]] = []
    inputs = (_read_file_inputs(args.inputs, model.modality, skipped if args.skip_bad_files else None)
              if reads_files(model.modality)
              else _read_text_inputs(args.inputs, args.text_column, skipped if args.skip_bad_files else None))
    if not inputs:
        raise _nothing_to_predict(skipped)
    preds, unread = model.predict_with_skipped(inputs, top_k=args.top_k, skip_bad_files=args.skip_bad_files)
    skipped += unread
    if skipped:
        console.warn(_render().skipped_message(skipped))
    if args.json:  # with --skip-bad-files an object that also says what was left out; else the bare list
        _print_json({"predictions": preds, "skipped": skipped, "n_skipped": len(skipped)}
                    if args.skip_bad_files else preds)
    else:
        _out().print(_render().predictions_table(preds))
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from ..api import backbones

    rows = backbones(offline_only=args.offline)
    if args.modality:
        rows = [r for r in rows if r["modality"] == args.modality]
    if args.names:
        sys.stdout.write("".join(r["name"] + "\n" for r in rows))
    elif args.json:
        _print_json(rows)
    else:
        _out().print(_render().backbones_table(rows))
        sys.stderr.write("Any torchvision:NAME, timm:NAME or hf:ID works too; these are the ones graftwork knows.\n")
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from ..diagnostics.rank import rank_backbones, ranking_table

    ranking = rank_backbones(args.data, args.backbones, image_size=args.image_size, device=args.device,
                             use_cache=not args.no_cache, batch_size=args.batch_size, seed=args.seed,
                             text_column=args.text_column, label_column=args.label_column,
                             console=Console(verbose=not args.quiet))
    if args.json:
        _print_json(ranking.to_dict())
    else:
        _out().print(ranking_table(ranking))
        for finding in ranking.findings:
            _out().print(literal(finding))
    return 0


def cmd_advise(args: argparse.Namespace) -> int:
    from ..data import load_data
    from ..strategies import make_plan

    splits = load_data(args.data, skip_bad_files=True, text_column=args.text_column,
                       label_column=args.label_column)
    train = splits.train
    if splits.val is None and args.val_fraction > 0:  # fit holds out val_fraction of each class
        from ..data import stratified_split

        train = train.subset(stratified_split(train.labels, args.val_fraction, seed=0)[0])
    plan = make_plan(args.strategy, train.class_counts(), unfreeze=args.unfreeze, class_weights=args.class_weights,
                     backbone_params=_catalogue_params(args.backbone), modality=splits.modality)
    curve, note = _advise_curve(args, splits.train, train.class_counts())
    if args.json:
        _print_json(plan.to_dict() | {"modality": splits.modality, "skipped": splits.skipped}
                    | ({"learning_curve": curve.to_dict()} if curve else {"learning_curve": None, "note": note}))
    else:
        _out().print(literal(plan.describe()))
        _out().print(literal("\n".join(curve.describe()) if curve else note))
        if splits.skipped:
            _out().print(literal(f"note: {len(splits.skipped)} bad input(s) would stop `fit` (see --skip-bad-files)"))
    return 0


def _advise_curve(args: argparse.Namespace, examples: Any, counts: dict[str, int]) -> tuple[Any, str]:
    """The learning curve for advise (None and why not, with --no-curve or when the backbone cannot load)."""
    if args.no_curve:
        return None, "learning curve: skipped (--no-curve)"
    from ..diagnostics.data_curve import curve_for_data

    try:
        return curve_for_data(examples, counts, args.backbone, device=args.device,
                              console=Console(verbose=not args.json)), ""
    except GraftworkError as e:
        return None, f"learning curve: not measured ({e})"


def _catalogue_params(name: str | None) -> int | None:
    """Parameters of a catalogue backbone, without building it (None when it is not in the catalogue)."""
    from ..backbones.registry import CATALOGUE

    known = {k.name: k for k in CATALOGUE}
    return int(known[name].params_m * 1e6) if name in known else None


def cmd_export(args: argparse.Namespace) -> int:
    """--format onnx: an ONNX export checked for parity; --format run (with --merge): a run folder with LoRA
    merged."""
    if run_task(args.run) == "generate":
        from ..generate.cli import export_generate

        return export_generate(args)
    if args.format == "onnx" or (args.format is None and not args.merge):
        if args.merge:
            raise ConfigError("--merge and --format onnx: an ONNX export always has LoRA adapters merged.",
                              hint="leave --merge out: graftwork export RUN --format onnx --out DIR")
        from ..export.onnx import describe, export_onnx

        manifest = export_onnx(args.run, args.out, data=args.data, verify=not args.no_verify, force=args.force,
                               console=Console(verbose=not args.quiet))
        _say(f"wrote {args.out}: {describe(manifest)}")
        if args.json:
            _print_json(manifest)
        return 0
    if args.format == "hf":
        from ..export.hf import export_hf

        manifest = export_hf(args.run, args.out, verify=not args.no_verify, force=args.force,
                             console=Console(verbose=not args.quiet))
        parity = manifest["parity"]
        _say(f"wrote {args.out}: a Hugging Face folder (transformers.pipeline('text-classification', model=...))"
             + (f"; parity on {parity['texts']} texts: max |dp| {parity['max_abs_diff']:.1e}, top-1 agreement "
                f"{parity['top1_agreement']:.0%}" if parity else ""))
        if args.json:
            _print_json(manifest)
        return 0
    from ..export.merge import merge_run

    if not args.merge:
        raise ConfigError("--format run writes a run folder with LoRA adapters merged: it needs --merge.",
                          hint="graftwork export RUN --merge --out NEW_RUN")
    path, merged = merge_run(args.run, args.out, force=args.force)  # loaded by its task's model class
    _say(f"merged {merged} adapted layers into the backbone; wrote {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve.app import serve

    serve(args.run, host=args.host, port=args.port, workers=args.workers, max_batch=args.max_batch,
          max_wait_ms=args.max_wait_ms, max_upload_mb=args.max_upload_mb, device=args.device)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    run_demo(out=args.out, force=args.force, quick=args.quick, console=Console(verbose=True))
    return 0


def _render():  # imported lazily: rich tables are only needed by commands that print them
    from . import render

    return render


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its messages (usage errors quote what was typed) with control characters visible."""

    def _print_message(self, message: str, file: Any = None) -> None:
        super()._print_message(visible(message), file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graftwork", description="Transfer learning in one command.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="train a model on a labelled image folder or CSV/JSONL of texts",
                         description="Train a model: DATA is a folder with one sub-folder of images per class "
                                     "(or train/ val/ test/ folders of that form), or a CSV/JSONL file with "
                                     "text,label columns (or a folder with train.csv, val.csv, test.csv).")
    fit.add_argument("data", metavar="DATA", nargs="?")
    fit.add_argument("--out", metavar="DIR", help="run folder to write")
    fit.add_argument("--resume", metavar="DIR", help="continue the interrupted `fit --out DIR` from its last "
                     "checkpoint, with its original settings")
    fit.add_argument("--force", action="store_true",
                     help="replace an existing --out run folder (graftwork's own only: any other non-empty folder, "
                          "the data, a folder inside or around it, home and the working folder are always "
                          "refused), or start over instead of resuming an interrupted fit")
    fit.add_argument("--json", action="store_true", help="print the final metrics as JSON on stdout")
    fit.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    add_fit_options(fit)
    fit.set_defaults(func=cmd_fit)

    ev = sub.add_parser("evaluate", help="metrics of a trained model on labelled data")
    ev.add_argument("run", metavar="RUN_DIR")
    ev.add_argument("data", metavar="DATA", help="labelled data (its test/ split if it has one)")
    ev.add_argument("--json", action="store_true", help="print JSON on stdout")
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ev.add_argument("--weights", metavar="PATH", help=WEIGHTS_HELP)
    ev.add_argument("--no-cache", action="store_true", help="do not use or fill the feature cache")
    ev.add_argument("--skip-bad-files", action="store_true", help="skip unreadable inputs instead of stopping")
    ev.add_argument("--text-column", default="text")
    ev.add_argument("--label-column", default="label")
    ev.add_argument("--groups", metavar="COLUMN_OR_MANIFEST",
                    help="per-group metrics and bias checks: for CSV/JSONL text, the column that holds each "
                         "example's group; for an image folder, a CSV manifest with columns path,group")
    ev.add_argument("--outputs", metavar="FILE", help="generation runs: write every prompt, reference and "
                    "generation to this new JSONL file")
    ev.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                    help="generation runs: the most tokens per answer (default: the run's)")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="(re)write RUN_DIR/report.html, the run's self-contained HTML report")
    rep.add_argument("run", metavar="RUN_DIR")
    rep.add_argument("--out", metavar="FILE", help="write the report here instead of RUN_DIR/report.html")
    rep.add_argument("--force", action="store_true",
                     help="replace an existing --out FILE if it is a report graftwork wrote (any other file is "
                          "always refused)")
    rep.set_defaults(func=cmd_report)

    pr = sub.add_parser("predict", help="labels for new images or texts")
    pr.add_argument("run", metavar="RUN_DIR")
    pr.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="image paths or folders; or texts, '-' for lines on stdin, or a CSV/JSONL file")
    pr.add_argument("--top-k", type=int, default=3, help="labels to show per input (default: 3)")
    pr.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                    help="generation runs: the most tokens per answer (default: the run's)")
    pr.add_argument("--temperature", type=float, default=None,
                    help="generation runs: sample with this temperature (default: greedy)")
    pr.add_argument("--top-p", type=float, default=None, help="generation runs: nucleus sampling mass (with "
                    "--temperature)")
    pr.add_argument("--json", action="store_true", help="print JSON on stdout")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pr.add_argument("--weights", metavar="PATH", help=WEIGHTS_HELP)
    pr.add_argument("--text-column", default="text", help="column of a CSV/JSONL input holding the text")
    pr.add_argument("--skip-bad-files", action="store_true",
                    help="leave out inputs that are missing or cannot be read (listed on stderr; with --json "
                         'the output is {"predictions": [...], "skipped": [...], "n_skipped": N})')
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(func=cmd_predict)

    bb = sub.add_parser("backbones", help="list known backbones and whether their weights are available offline")
    bb.add_argument("--offline", action="store_true", help="only those whose weights are on this machine")
    bb.add_argument("--names", action="store_true", help="bare names, one per line")
    bb.add_argument("--json", action="store_true", help="print JSON on stdout")
    bb.add_argument("--modality", choices=["image", "text", "audio"], help="only this modality")
    bb.set_defaults(func=cmd_backbones)

    rk = sub.add_parser("rank", help="rank candidate backbones for DATA on frozen features, before training",
                        description="Extract frozen (cached) features of DATA's training examples (train + "
                                    "val) with each backbone and rank them by LogME; the cross-validated "
                                    "linear-probe and kNN accuracies and the time of each step are shown "
                                    "too. A name prefixed random: (e.g. random:torchvision:mobilenet_v2) is "
                                    "that network with random weights, a control that pretrained backbones "
                                    "should beat.")
    rk.add_argument("data", metavar="DATA")
    rk.add_argument("--backbones", required=True, metavar="A,B,...", help="comma-separated backbone names")
    rk.add_argument("--image-size", type=int, default=None, metavar="N",
                    help="input size for image backbones")
    rk.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    rk.add_argument("--no-cache", action="store_true", help="do not use or fill the feature cache")
    rk.add_argument("--batch-size", type=int, default=32)
    rk.add_argument("--seed", type=int, default=0, help="seed of the folds and of random: controls")
    rk.add_argument("--text-column", default="text")
    rk.add_argument("--label-column", default="label")
    rk.add_argument("--json", action="store_true", help="print JSON on stdout")
    rk.add_argument("--quiet", action="store_true")
    rk.set_defaults(func=cmd_rank)

    adv = sub.add_parser("advise", help="the plan fit would follow on DATA, and why, without training")
    adv.add_argument("data", metavar="DATA")
    adv.add_argument("--strategy", default="auto", choices=list(STRATEGIES))
    adv.add_argument("--backbone", default=None, help="the backbone fit would use (its size can change the plan)")
    adv.add_argument("--unfreeze", type=int, default=None)
    adv.add_argument("--class-weights", default="auto", choices=["auto", "on", "off"])
    adv.add_argument("--val-fraction", type=float, default=0.2)
    adv.add_argument("--text-column", default="text")
    adv.add_argument("--label-column", default="label")
    adv.add_argument("--json", action="store_true", help="print JSON on stdout")
    adv.add_argument("--no-curve", action="store_true", help="skip the learning curve (it extracts the backbone's "
                     "features of the training data, cached for later fits: slow the first time on a large set)")
    adv.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    adv.set_defaults(func=cmd_advise)

    ex = sub.add_parser("export", help="write a run in another form: ONNX (checked for parity), or a run with "
                        "LoRA merged",
                        description="--format onnx (the default without --merge): model.onnx (backbone + head, "
                                    "probabilities out), the preprocessing as data and graftwork-onnx.json; the "
                                    "export is checked against the run on its own examples (--data, else the data "
                                    "it was trained on when still there, else synthetic inputs) and refused when "
                                    "they differ. `graftwork predict DIR` and `graftwork serve DIR` use it without "
                                    "PyTorch. --merge: a run folder with LoRA adapters merged into the backbone.")
    ex.add_argument("run", metavar="RUN_DIR")
    ex.add_argument("--format", choices=["onnx", "hf", "run"], default=None,
                    help="onnx (default); hf (text classifiers: a Hugging Face folder for transformers' "
                         "text-classification pipeline); or run (with --merge)")
    ex.add_argument("--merge", action="store_true",
                    help="merge a LoRA run's adapters into the backbone weights (same predictions, no adapter "
                         "overhead, loadable without PEFT)")
    ex.add_argument("--adapter", action="store_true",
                    help="generation runs: write the LoRA adapter as a PEFT folder (PeftModel.from_pretrained)")
    ex.add_argument("--out", required=True, metavar="DIR", help="the new folder")
    ex.add_argument("--data", metavar="DATA", help="labelled data whose examples (test split, else val, else all) "
                    "the parity check uses")
    ex.add_argument("--no-verify", action="store_true", help="skip the parity check")
    ex.add_argument("--json", action="store_true", help="print the ONNX manifest as JSON on stdout")
    ex.add_argument("--quiet", action="store_true")
    ex.add_argument("--force", action="store_true",
                    help="replace an existing --out folder of the same kind (graftwork's own only; any other "
                         "non-empty folder and the source run are always refused)")
    ex.set_defaults(func=cmd_export)

    sv = sub.add_parser("serve", help="an HTTP server for a run or an ONNX export: POST /predict, GET /health, "
                        "GET /info", description="Serves RUN_DIR (a run folder or an ONNX export) over HTTP with "
                        "FastAPI and uvicorn. POST /predict takes {\"inputs\": [texts]} as JSON, or image/audio "
                        "files as multipart uploads (field 'files'), and answers as `predict --json`. Requests "
                        "arriving together are batched. The server never writes to RUN_DIR.")
    sv.add_argument("run", metavar="RUN_DIR")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the model")
    sv.add_argument("--max-batch", type=int, default=32, help="most inputs run through the model at once")
    sv.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="how long a request waits for others to share its batch (default: 5)")
    sv.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body accepted (413 above)")
    sv.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="for run folders")
    sv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="offline demo on real data with real pretrained weights")
    demo.add_argument("--out", default="graftwork-demo", metavar="DIR", help="where to write the demo runs")
    demo.add_argument("--force", action="store_true",
                      help="replace an existing demo folder graftwork wrote, once the new demo is complete "
                           "(any other non-empty folder is always refused)")
    demo.add_argument("--quick", action="store_true", help="fewer images (about a minute)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return int(args.func(args))
    except GraftworkError as e:
        if args.debug:
            raise
        _say(f"error: {e}")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as e:  # a bug: say so briefly; --debug shows where
        if args.debug:
            raise
        _say(f"internal error: {type(e).__name__}: {e}\n"
             "This is a bug in graftwork; run again with --debug for the traceback and report it.")
        return 1


def _quiet_libraries() -> None:
    """transformers and huggingface_hub print load reports and progress bars meant for their own users."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")


if __name__ == "__main__":
    sys.exit(main())
