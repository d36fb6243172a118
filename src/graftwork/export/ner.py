"""Parity of an NER export: per-word tag probabilities of the PyTorch model and of the ONNX runtime on the
run's sentences (``--data``, or the data path the run recorded) or on synthetic ones from the vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import parity


def _sentences(model: Any, data: str | Path | None) -> tuple[list[list[str]], str, str]:
    source = parity.data_source(data, model.config)
    if source is not None:
        from ..ner.data import load_ner_data

        splits = load_ner_data(source, skip_bad=True, require_train=False)
        chosen, name = next((s, n) for s, n in ((splits.test, "test"), (splits.val, "val"), (splits.train, "all"))
                            if s)
        picked = [chosen[i].tokens for i in parity.spread(len(chosen))]
        return picked, "data", f"{source} ({name} split, {len(picked)} of {len(chosen)} sentences)"
    rng = np.random.default_rng(0)
    words = parity.vocabulary_words(model.net.tokenizer)
    lengths = [1, 3, 6, 10, 20, 40, 80, 300]
    sents = [list(rng.choice(words, size=lengths[i % len(lengths)])) for i in range(16)]
    return [[str(w) for w in s] for s in sents], "synthetic", "random sentences from the vocabulary, 1-300 words"


def ner_parity(model: Any, exported: Any, data: str | Path | None) -> parity.Parity:
    sentences, kind, source = _sentences(model, data)
    reference = np.concatenate([np.exp(lp) for lp in model.word_logprobs(sentences)])
    ours = np.concatenate(exported.word_probabilities(sentences))
    return parity.compare(reference, ours, inputs=kind, source=source, tolerance=parity.TOLERANCE["ner"])
