"""How well frozen features separate the classes, measured without training a network.

Three scores of a feature matrix ``[n, d]`` against its labels:

* :func:`logme`: the LogME evidence of a Bayesian linear model (You et al., 2021); no training, no folds, a
  few milliseconds, and on the paper's benchmarks it ranks pretrained models in the order fine-tuning does;
* :func:`linear_probe_accuracy`: cross-validated accuracy of a logistic regression on standardised features,
  what the frozen strategy of ``fit`` comes close to;
* :func:`knn_accuracy`: cross-validated accuracy of a cosine k-nearest-neighbour classifier, which needs no
  fitting at all and says whether examples of a class lie close together.

The probe and kNN share their folds (:func:`cv_splitter`), so their out-of-fold predictions can be compared
example by example (:func:`paired_gap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

# The reference implementation's guard on the alpha and beta updates.
_EPS = 1e-5


def _label_codes(labels: np.ndarray | list) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)


def logme(features: np.ndarray, labels: np.ndarray | list, *, max_iter: int = 100,
          tol: float = 1e-6) -> float:
    """LogME: the average, over classes, of the maximum log evidence of a linear model, divided by ``n``.

    From You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
    ICML 2021 (https://arxiv.org/abs/2102.11005), Algorithm 1, with the fixed-point form of their follow-up
    (arXiv:2110.10545). For each class ``c`` the target is the one-hot column ``y = [label == c]`` and the
    model ``y = F w + noise``, ``w ~ N(0, I/alpha)``, ``noise ~ N(0, 1/beta)``. With ``s_i`` the eigenvalues
    of ``F^T F`` (squared singular values of ``F``, zeros included when ``n < d``), iterate to a fixed point::

        A = alpha I + beta F^T F,   m = beta A^-1 F^T y
        gamma = sum_i beta s_i / (alpha + beta s_i)
        alpha = gamma / |m|^2,      beta = (n - gamma) / |F m - y|^2

    then the log evidence is ``n/2 log beta + d/2 log alpha - n/2 log 2pi - beta/2 |F m - y|^2 - alpha/2 |m|^2
    - 1/2 log|A|``, divided by ``n``. All of it is computed in the SVD basis of ``F`` (thin SVD, so ``n < d``
    costs ``O(n^2 d)``): ``log|A| = sum_i log(alpha + beta s_i)`` over the ``r`` non-zero singular values plus
    ``(d - r) log alpha`` for the null space. Higher is better; it is comparable between feature sets of the
    same examples, not between datasets. Features are used as given. As in the reference implementation, 1e-5
    is added to ``|m|^2`` and ``|F m - y|^2`` in the updates, which keeps alpha and beta finite when a fit is
    exact (it makes the score depend slightly on the features' scale when they are very large).
    """
    f = np.asarray(features, dtype=np.float64)
    codes = _label_codes(labels)
    n, d = f.shape
    if n != len(codes):
        raise ValueError(f"features have {n} rows but there are {len(codes)} labels")
    u, sv, _ = np.linalg.svd(f, full_matrices=False)
    keep = sv > sv.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps
    u, s = u[:, keep], sv[keep] ** 2  # s: the non-zero eigenvalues of F^T F
    null_dims = d - s.size
    evidences = []
    for c in range(int(codes.max()) + 1):
        y = (codes == c).astype(np.float64)
        z = u.T @ y  # y in the left singular basis; the rest of y lies outside F's column space
        z2 = z ** 2
        y_outside = max(float(y @ y - z2.sum()), 0.0)
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            gamma, m2, res2 = _posterior(alpha, beta, s, z2, y_outside)
            new_alpha, new_beta = gamma / (m2 + _EPS), (n - gamma) / (res2 + _EPS)
            converged = abs(new_alpha / new_beta - alpha / beta) <= tol * (alpha / beta)
            alpha, beta = new_alpha, new_beta
            if converged:
                break
        _, m2, res2 = _posterior(alpha, beta, s, z2, y_outside)
        log_det_a = float(np.log(alpha + beta * s).sum()) + null_dims * math.log(alpha)
        evidence = (n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
                    - beta / 2 * res2 - alpha / 2 * m2 - log_det_a / 2)
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def _posterior(alpha: float, beta: float, s: np.ndarray, z2: np.ndarray, y_outside: float
               ) -> tuple[float, float, float]:
    """gamma, |m|^2 and |F m - y|^2 at (alpha, beta), in the SVD basis of F."""
    shrink = beta * s / (alpha + beta * s)  # how much of each singular direction of y the fit keeps
    gamma = float(shrink.sum())
    m2 = float((beta ** 2 * s * z2 / (alpha + beta * s) ** 2).sum())
    res2 = float(((1 - shrink) ** 2 * z2).sum()) + y_outside
    return gamma, m2, res2


def cv_folds(labels: np.ndarray | list) -> int:
    """Folds for cross-validation: ``min(5, smallest class count)``; 0 when a class has fewer than 2
    examples."""
    counts = np.bincount(_label_codes(labels))
    k = min(5, int(counts.min()))
    return k if k >= 2 else 0


def cv_splitter(labels: np.ndarray | list, seed: int = 0) -> StratifiedKFold | None:
    k = cv_folds(labels)
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed) if k else None


def linear_probe_predictions(features: np.ndarray, labels: np.ndarray | list, *, seed: int = 0,
                             c: float = 1.0) -> np.ndarray | None:
    """Out-of-fold class codes from a logistic regression (L2, ``C=c``) on standardised features (``None``:
    too few examples per class to cross-validate)."""
    return _oof(lambda n_train: _SpanProbe(c), features, labels, seed)


class _SpanProbe:
    """Logistic regression on standardised features, fitted in the span of the training examples.

    With an L2 penalty the weights lie in the span of the training rows (representer theorem), so projecting
    the features onto that span first gives the same model; with more features than examples (1280-d features,
    a few hundred images) it is several times faster.
    """

    def __init__(self, c: float):
        self.c = c

    def fit(self, x: np.ndarray, y: np.ndarray) -> _SpanProbe:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        self.scaler_ = StandardScaler().fit(x)
        z = self.scaler_.transform(x)
        self.basis_ = None
        if z.shape[1] > z.shape[0]:
            _, sv, vt = np.linalg.svd(z, full_matrices=False)
            self.basis_ = vt[sv > sv.max(initial=0.0) * 1e-10].T
            z = z @ self.basis_
        self.model_ = LogisticRegression(C=self.c, max_iter=1000).fit(z, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self.scaler_.transform(x)
        return self.model_.predict(z if self.basis_ is None else z @ self.basis_)


def knn_predictions(features: np.ndarray, labels: np.ndarray | list, *, seed: int = 0,
                    k: int = 5) -> np.ndarray | None:
    """Out-of-fold class codes from a cosine k-nearest-neighbour classifier, ``k = min(5, fold's train
    size)``."""
    from sklearn.neighbors import KNeighborsClassifier

    return _oof(lambda n_train: KNeighborsClassifier(n_neighbors=min(k, n_train), metric="cosine"),
                features, labels, seed)


def _oof(make: Callable[[int], Any], features: np.ndarray, labels: np.ndarray | list, seed: int
         ) -> np.ndarray | None:
    """Out-of-fold predictions with the folds of :func:`cv_splitter`; ``make(n_train)`` gives a fresh
    model."""
    codes = _label_codes(labels)
    splitter = cv_splitter(codes, seed)
    if splitter is None:
        return None
    x = np.asarray(features, dtype=np.float64)
    pred = np.empty_like(codes)
    for train, test in splitter.split(x, codes):
        model = make(len(train))
        pred[test] = model.fit(x[train], codes[train]).predict(x[test])
    return pred


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray | list, *, seed: int = 0) -> float:
    """Cross-validated accuracy of a linear probe (logistic regression on standardised features); NaN when a
    class has fewer than two examples."""
    return _accuracy(linear_probe_predictions(features, labels, seed=seed), labels)


def knn_accuracy(features: np.ndarray, labels: np.ndarray | list, *, seed: int = 0) -> float:
    """Cross-validated accuracy of cosine kNN (``k = min(5, ...)``); NaN when a class has fewer than two
    examples."""
    return _accuracy(knn_predictions(features, labels, seed=seed), labels)


def _accuracy(pred: np.ndarray | None, labels: np.ndarray | list) -> float:
    return float("nan") if pred is None else float(np.mean(pred == _label_codes(labels)))


@dataclass(frozen=True)
class PairedGap:
    """Accuracy of ``a`` minus accuracy of ``b`` on the same examples, with its standard error."""

    gap: float
    stderr: float
    a_only: int  # examples ``a`` gets right and ``b`` wrong
    b_only: int

    def exceeds(self, margin: float, z: float = 2.0) -> bool:
        """Whether ``a`` is better by more than ``margin`` and by more than ``z`` standard errors."""
        return self.gap > max(margin, z * self.stderr)


def paired_gap(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray | list) -> PairedGap:
    """Compare two classifiers' out-of-fold predictions on the same examples (McNemar-style).

    Only the examples on which they disagree carry information: with ``a_only`` and ``b_only`` of them among
    ``n``, the gap is ``(a_only - b_only) / n`` and its standard error ``sqrt(a_only + b_only - (a_only -
    b_only)^2 / n) / n``, much tighter than comparing two unpaired accuracies.
    """
    codes = _label_codes(labels)
    right_a, right_b = pred_a == codes, pred_b == codes
    a_only, b_only, n = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a)), len(codes)
    var = max(a_only + b_only - (a_only - b_only) ** 2 / n, 0.0)
    return PairedGap((a_only - b_only) / n, math.sqrt(var) / n, a_only, b_only)
