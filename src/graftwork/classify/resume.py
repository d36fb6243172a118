"""An interrupted fit's state, kept beside ``--out`` in ``.<name>.partial/``: what is needed to resume it
(``fit.json``: the data, the settings, a signature of the examples) and the trainer's checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..config import FitConfig
from ..data import Examples
from ..errors import RunFolderError
from ..run import check_out_dir
from ..run.provenance import partial_dir
from ..train.checkpoint import RESUME_FILE, check_partial


def check_out(out: str | Path, data: str | Path, force: bool, resume: bool) -> None:
    """The output rules (:func:`graftwork.run.check_out_dir`: never the data, inside it or around it; ``force``
    replaces only a run folder), and an interrupted fit's checkpoint is never discarded without ``force``."""
    check_out_dir(out, force, data=data)
    check_partial(out, force, resume)


def data_signature(parts: dict[str, Examples]) -> str:
    """Identifies the examples and labels of each split, so that a resumed run trains on the same data."""
    h = hashlib.sha256()
    for name, ex in sorted(parts.items()):
        for origin, label in zip(ex.origins, ex.labels, strict=True):
            h.update(f"{name}\0{origin}\0{label}\n".encode())
    return h.hexdigest()


def saved_fit(out: str | Path) -> tuple[dict[str, Any], FitConfig]:
    """The interrupted fit's record and settings, or an error saying there is none (or it is damaged)."""
    partial = partial_dir(out)
    if not (partial / RESUME_FILE).is_file():
        raise RunFolderError(f"--resume {out}: no interrupted run to resume (looked for {partial}).",
                             hint="start it again with `graftwork fit DATA --out DIR`.")
    try:
        saved = json.loads((partial / RESUME_FILE).read_text(encoding="utf-8"))
        return saved, FitConfig.from_dict(saved["fit"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFolderError(f"{partial / RESUME_FILE}: damaged ({e}); the run cannot be resumed.",
                             hint="start it again with `graftwork fit DATA --out DIR`.") from None
