""":class:`OnnxNer`: an exported NER run (per word piece tag probabilities from ``model.onnx``) with
``predict`` giving the same JSON as :meth:`graftwork.ner.NerModel.predict`, without torch.

The steps are the PyTorch model's (:mod:`graftwork.ner.align`, :mod:`graftwork.ner.model`): raw text is split
into words on whitespace and around punctuation; each sentence is cut into chunks of whole words whose word
pieces fit the encoder's window; rows are batched by length; each word takes the probabilities at its first
piece; the tags are decoded with Viterbi under the IOB2 constraints. The splitting and chunking are the same
functions (:mod:`graftwork.ner.words`, which imports no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..ner.decode import constraints, spans, viterbi
from ..ner.words import Chunk, chunk_words, split_inputs
from .manifest import read_manifest
from .predictor import DEFAULT_BATCH, inference_session
from .preprocess import load_tokenizer, pad_encodings


class OnnxNer:
    """An exported token classifier with its tags. Create with :func:`graftwork.runtime.load_export`."""

    def __init__(self, folder: str | Path, *, threads: int | None = None):
        self.folder = Path(folder).expanduser()
        self.manifest = read_manifest(self.folder)
        self.tags: list[str] = list(self.manifest["labels"])
        pre = self.manifest["preprocessing"]
        self.max_length = int(pre["max_length"])
        self.special = int(pre.get("num_special_tokens", 2))
        self.pad_id = int(pre.get("pad_id", 0))
        self.tokenizer = load_tokenizer(self.folder, pre)
        self.counter = load_tokenizer(self.folder, pre)  # the same, untruncated: counts every word's pieces
        self.counter.no_truncation()
        self.session = inference_session(self.folder, threads)
        self._start, self._trans = constraints(self.tags)

    @property
    def entity_types(self) -> list[str]:
        return sorted({t[2:] for t in self.tags if t != "O"})

    def _chunks(self, sentences: list[list[str]]) -> list[Chunk]:
        budget = max(1, self.max_length - self.special)
        encs = self.counter.encode_batch(sentences, is_pretokenized=True, add_special_tokens=False) if sentences else []
        return chunk_words(sentences, [enc.word_ids for enc in encs], budget)

    def word_probabilities(self, sentences: list[list[str]], batch_size: int = DEFAULT_BATCH) -> list[np.ndarray]:
        """Tag probabilities ``[words, tags]`` for each pre-split sentence (uniform for a word without a piece)."""
        chunks = self._chunks(sentences)
        order = sorted(range(len(chunks)), key=lambda i: chunks[i].pieces)
        parts: dict[int, np.ndarray] = {}
        for b in range(0, len(order), batch_size):
            rows = [chunks[i] for i in order[b:b + batch_size]]
            encs = self.tokenizer.encode_batch([sentences[c.sentence][c.start:c.end] for c in rows],
                                               is_pretokenized=True)
            feeds = pad_encodings(encs, self.pad_id, self.manifest["inputs"])
            probs = np.asarray(self.session.run(["probabilities"], feeds)[0], dtype=np.float32)
            for r, (i, enc) in enumerate(zip(order[b:b + batch_size], encs, strict=True)):
                first = [-1] * (chunks[i].end - chunks[i].start)
                prev = None
                for p, w in enumerate(enc.word_ids):
                    if w is not None and w != prev:
                        first[w] = p
                    prev = w
                vals = np.full((len(first), len(self.tags)), 1.0 / len(self.tags), dtype=np.float32)
                for k, p in enumerate(first):
                    if p >= 0:
                        vals[k] = probs[r, p]
                parts[i] = vals
        result = [np.zeros((0, len(self.tags)), dtype=np.float32) for _ in sentences]
        for i, c in enumerate(chunks):
            result[c.sentence] = np.concatenate([result[c.sentence], parts[i]]) if c.start else parts[i]
        return result

    def predict(self, texts: str | list[Any], batch_size: int = DEFAULT_BATCH) -> list[dict[str, Any]]:
        """Entities in each text (raw strings, or pre-split token lists): ``NerModel.predict``'s JSON."""
        items: list[Any] = [texts] if isinstance(texts, str) else list(texts)
        words, offsets, sources = split_inputs(items)
        out = []
        for text, ws, offs, p in zip(sources, words, offsets, self.word_probabilities(words, batch_size), strict=True):
            lp = np.log(np.maximum(p, 1e-30)).astype(np.float64)
            path = viterbi(lp, self._start, self._trans)
            tags = [self.tags[i] for i in path]
            ents = []
            for kind, a, b in spans(tags):
                c0, c1 = offs[a][0], offs[b - 1][1]
                score = float(p[np.arange(a, b), path[a:b]].mean())
                ents.append({"text": text[c0:c1], "type": kind, "start": a, "end": b, "char_start": c0,
                             "char_end": c1, "score": round(score, 4)})
            out.append({"input": text, "tokens": ws, "tags": tags, "entities": ents})
        return out
