"""``graftwork`` command line: fit, evaluate, predict, backbones, rank, advise, report, export, serve, demo.

The subcommands live in :mod:`.commands` (one module per group); every command on a run or on data finds its
task through :mod:`graftwork.tasks`. Errors graftwork anticipates (bad data, bad settings, missing weights) are
printed as a short message with a hint and exit with status 2; ``--debug`` shows the traceback. JSON goes to
stdout, everything else to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..console import visible
from ..errors import GraftworkError
from .commands import data, fit, runs
from .io import EXIT_USER_ERROR, say

__all__ = ["EXIT_USER_ERROR", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its messages (usage errors quote what was typed) with control characters visible."""

    def _print_message(self, message: str, file: Any = None) -> None:
        super()._print_message(visible(message), file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graftwork", description="Transfer learning in one command.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fit.add_parsers(sub)
    runs.add_parsers(sub)
    data.add_parsers(sub)
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
        say(f"error: {e}")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as e:  # a bug: say so briefly; --debug shows where
        if args.debug:
            raise
        say(f"internal error: {type(e).__name__}: {e}\n"
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
