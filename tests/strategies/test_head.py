"""The linear probe: scikit-learn's logistic regression, chosen on validation, loaded into the torch head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from graftwork.strategies.head import PROBE_CS, REFERENCES, LinearHead, fit_probe


def blobs(n_per_class: int, classes: int = 3, dim: int = 8, spread: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(classes, dim))
    x = np.concatenate([centres[c] + rng.normal(0, spread, size=(n_per_class, dim)) for c in range(classes)])
    y = np.repeat(np.arange(classes), n_per_class)
    return (x * 50 + 7).astype(np.float32), y  # far from standardised, as raw backbone features are


def logits(head: LinearHead, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head.eval()(torch.from_numpy(x)).numpy()


def test_probe_equals_scikit_learn_on_standardised_features():
    x, y = blobs(20, spread=3.0)
    head = LinearHead(x.shape[1], 3)
    fit_probe(head, x, y, c=0.05)
    z = StandardScaler().fit(x).transform(x)
    ref = LogisticRegression(C=0.05, max_iter=5000).fit(z, y)
    # scikit-learn's scaler uses the biased variance, the head the unbiased one: the same model up to 1/n
    np.testing.assert_allclose(logits(head, x), ref.decision_function(z), atol=0.05)
    assert (logits(head, x).argmax(1) == ref.predict(z)).mean() == 1.0


def test_binary_probe_gives_the_same_probabilities_as_scikit_learn():
    x, y = blobs(15, classes=2, spread=4.0)
    head = LinearHead(x.shape[1], 2)
    fit_probe(head, x, y, c=1.0)
    p = torch.softmax(torch.from_numpy(logits(head, x)), 1).numpy()
    ref = LogisticRegression(C=1.0, max_iter=5000).fit(StandardScaler().fit(x).transform(x), y)
    np.testing.assert_allclose(p, ref.predict_proba(StandardScaler().fit(x).transform(x)), atol=0.02)


def test_regularisation_is_chosen_on_validation_from_the_grid():
    x, y = blobs(30, spread=6.0, seed=1)
    xv, yv = blobs(10, spread=6.0, seed=1)
    head = LinearHead(x.shape[1], 3)
    fit = fit_probe(head, x, y, xv, yv)
    assert fit.selection == "validation" and [r["C"] for r in fit.grid] == list(PROBE_CS)
    best = max(fit.grid, key=lambda r: (r["val_acc"], -r["val_loss"]))
    assert fit.c == best["C"]


def test_without_validation_the_strength_is_cross_validated():
    x, y = blobs(10)
    fit = fit_probe(LinearHead(x.shape[1], 3), x, y)
    # + scikit-learn's default and the normalised features' probe
    assert fit.selection == "cross-validation" and len(fit.grid) == len(PROBE_CS) + len(REFERENCES)


def test_a_class_absent_from_training_is_never_predicted():
    x, y = blobs(10, classes=2)
    head = LinearHead(x.shape[1], 3)  # class 2 exists in the run but has no training example
    fit_probe(head, x, y, c=1.0)
    assert set(logits(head, x).argmax(1)) == {0, 1}


def test_class_weights_move_the_boundary_toward_the_light_class():
    x, y = blobs(40, classes=2, spread=12.0, seed=3)
    plain, weighted = LinearHead(x.shape[1], 2), LinearHead(x.shape[1], 2)
    fit_probe(plain, x, y, c=1.0)
    fit_probe(weighted, x, y, c=1.0, class_weights=[1.0, 5.0])
    assert (logits(weighted, x).argmax(1) == 1).sum() > (logits(plain, x).argmax(1) == 1).sum()


def test_constant_features_do_not_explode():
    x, y = blobs(10)
    x[:, 0] = 3.0
    head = LinearHead(x.shape[1], 3)
    fit_probe(head, x, y, c=1.0)
    x2 = x.copy()
    x2[:, 0] = 4.0  # a feature constant in training but not at prediction time
    assert np.abs(logits(head, x2)).max() < 1e3


@pytest.mark.parametrize("n", [1, 3])
def test_one_class_predicts_it(n):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    head = LinearHead(4, 2)
    fit_probe(head, x, np.ones(n, dtype=np.int64))
    assert set(logits(head, x).argmax(1)) == {1}
