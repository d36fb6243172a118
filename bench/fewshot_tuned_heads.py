"""Benchmark: which head after contrastive tuning, at the few-shot end?

On the splits of ``bench/fewshot_suite.py``, the encoder (all-MiniLM-L6-v2) is tuned contrastively on each
training draw as graftwork's few-shot text recipe does (:func:`graftwork.strategies.contrastive.contrastive_tune`,
the run's seed), and its embeddings of the training and test texts are cached in ``--cache``; the heads are then
compared on the same embeddings, beside scikit-learn's ``LogisticRegression()`` on the pretrained raw features
(the suite's reference): SetFit's head (unit-length embeddings), scikit-learn's default on the raw tuned
embeddings, the two averaged (graftwork's head: ``raw+normalised``), the raw embeddings scaled to unit length on
average (one scalar, so their length still differs), the log-length appended to the unit-length embeddings, and
more. Also the probe's two references cross-validated on the pretrained features of the training texts (could
they tell which head to use?). Heads are cheap; the tuning is what costs (30 s to 4 min a draw on 2 cores).

Usage: python bench/fewshot_tuned_heads.py --sets binary-held,many-held --sizes 8 --seeds 0,1,2
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_suite import BACKBONE, frozen_args, frozen_draws  # noqa: E402

CACHE = Path("bench/results/.tuned_cache")


def tuned_embeddings(name: str, size: int, seed: int, train: list, test: list) -> tuple[np.ndarray, np.ndarray]:
    """The tuned encoder's embeddings of the training and test texts (cached per set, size and seed)."""
    import torch

    from graftwork.backbones import build_backbone
    from graftwork.features import extract_features
    from graftwork.strategies.contrastive import contrastive_tune

    path = CACHE / f"{name}-n{size}-s{seed}.npz"
    if path.is_file():
        z = np.load(path)
        return z["train"], z["test"]
    classes = sorted({c for _, c in train})
    body = build_backbone(BACKBONE)
    torch.manual_seed(seed)
    contrastive_tune(body, [t for t, _ in train], np.array([classes.index(c) for _, c in train]), seed=seed)
    texts = [t for t, _ in train] + [t for t, _ in test]
    x = extract_features(body, "text", texts, texts, cache=None).features
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train=x[:len(train)], test=x[len(train):])
    return x[:len(train)], x[len(train):]


def with_log_norm(x: np.ndarray, scale: float) -> np.ndarray:
    """Unit-length features with the log of the length appended (times ``scale``)."""
    return np.hstack([normalize(x), scale * np.log(np.linalg.norm(x, axis=1, keepdims=True))])


def heads(p_tr, p_te, t_tr, t_te, y, y_te) -> dict[str, float]:
    """Test accuracy of each head."""
    def lr(a, b, **kw):
        return LogisticRegression(**kw).fit(a, y).predict_proba(b)

    probs = {"sklearn_pretrained": lr(p_tr, p_te), "setfit_head": lr(normalize(t_tr), normalize(t_te)),
             "raw_tuned": lr(t_tr, t_te), "unit_pretrained": lr(normalize(p_tr), normalize(p_te))}
    for s in (1.0, 3.0):
        probs[f"lognorm_x{s:g}"] = lr(with_log_norm(t_tr, s), with_log_norm(t_te, s))
    probs["ens_sklearn_setfit"] = (probs["sklearn_pretrained"] + probs["setfit_head"]) / 2
    probs["ens_raw_unit_tuned"] = (probs["raw_tuned"] + probs["setfit_head"]) / 2
    logits = {k: LogisticRegression().fit(a, y).decision_function(b) for k, a, b in (
        ("raw", t_tr, t_te), ("unit", normalize(t_tr), normalize(t_te)))}
    if logits["raw"].ndim == 1:  # binary: one logit
        logits = {k: np.stack([-v, v], 1) for k, v in logits.items()}
    probs["ens_logits_raw_unit_tuned"] = logits["raw"] + logits["unit"]
    scale = np.linalg.norm(t_tr, axis=1).mean()  # raw embeddings at the unit-length head's scale
    probs["raw_scaled_tuned"] = lr(t_tr / scale, t_te / scale)
    scaled = LogisticRegression().fit(t_tr / scale, y).decision_function(t_te / scale)
    scaled = np.stack([-scaled, scaled], 1) if scaled.ndim == 1 else scaled
    probs["ens_logits_scaled_unit_tuned"] = scaled + logits["unit"]
    probs["ens_scaled_unit_tuned"] = (probs["raw_scaled_tuned"] + probs["setfit_head"]) / 2
    probs["concat_raw_unit_tuned"] = lr(np.hstack([t_tr, normalize(t_tr)]), np.hstack([t_te, normalize(t_te)]))
    classes = np.array(sorted(set(y)))
    out = {k: round(float(np.mean(classes[p.argmax(1)] == y_te)), 4) for k, p in probs.items()}
    out |= references_cross_validated(p_tr, y)
    norms = np.linalg.norm(p_tr, axis=1)
    out["pretrained_norm_by_class"] = [round(float(norms[np.array(y) == c].mean()), 2) for c in classes]
    norms = np.linalg.norm(t_tr, axis=1)
    out["tuned_norm_by_class"] = [round(float(norms[np.array(y) == c].mean()), 2) for c in classes]
    return out


def references_cross_validated(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The probe's two references (scikit-learn's default on the raw features, SetFit's head on the unit-length
    ones) cross-validated on the pretrained features of the training texts, on the probe's folds."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    from graftwork.strategies.selection import cv_splits

    codes = np.unique(y, return_inverse=True)[1]
    k, repeats = cv_splits(len(y), int(np.bincount(codes).min()))
    out: dict[str, list[float]] = {"cv_raw_pretrained": [], "cv_unit_pretrained": []}
    for tr, te in RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=0).split(x, codes):
        for key, f in (("cv_raw_pretrained", lambda a: a), ("cv_unit_pretrained", normalize)):
            out[key].append(float(np.mean(LogisticRegression().fit(f(x[tr]), y[tr]).predict(f(x[te])) == y[te])))
    return {k: round(float(np.mean(v)), 4) for k, v in out.items()} | {
        "cv_diff_se": round(float(np.std(np.subtract(out["cv_raw_pretrained"], out["cv_unit_pretrained"]), ddof=1)
                                  / np.sqrt(len(out["cv_raw_pretrained"]))), 4)}


def main() -> None:
    args = frozen_args("bench/results/fewshot_tuned_heads.json")
    rows = []
    for name, size, seed, train, test, feats in frozen_draws(args):
        t_tr, t_te = tuned_embeddings(name, size, seed, train, test)
        p_tr, p_te = np.stack([feats[t] for t, _ in train]), np.stack([feats[t] for t, _ in test])
        y, y_te = np.array([c for _, c in train]), np.array([c for _, c in test])
        row = {"set": name, "per_class": size, "seed": seed} | heads(p_tr, p_te, t_tr, t_te, y, y_te)
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({"backbone": BACKBONE, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
