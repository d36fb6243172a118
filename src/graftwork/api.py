"""The Python API: the same names and options as the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backbones import CATALOGUE, resolve_offline
from .config import FitConfig
from .console import SILENT, Console
from .tasks import fit as fit_task
from .tasks import task_of_run

if TYPE_CHECKING:
    from .diagnostics.rank import Ranking


def fit(data: str | Path, out: str | Path | None = None, *, force: bool = False, verbose: bool = False,
        **settings: Any) -> Any:
    """Train a model on ``data`` (an image or audio folder, or a CSV/JSONL file of ``text,label``; with
    ``task="ner"`` tagged sentences, with ``task="generate"`` prompts and completions).

    ``settings`` are the fields of :class:`FitConfig` (``backbone``, ``task``, ``strategy``, ``seed``, ...); one
    the task does not read is an error. With ``out``, the run folder is written there (an existing non-empty
    folder needs ``force=True``). Returns the task's model (:class:`TransferModel` for classification).
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
    return fit_task(data, cfg, out=out, force=force, console=Console() if verbose else SILENT)


def load(path: str | Path, *, device: str = "auto", weights: str | None = None,
         cache_dir: str | Path | None = None) -> Any:
    """Load a run folder written by :func:`fit` (or ``graftwork fit``) as its task's model: an NER run as a
    :class:`graftwork.ner.NerModel`, a generation run as a :class:`graftwork.generate.GenerationModel`.

    Everything the folder says is checked before use (weight-file fingerprints, config values). Locations come
    from this machine, never from the folder: ``weights``, the pretrained weights' file or folder when the lookup
    by backbone name does not find them; ``cache_dir``, the feature cache (default ``$GRAFTWORK_CACHE``)."""
    return task_of_run(path).load(path, device=device, weights=weights, cache_dir=cache_dir)


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


def rank(data: str | Path, backbones: list[str] | str, *, verbose: bool = False, **settings: Any) -> Ranking:
    """Rank candidate ``backbones`` for ``data`` by LogME on frozen features (plus probe and kNN accuracies).

    ``settings``: ``image_size``, ``device``, ``use_cache``, ``cache_dir``, ``batch_size``, ``seed``,
    ``text_column``, ``label_column`` (see :func:`graftwork.diagnostics.rank.rank_backbones`). A name
    ``random:NAME`` is a randomly initialised control. ``Ranking.to_dict()`` is what ``graftwork rank --json``
    prints.
    """
    from .diagnostics.rank import rank_backbones

    return rank_backbones(data, backbones, console=Console() if verbose else SILENT, **settings)
