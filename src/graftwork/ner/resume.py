"""An NER fit's resumable state, beside its output folder (``.<out>.partial/``, the place every task uses:
:func:`graftwork.run.provenance.partial_dir`).

It holds ``fit.json`` (the data, the settings and a signature of the sentences and tags, written before any
training: ``graftwork fit --resume OUT`` reads it), the head stage's result (its weights and record, written
once it ends, so a resumed fit does not train it again) and the staged trainer's checkpoint of the last epoch
(:mod:`graftwork.train.checkpoint`). The folder is removed once the run folder is saved.

A resumed fit refuses data that changed since (another signature), and a plain re-run never discards a
checkpoint without ``--force``, as for classification.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from ..run import write_json
from .data import Sentence

HEAD_WEIGHTS = "head.safetensors"
HEAD_RECORD = "head_stage.json"


def data_signature(parts: dict[str, list[Sentence]]) -> str:
    """Identifies the sentences (where each came from, its words and tags) of each split, so that a resumed run
    trains and selects on the same data."""
    h = hashlib.sha256()
    for name, sentences in sorted(parts.items()):
        for s in sentences:
            h.update(json.dumps([name, s.origin, s.tokens, s.tags], ensure_ascii=False).encode())
    return h.hexdigest()


def save_head_stage(partial: Path, head: nn.Module, record: dict[str, Any]) -> None:
    """The head stage's weights and record, so that a resumed fit starts fine-tuning from the same head."""
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(partial / HEAD_WEIGHTS))
    write_json(partial / HEAD_RECORD, record)


def load_head_stage(partial: Path, head: nn.Module) -> dict[str, Any] | None:
    """Load the saved head stage into ``head``; its record, or None when the interrupted fit had not finished it."""
    if not ((partial / HEAD_WEIGHTS).is_file() and (partial / HEAD_RECORD).is_file()):
        return None
    head.load_state_dict(load_file(str(partial / HEAD_WEIGHTS)))
    return json.loads((partial / HEAD_RECORD).read_text(encoding="utf-8"))
