"""``graftwork fit`` (any task, or ``--resume``) and ``graftwork demo``."""

from __future__ import annotations

import argparse
from typing import Any

from ...console import Console
from ...errors import ConfigError
from ..io import print_json
from ..options import add_fit_options, fit_config_from_args


def cmd_fit(args: argparse.Namespace) -> int:
    from ...tasks import fit, resume

    console = Console(verbose=not args.quiet)
    if args.resume:
        model = resume(args.resume, console=console)
        args.out = args.resume
    else:
        if args.data is None or args.out is None:
            raise ConfigError("fit needs DATA and --out DIR (or --resume DIR to continue an interrupted run).",
                              hint="e.g. graftwork fit photos/ --out run1")
        model = fit(args.data, fit_config_from_args(args), out=args.out, force=args.force, console=console)
    if args.json:
        print_json({"out": args.out, **{k: v for k, v in model.metrics.items() if k != "history"}})
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ...demo.run import run_demo

    run_demo(out=args.out, force=args.force, quick=args.quick, console=Console(verbose=True))
    return 0


def add_parsers(sub: Any) -> None:
    fit = sub.add_parser("fit", help="train a model: classify images, texts or audio, tag entities (--task ner) or "
                         "fine-tune a language model (--task generate)",
                         description="Train a model: DATA is a folder with one sub-folder of images per class "
                                     "(or train/ val/ test/ folders of that form), or a CSV/JSONL file with "
                                     "text,label columns (or a folder with train.csv, val.csv, test.csv); with "
                                     "--task ner, CoNLL or JSONL tokens/tags files; with --task generate, JSONL "
                                     "or CSV of prompt/completion, messages or text. A setting the task does not "
                                     "read is an error.")
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

    demo = sub.add_parser("demo", help="offline demo on real data with real pretrained weights")
    demo.add_argument("--out", default="graftwork-demo", metavar="DIR", help="where to write the demo runs")
    demo.add_argument("--force", action="store_true",
                      help="replace an existing demo folder graftwork wrote, once the new demo is complete "
                           "(any other non-empty folder is always refused)")
    demo.add_argument("--quick", action="store_true", help="fewer images (about a minute)")
    demo.set_defaults(func=cmd_demo)
