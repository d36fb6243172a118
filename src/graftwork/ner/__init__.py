"""Named-entity recognition (token classification) for text: ``graftwork fit DATA --task ner``.

* :mod:`.data`: CoNLL / JSONL readers and BIO checks;
* :mod:`.align`: words to word pieces (labels on first pieces) and back;
* :mod:`.model`: the token classifier and :class:`NerModel` (predict, evaluate, save, load);
* :mod:`.task`: NER as the staged trainer's task (training rows, token loss, entity F1 on validation);
* :mod:`.train` and :mod:`.fit`: the linear probe and the fine-tuning stages (frozen, gradual, full, lora on
  :class:`graftwork.train.StagedTrainer`), and the ``fit`` pipeline; :mod:`.resume`: its resumable state;
* :mod:`.settings`: the fit settings NER reads, and those it refuses;
* :mod:`.decode` and :mod:`.metrics`: IOB2-constrained decoding, entity spans, seqeval scores.

>>> from graftwork.ner import NerModel
>>> NerModel.load("run").predict(["Ann Lee flew to Oslo."])  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import load_ner_data
    from .fit import run_fit_ner
    from .model import NerModel, is_ner_run

__all__ = ["NerModel", "run_fit_ner", "load_ner_data", "is_ner_run"]
# imported on first use, so that the light modules (decode, data) load without torch (graftwork.runtime)
_LAZY = {"NerModel": "model", "is_ner_run": "model", "run_fit_ner": "fit", "load_ner_data": "data"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graftwork.ner' has no attribute {name!r}")
