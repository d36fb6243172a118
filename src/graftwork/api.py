"""The Python API: the same names and options as the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backbones import CATALOGUE, resolve_offline
from .config import FitConfig
from .console import SILENT, Console
from .model import TransferModel
from .pipeline import run_fit


def fit(data: str | Path, out: str | Path | None = None, *, force: bool = False, verbose: bool = False,
        **settings: Any) -> TransferModel:
    """Train a model on ``data`` (an image folder, or a CSV/JSONL file of ``text,label``).

    ``settings`` are the fields of :class:`FitConfig` (``backbone``, ``strategy``, ``seed``, ...).
    With ``out``, the run folder is written there (an existing non-empty folder needs ``force=True``).
    """
    unknown = sorted(set(settings) - set(FitConfig.__dataclass_fields__))
    if unknown:
        import difflib

        from .errors import ConfigError

        hints = [f"{u} → {m[0]}" for u in unknown if (m := difflib.get_close_matches(u, FitConfig.__dataclass_fields__))]
        raise ConfigError(f"fit() got unknown setting(s): {', '.join(unknown)}.",
                          hint=("did you mean " + ", ".join(hints) + "? ") if hints else
                          f"valid settings: {', '.join(FitConfig.__dataclass_fields__)}.")
    cfg = FitConfig(**settings)
    return run_fit(data, cfg, out=out, force=force, console=Console() if verbose else SILENT)


def load(path: str | Path, *, device: str = "auto") -> TransferModel:
    """Load a run folder written by :func:`fit` (or ``graftwork fit``)."""
    return TransferModel.load(path, device=device)


def backbones(*, offline_only: bool = False) -> list[dict[str, Any]]:
    """Known backbones with their modality, feature size and whether their weights are on this machine."""
    rows = []
    for k in CATALOGUE:
        found = resolve_offline(k.name)
        if offline_only and found is None:
            continue
        rows.append({"name": k.name, "modality": k.modality, "feature_dim": k.feature_dim,
                     "params_m": k.params_m, "offline": found is not None,
                     "weights": found.describe() if found else None, "note": k.note})
    return rows
