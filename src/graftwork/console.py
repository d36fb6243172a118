"""Messages and progress bars for people: on stderr, progress bars only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class Console:
    """Where graftwork talks to the user. ``verbose=False`` silences everything but warnings."""

    def __init__(self, verbose: bool = True, stream: TextIO | None = None):
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        # Off a terminal rich assumes 80 columns, which folds tables into unreadable cells in logs.
        self._rich = RichConsole(file=self.stream, highlight=False, soft_wrap=True,
                                 width=None if self.interactive else 160)

    def info(self, message: str) -> None:
        if self.verbose:
            self._rich.print(message, markup=False)

    def warn(self, message: str) -> None:
        self._rich.print(f"warning: {message}", markup=False, style="yellow")

    def print_renderable(self, renderable: object) -> None:
        if self.verbose:
            self._rich.print(renderable)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """Yield ``advance(n)``; draws a bar only when talking to a terminal."""
        if not (self.verbose and self.interactive) or total <= 0:
            yield lambda n: None
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=self._rich, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)


SILENT = Console(verbose=False)
