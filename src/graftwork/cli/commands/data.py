"""The commands that look at data or backbones before any training: ``backbones``, ``rank``, ``advise``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...config import STRATEGIES, TASKS, FitConfig
from ...console import Console, literal
from ..io import out, print_json, render


def cmd_backbones(args: argparse.Namespace) -> int:
    from ...api import backbones

    rows = backbones(offline_only=args.offline)
    if args.modality:
        rows = [r for r in rows if r["modality"] == args.modality]
    if args.names:
        sys.stdout.write("".join(r["name"] + "\n" for r in rows))
    elif args.json:
        print_json(rows)
    else:
        out().print(render().backbones_table(rows))
        sys.stderr.write("Any torchvision:NAME, timm:NAME or hf:ID works too; these are the ones graftwork knows.\n")
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from ...diagnostics.rank import rank_backbones, ranking_table

    ranking = rank_backbones(args.data, args.backbones, image_size=args.image_size, device=args.device,
                             use_cache=not args.no_cache, batch_size=args.batch_size, seed=args.seed,
                             text_column=args.text_column, label_column=args.label_column,
                             console=Console(verbose=not args.quiet))
    if args.json:
        print_json(ranking.to_dict())
    else:
        out().print(ranking_table(ranking))
        for finding in ranking.findings:
            out().print(literal(finding))
    return 0


def cmd_advise(args: argparse.Namespace) -> int:
    """The plan of the data's task (``--task``, else told from the data: CoNLL or tokens/tags JSONL is NER)."""
    from ...tasks import detect_task, get_task

    task = args.task or detect_task(args.data)
    cfg = FitConfig(task=task, strategy=args.strategy, backbone=args.backbone, unfreeze=args.unfreeze,
                    class_weights=args.class_weights, val_fraction=args.val_fraction, text_column=args.text_column,
                    label_column=args.label_column, device=args.device)
    advice = get_task(task).advise(args.data, cfg, curve=not args.no_curve, console=Console(verbose=not args.json))
    if args.json:
        print_json(advice.data)
    else:
        for line in advice.lines:
            out().print(literal(line))
    return 0


def add_parsers(sub: Any) -> None:
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
    adv.add_argument("--task", default=None, choices=list(TASKS),
                     help="the task fit would train (default: ner for CoNLL files or JSONL of tokens/tags, else "
                          "classify)")
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
