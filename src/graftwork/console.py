"""Messages and progress bars for people: on stderr, progress bars only on a terminal.

Strings graftwork shows often come from the user: texts, class and group names, file names, backbone names.
They are shown as they are, never interpreted: :func:`literal` turns one into a rich ``Text`` (no markup, no
``:emoji:`` codes) and :func:`visible` writes control characters as escapes, so that a file name holding
``\\x1b[2J`` or ``\\r`` cannot clear, recolour or rewrite the terminal. Every printer here and in the CLI goes
through them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

# C0 controls but tab and newline, DEL, and C1 controls (U+0080-U+009F; U+009B is a one-byte escape sequence
# start on some terminals)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\r": "\\r", "\x1b": "\\x1b"}


def visible(text: object) -> str:
    """``text`` with its control characters written as visible escapes (``\\x1b``, ``\\r``, ``\\x07``, ...).

    Newlines and tabs are kept: messages use them. Everything else, emoji and right-to-left text included,
    is left as it is.
    """
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), str(text))


def literal(text: object, style: str = "") -> Text:
    """A string to show exactly as written: a rich ``Text`` of :func:`visible` ``text`` (``[bold]``, ``[/x]``
    and ``:smile:`` stay literal characters)."""
    return text if isinstance(text, Text) else Text(visible(text), style=style)


def table(title: object = None, columns: Sequence[object] = (), *, right: Sequence[object] = (),
          show_header: bool = True) -> Table:
    """A table whose title and column headers are literal text; columns named in ``right`` are right-aligned."""
    out = Table(title=None if title is None else literal(title), show_header=show_header)
    for col in columns:
        out.add_column(literal(col), justify="right" if col in right else "left", overflow="fold")
    return out


def add_row(out: Table, *cells: object, style: str | None = None) -> None:
    """Add a row of cells, each shown literally (numbers are formatted by the caller)."""
    out.add_row(*[literal(c) for c in cells], style=style)


def terminal(stream: TextIO | None = None) -> RichConsole:
    """A rich console on ``stream`` (stdout by default) for tables and lines people read.

    Off a terminal rich assumes 80 columns, which folds tables into unreadable cells in logs: 160 there.
    """
    stream = stream or sys.stdout
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    return RichConsole(file=stream, highlight=False, soft_wrap=False, emoji=False,
                       width=None if interactive else 160)


class Console:
    """Where graftwork talks to the user. ``verbose=False`` silences everything but warnings; in a run launched
    on several processes only rank 0 talks (the others would repeat every line)."""

    def __init__(self, verbose: bool = True, stream: TextIO | None = None):
        from .distributed import is_main_process

        self.muted = not is_main_process()
        self.verbose = verbose and not self.muted
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._rich = RichConsole(file=self.stream, highlight=False, soft_wrap=True, emoji=False,
                                 width=None if self.interactive else 160)

    def info(self, message: str) -> None:
        if self.verbose:
            self._rich.print(literal(message))

    def warn(self, message: str) -> None:
        if not self.muted:
            self._rich.print(literal(f"warning: {message}", style="yellow"))

    def print_renderable(self, renderable: object) -> None:
        """Print a rich renderable built by graftwork (user strings in it must already be :func:`literal`)."""
        if self.verbose:
            self._rich.print(renderable)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """Yield ``advance(n)``; draws a bar only when talking to a terminal."""
        if not (self.verbose and self.interactive) or total <= 0:
            yield lambda n: None
            return
        with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=self._rich, transient=True) as bar:
            task = bar.add_task(visible(description), total=total)
            yield lambda n: bar.advance(task, n)


SILENT = Console(verbose=False)
