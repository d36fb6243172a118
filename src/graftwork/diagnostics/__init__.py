"""Checks that say when transfer learning is failing and why; each returns :class:`Finding` objects."""

from .findings import SEVERITIES, Finding, worst

__all__ = ["SEVERITIES", "Finding", "worst"]
