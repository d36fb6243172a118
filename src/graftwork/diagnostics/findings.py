"""Findings: what a check measured, how serious it is, and what to do about it, as data.

Every diagnostic returns :class:`Finding` objects rather than printing: the CLI renders them, metrics.json stores
them (``to_dict``), and the run report shows them. ``code`` is stable (tests and tools match on it); the message
and advice are for people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "high"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "high")


@dataclass(frozen=True)
class Finding:
    """One result of a check.

    ``code``: stable identifier (``"no-transfer"``, ``"domain-mismatch"``, ...); ``severity``: ``info`` (all is
    well, or context), ``warning`` (accuracy is probably being lost), ``high`` (the result should not be trusted
    as is); ``value``: the measured number the finding rests on, with ``metric`` naming it; ``message``: what
    was found, in plain language; ``advice``: what to do next; ``details``: any further numbers (JSON-able).
    """

    code: str
    severity: Severity
    message: str
    advice: str = ""
    value: float | None = None
    metric: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**{k: d[k] for k in ("code", "severity", "message", "advice", "value", "metric", "details")
                      if k in d})

    def __str__(self) -> str:
        number = f" ({self.metric} {self.value:.3g})" if self.value is not None and self.metric else ""
        return f"[{self.severity}] {self.code}: {self.message}{number}" + (f" -> {self.advice}" if self.advice else "")


def worst(findings: list[Finding]) -> Severity:
    """The most serious severity among ``findings`` (``info`` when there are none)."""
    return max((f.severity for f in findings), key=SEVERITIES.index, default="info")  # type: ignore[return-value]
