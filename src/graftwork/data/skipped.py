"""What ``--skip-bad-files`` left out, as data: ``{"path": ..., "reason": ...}`` entries for ``--json``.

The loaders keep skipped inputs as ``"where: why"`` lines (:attr:`Splits.skipped`), which cannot be split back
into a path and a reason when the path itself holds ``": "``. :func:`read_noting_skips` gets the structured
:class:`~graftwork.errors.Problem` list instead, from the error the same loader raises when it is not told to
skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from ..errors import DataError, Problem

T = TypeVar("T")


def skipped_entries(problems: Iterable[Problem]) -> list[dict[str, str]]:
    """One ``{"path", "reason"}`` entry per problem (``path``: the file, or ``file:line`` for a row)."""
    return [{"path": p.where, "reason": p.what} for p in problems]


def read_noting_skips(read: Callable[[bool], T], *, skip: bool) -> tuple[T, list[Problem]]:
    """``read(skip)``, and the problems it skipped.

    ``read`` is a loader that raises a :class:`DataError` listing its problems when told not to skip (every
    graftwork loader does). Without ``skip`` that error reaches the caller; with it the data are read a second
    time, skipping, only when there was something to skip.
    """
    try:
        return read(False), []
    except DataError as e:
        if not skip or not e.problems:
            raise
        return read(True), list(e.problems)
