"""Errors a user can act on.

Every error graftwork raises on purpose is a :class:`GraftworkError`: it says what was wrong, where (a file,
a line, a parameter), and what to do about it. The CLI prints these without a traceback (``--debug`` shows
one); anything else is a bug and is shown in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One thing wrong with the input, at one place."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class GraftworkError(Exception):
    """An error caused by the input or the environment, with a hint on how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None, problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = list(problems or [])

    def __str__(self) -> str:
        lines = [self.message]
        shown = self.problems[:20]
        lines += [f"  - {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more")
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)


class ConfigError(GraftworkError):
    """A parameter has a value graftwork cannot use."""


class DataError(GraftworkError):
    """The dataset cannot be read or is not usable for training."""


class WeightsError(GraftworkError):
    """Pretrained weights could not be found or loaded."""


class RunFolderError(GraftworkError):
    """A run folder is missing, incomplete, or would be overwritten."""


@dataclass
class ProblemList:
    """Collects problems so that all of them are reported at once, not just the first."""

    items: list[Problem] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.items.append(Problem(where, what))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)
