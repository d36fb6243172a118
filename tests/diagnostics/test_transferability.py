"""LogME against a direct implementation of the paper's equations, and the cross-validated probe and kNN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graftwork.diagnostics.transferability import (
    cv_folds,
    knn_accuracy,
    linear_probe_accuracy,
    linear_probe_predictions,
    logme,
    paired_gap,
)

# n = 6 examples, d = 2 features, 2 classes: small enough to follow by hand.
F_SMALL = np.array([[1.0, 0.2], [0.8, -0.1], [1.2, 0.4], [-0.9, 0.3], [-1.1, -0.2], [-0.7, 0.1]])
Y_SMALL = np.array([0, 0, 0, 1, 1, 1])


def direct_logme(f: np.ndarray, labels: np.ndarray, iterations: int = 200) -> float:
    """The evidence maximisation of You et al. (2021) with explicit d x d matrices and an inverse."""
    n, d = f.shape
    eig = np.clip(np.linalg.eigvalsh(f.T @ f), 0.0, None)  # all d eigenvalues of F^T F, zeros included
    evidences = []
    for c in np.unique(labels):
        y = (labels == c).astype(float)
        alpha, beta = 1.0, 1.0
        for _ in range(iterations):
            a_inv = np.linalg.inv(alpha * np.eye(d) + beta * f.T @ f)
            m = beta * a_inv @ f.T @ y
            gamma = np.sum(beta * eig / (alpha + beta * eig))
            alpha = gamma / (m @ m + 1e-5)
            beta = (n - gamma) / (np.sum((f @ m - y) ** 2) + 1e-5)
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.inv(a) @ f.T @ y
        res2 = np.sum((f @ m - y) ** 2)
        evidence = (n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
                    - beta / 2 * res2 - alpha / 2 * (m @ m) - 0.5 * np.linalg.slogdet(a)[1])
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def test_logme_matches_direct_implementation_on_a_tiny_example():
    expected = direct_logme(F_SMALL, Y_SMALL)
    assert logme(F_SMALL, Y_SMALL) == pytest.approx(expected, abs=1e-7)
    assert expected == pytest.approx(-0.95753, abs=1e-5)  # pinned, so that both cannot drift together


def test_logme_with_fewer_examples_than_features_counts_the_null_space():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(7, 12))
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    f[:, 0] += y
    assert logme(f, y) == pytest.approx(direct_logme(f, y), abs=1e-6)


def test_logme_prefers_true_labels():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 20)
    f = rng.normal(size=(60, 8))
    f[:, :3] += 3 * np.eye(3)[y]
    shuffled = rng.permutation(y)
    assert logme(f, y) > logme(f, shuffled) + 0.1
    assert logme(f, np.array(["a", "b", "c"])[y]) == pytest.approx(logme(f, y))


def test_folds_follow_the_smallest_class():
    assert cv_folds([0] * 10 + [1] * 3) == 3
    assert cv_folds([0] * 10 + [1] * 10) == 5
    assert cv_folds([0] * 10 + [1]) == 0


def test_probe_and_knn_accuracy():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 15)
    separable = rng.normal(size=(30, 5)) + 4 * np.eye(5)[y]  # each class along its own direction
    assert linear_probe_accuracy(separable, y) == 1.0
    assert knn_accuracy(separable, y) == 1.0
    noise = rng.normal(size=(30, 5))
    assert linear_probe_accuracy(noise, rng.permutation(y)) < 0.8
    assert math.isnan(knn_accuracy(noise[:16], np.array([0] * 15 + [1])))
    assert linear_probe_predictions(noise[:16], np.array([0] * 15 + [1])) is None


def test_paired_gap_counts_only_disagreements():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, 1])
    a = labels.copy()
    b = labels.copy()
    b[:4] = 1 - b[:4]  # b wrong on 4 examples a gets right
    a[9] = 0  # a wrong on 1 example b gets right
    gap = paired_gap(a, b, labels)
    assert (gap.a_only, gap.b_only) == (4, 1)
    assert gap.gap == pytest.approx(0.3)
    assert gap.stderr == pytest.approx(math.sqrt(5 - 9 / 10) / 10)
    assert not gap.exceeds(0.02)  # 0.3 < 2 * 0.202
    assert paired_gap(a, a, labels).gap == 0


def test_probe_in_the_span_of_the_examples_matches_a_plain_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from graftwork.diagnostics.transferability import cv_splitter

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 10)
    f = rng.normal(size=(30, 80)) + 0.8 * np.eye(80)[y]  # more features than examples
    plain = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), f, y,
                              cv=cv_splitter(y))
    assert np.array_equal(linear_probe_predictions(f, y), plain)
