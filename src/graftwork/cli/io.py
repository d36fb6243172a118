"""Where the command line writes: JSON and tables on stdout, one-line messages on stderr.

Strings from the user's files go in as :func:`~graftwork.console.literal` (tables) or through
:func:`~graftwork.console.visible` (lines), so control characters and markup in them are shown, not obeyed.
"""

from __future__ import annotations

import json
import sys
from types import ModuleType
from typing import Any

from rich.console import Console as RichConsole

from ..console import terminal, visible

EXIT_USER_ERROR = 2
WEIGHTS_HELP = ("where the run's pretrained backbone weights are on this machine, when they are not found by the "
                "backbone's name (a run folder's recorded paths are never used; the weights are checked against "
                "the run's fingerprint)")


def out() -> RichConsole:
    """Tables and lines for people on stdout; strings in them go in as :func:`~graftwork.console.literal`."""
    return terminal(sys.stdout)


def say(message: str) -> None:
    """One line for people on stderr, control characters of file names and texts made visible."""
    sys.stderr.write(visible(message) + "\n")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def render() -> ModuleType:
    """:mod:`.render`, imported on first use: rich tables are only needed by commands that print them."""
    from . import render as module

    return module
