"""Contrastive tuning on pairs of labelled texts (SetFit's body stage): the pairs, and what the tuning does."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
import torch.nn.functional as F

from graftwork.backbones import build_backbone
from graftwork.strategies.contrastive import contrastive_tune, make_pairs

from ..conftest import make_text_rows


def test_pairs_are_every_same_and_different_class_pair_the_rarer_kind_repeated():
    labels = np.array([0, 0, 0, 1, 1, 1])  # 6 same-class pairs, 9 different-class pairs
    pairs = make_pairs(labels, seed=0)
    assert len(pairs) == 18  # 9 of each kind
    same = {(a, b) for a, b in combinations(range(6), 2) if labels[a] == labels[b]}
    got = list(zip(pairs.left.tolist(), pairs.right.tolist(), strict=True))
    assert all((labels[a] == labels[b]) == bool(t) for (a, b), t in zip(got, pairs.target, strict=True))
    assert {p for p, t in zip(got, pairs.target, strict=True) if t} == same  # every same-class pair, some twice
    assert len({p for p, t in zip(got, pairs.target, strict=True) if not t}) == 9  # every different-class pair
    assert int(pairs.target.sum()) == 9


def test_pairs_are_capped_half_of_each_kind():
    labels = np.repeat(np.arange(4), 10)  # 180 same-class, 600 different-class pairs
    pairs = make_pairs(labels, seed=1, max_pairs=100)
    assert len(pairs) == 100 and int(pairs.target.sum()) == 50
    assert len(set(zip(pairs.left.tolist(), pairs.right.tolist(), strict=True))) == 100  # no repeats below the cap


def test_one_class_gives_only_same_class_pairs():
    pairs = make_pairs(np.zeros(4, dtype=int), seed=0)
    assert len(pairs) == 6 and pairs.target.all()


def _separation(backbone, texts: list[str], labels: np.ndarray) -> float:
    with torch.no_grad():
        emb = F.normalize(backbone(backbone.collate(texts)), dim=1)
    sim = (emb @ emb.T).numpy()
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return float(sim[same & off].mean() - sim[~same].mean())


def test_tuning_pulls_same_class_texts_together_and_pushes_the_others_apart(tiny_bert):
    rows = make_text_rows(per_class=6, seed=2)
    texts = [t for t, _ in rows]
    classes = sorted({y for _, y in rows})
    labels = np.array([classes.index(y) for _, y in rows])
    backbone = build_backbone(f"hf:{tiny_bert}")
    backbone.eval()
    before = _separation(backbone, texts, labels)
    fit = contrastive_tune(backbone, texts, labels, seed=0, lr=1e-3)  # a random tiny model needs a larger rate
    assert fit["pairs"] == len(make_pairs(labels, seed=0)) and fit["steps"] == -(-fit["pairs"] // 16)
    assert not backbone.training and not any(p.requires_grad for p in backbone.parameters())
    assert _separation(backbone, texts, labels) > before + 0.1
    assert fit["loss_last"] < fit["loss_first"]
