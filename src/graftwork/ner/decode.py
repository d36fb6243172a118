"""From per-word tag probabilities to a valid IOB2 tag sequence, and from tags to entity spans.

Choosing each word's most probable tag on its own can give sequences that are not valid IOB2 (``O I-PER``, or
``B-PER I-LOC``). Instead the sequence is decoded with Viterbi under the IOB2 constraints: it maximises the sum
of the words' log-probabilities over the sequences where every ``I-X`` follows ``B-X`` or ``I-X``. The
prediction is therefore always well formed, and seqeval's strict and lenient modes score it the same.
"""

from __future__ import annotations

import numpy as np

NEG = -1e9  # "forbidden": finite, so that an all-forbidden row (a one-tag model) still decodes


def constraints(tags: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Start scores ``[C]`` and transition scores ``[C_prev, C_next]``: 0 where allowed, NEG where not."""
    n = len(tags)
    start = np.array([NEG if t.startswith("I-") else 0.0 for t in tags])
    trans = np.zeros((n, n))
    for j, nxt in enumerate(tags):
        if nxt.startswith("I-"):
            for i, prev in enumerate(tags):
                if prev == "O" or prev[2:] != nxt[2:]:
                    trans[i, j] = NEG
    return start, trans


def viterbi(logp: np.ndarray, start: np.ndarray, trans: np.ndarray) -> list[int]:
    """The best allowed tag index sequence for ``logp`` ``[words, tags]``."""
    if len(logp) == 0:
        return []
    score = start + logp[0]
    back = np.zeros(logp.shape, dtype=np.int64)
    for t in range(1, len(logp)):
        cand = score[:, None] + trans  # [prev, next]
        back[t] = cand.argmax(0)
        score = cand.max(0) + logp[t]
    path = [int(score.argmax())]
    for t in range(len(logp) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities ``(type, start, end)`` of an IOB2 sequence, ``end`` exclusive; an ``I-X`` that does not continue
    an entity of type X starts one (never produced by :func:`viterbi`)."""
    out: list[tuple[str, int, int]] = []
    kind, begin = None, 0
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and kind == tag[2:]
        if kind is not None and not continues:
            out.append((kind, begin, i))
            kind = None
        if tag != "O" and not continues:
            kind, begin = tag[2:], i
    return out
