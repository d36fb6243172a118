"""The new task head, and the linear probe that trains it on cached features."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import RepeatedStratifiedKFold
from threadpoolctl import threadpool_limits
from torch import nn

from .selection import cv_splits, simplest_near_best, small_validation

# The regularisation grid of the probe (scikit-learn's C, inverse L2 strength, on standardised features).
# Measured on MobileNetV2 features of Fashion-MNIST: the chosen C ranges from 1e-3 (10 per class) to 3e-2
# (50 per class); larger data moves it up.
PROBE_CS: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
DEFAULT_C = 0.1  # when nothing can be held out to choose one

# What the logistic regression is fitted on: the head's standardised features (the grid above), the raw features
# (scikit-learn's default ``LogisticRegression()``, C=1, the reference a user would try first), or the features
# scaled to unit length (C=1: SetFit's head; sentence encoders are trained for cosine similarity, and their
# sentence-transformers pipelines end in this normalisation).
STANDARDISED, RAW, NORMALISED = "standardised", "raw", "normalised"
# Both references at once: one logistic regression on the raw features and one on the unit-length features,
# their logits averaged (the head of the few-shot text recipe: neither loses what the other keeps, e.g. the
# embedding's length, which differs by class on some data and which the unit-length head discards).
BOTH = "raw+normalised"
FEATURES = (STANDARDISED, RAW, NORMALISED, BOTH)


class LinearHead(nn.Module):
    """Standardise features, then one linear layer.

    Standardising makes one learning rate and one regularisation grid work across backbones whose feature
    scales differ by orders of magnitude (a CNN's post-ReLU averages vs a sentence encoder's mean-pooled states).
    It is a BatchNorm without affine parameters (as in fastai's heads): for the linear probe its statistics are
    those of the training features, fixed; while the backbone is fine-tuned it normalises with batch statistics,
    so the head is not thrown off when the features drift (with fixed statistics, a randomly initialised
    backbone's tiny feature spread turns its first updates into exploding logits).
    """

    def __init__(self, in_features: int, num_classes: int, *, unit_length: bool = False,
                 unit_branch: bool = False):
        super().__init__()
        # features scaled to unit length before standardising (a probe of the normalised features); a buffer, so
        # that it is saved with the weights, mirrored in a Python bool that tracing (ONNX export) sees as a constant
        self.register_buffer("unit_length", torch.tensor(float(unit_length)))
        self.unit = unit_length
        # eps far below any real feature variance: a randomly initialised MobileNetV2 in eval mode gives features
        # with variances around 1e-19 (its activations shrink layer after layer), which standardising must keep
        self.norm = nn.BatchNorm1d(in_features, affine=False, eps=1e-30)
        self.fc = nn.Linear(in_features, num_classes)
        # a second head on the unit-length features whose logits are averaged with this one's (features BOTH)
        self.unit_branch: LinearHead | None = None
        if unit_branch:
            self.add_unit_branch()

    def add_unit_branch(self) -> LinearHead:
        """Give the head a second branch, a head of the unit-length features (see ``BOTH``); returns it."""
        if self.unit_branch is None:
            self.unit_branch = LinearHead(self.fc.in_features, self.fc.out_features, unit_length=True)
        return self.unit_branch

    @property
    def scales_to_unit_length(self) -> bool:
        """Whether any of its logits are computed from the features scaled to unit length."""
        return self.unit or self.unit_branch is not None

    def set_unit_length(self, unit: bool) -> None:
        self.unit = unit
        self.unit_length.fill_(float(unit))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # heads saved before the option existed scale nothing
        state_dict.setdefault(prefix + "unit_length", torch.tensor(0.0))
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.unit = bool(self.unit_length)

    def inputs(self, features: np.ndarray) -> np.ndarray:
        """``features`` as the head's standardisation receives them: scaled to unit length if the head does."""
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12) if self.unit else features

    def set_normalization(self, features: torch.Tensor) -> None:
        var = features.var(0) if len(features) > 1 else torch.ones(features.shape[1])
        # a constant feature carries nothing: scale 1 (as scikit-learn's StandardScaler) instead of 1/sqrt(eps)
        var = torch.where(var > 0, var, torch.ones_like(var))
        self.norm.running_mean.copy_(features.mean(0))
        self.norm.running_var.copy_(var)

    def standardize(self, features: np.ndarray) -> np.ndarray:
        """The head's inputs ``features`` (see :meth:`inputs`) standardised as its first layer does."""
        self.norm.eval()
        with torch.no_grad():
            return self.norm(torch.from_numpy(features).float()).numpy()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.unit_branch is not None:
            return (self._logits(features) + self.unit_branch(features)) / 2
        return self._logits(features)

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        if self.unit:
            features = F.normalize(features, dim=1, eps=1e-12)
            if not self.training:  # BatchNorm's own formula: ONNX export cannot size a batch_norm after the division
                norm = self.norm
                return self.fc((features - norm.running_mean) * torch.rsqrt(norm.running_var + norm.eps))
        return self.fc(self.norm(features))


@dataclass
class ProbeFit:
    """How the probe was chosen: one row per regularisation strength tried, and the one kept."""

    c: float
    selection: str  # "validation" | "cross-validation" | "given" | "default"
    grid: list[dict[str, float]] = field(default_factory=list)
    examples: int = 0  # examples the choice was made on (held out, or cross-validated over)
    folds: str = ""  # "5-fold x 3" for cross-validation
    best: tuple[str, float] | None = None  # the most accurate (features, C), when a near-tie moved the choice
    features: str = STANDARDISED  # what the regression was fitted on (see FEATURES)

    def to_dict(self) -> dict:
        out = {"C": self.c, "selection": self.selection, "grid": self.grid, "examples": self.examples,
               "features": self.features}
        return out | ({"folds": self.folds} if self.folds else {}) | (
            {"most_accurate": {"features": self.best[0], "C": self.best[1]}} if self.best else {})

    def describe(self) -> str:
        """How C was chosen, in words: ``C=0.1, chosen by cross-validation (5-fold x 3 over 40 examples)``."""
        how = {"validation": f"validation ({self.examples} examples)",
               "cross-validation": f"cross-validation ({self.folds} over {self.examples} examples)"}
        on = {RAW: " on the raw features", NORMALISED: " on the features scaled to unit length",
              BOTH: " on the raw features and on the features scaled to unit length (logits averaged)"}.get(
                  self.features, "")
        text = f"C={self.c:g}{on}, " + (f"chosen by {how[self.selection]}" if self.selection in how else self.selection)
        if self.best:
            text += (f"; C={self.best[1]:g} on the {self.best[0]} features was within one standard error, the "
                     + {RAW: "reference (scikit-learn's default)", NORMALISED: "normalised features' probe"}.get(
                         self.features, "stronger regularisation") + " kept")
        return text


def evaluate_head(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    head.eval()
    with torch.no_grad():
        logits = head(x)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def _logistic(z: np.ndarray, y: np.ndarray, c: float, class_weights: list[float] | None,
              start: LogisticRegression | None = None) -> LogisticRegression:
    """Fit at strength ``c``; ``start`` (the fit at the previous, smaller C of the grid) is continued from, which
    makes the whole grid cost little more than its last point."""
    weight = {i: w for i, w in enumerate(class_weights)} if class_weights else None
    clf = start or LogisticRegression(max_iter=2000, class_weight=weight, warm_start=True)
    clf.set_params(C=c)
    # one BLAS thread: these are small matrices, and a multi-threaded BLAS beside torch's own thread pool made
    # the probe 50-90x slower on a 2-core machine (45 s instead of 0.5 s for 400 examples)
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations short of the optimum is fine
        return clf.fit(z, y)


def _score(clf: LogisticRegression, z: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[float, float]:
    proba = np.zeros((len(z), num_classes))
    proba[:, clf.classes_] = clf.predict_proba(z)
    proba = np.clip(proba, 1e-12, 1)
    return float(np.mean(proba.argmax(1) == y)), float(log_loss(y, proba / proba.sum(1, keepdims=True),
                                                                  labels=range(num_classes)))


def _best(rows: list[dict[str, float]]) -> float:
    """Highest held-out accuracy; among ties the lowest held-out loss (accuracy on a small validation set is
    coarse)."""
    return max(rows, key=lambda r: (round(r["val_acc"], 9), -r["val_loss"]))["C"]


def _load(head: LinearHead, clf: LogisticRegression, raw: bool = False) -> None:
    """Load ``clf`` into the head; with ``raw``, ``clf`` is a model ``w x + b`` of the head's inputs ``x`` (not
    standardised), which becomes ``(w sigma) z + (b + w mu)`` on the head's standardised ``z = (x - mu) / sigma``:
    the same function."""
    num_classes = head.fc.out_features
    weight = np.zeros((num_classes, clf.coef_.shape[1]))
    bias = np.zeros(num_classes)
    if len(clf.classes_) == 2 and clf.coef_.shape[0] == 1:  # binary: one logit, split symmetrically in two
        a, b = clf.classes_
        weight[a], weight[b] = -clf.coef_[0] / 2, clf.coef_[0] / 2
        bias[a], bias[b] = -clf.intercept_[0] / 2, clf.intercept_[0] / 2
    else:
        weight[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
        missing = np.setdiff1d(np.arange(num_classes), clf.classes_)
        bias[missing] = -1e4  # a class with no training example is never predicted
    if raw:
        mean = head.norm.running_mean.double().numpy()
        scale = np.sqrt(head.norm.running_var.double().numpy() + head.norm.eps)
        bias, weight = bias + weight @ mean, weight * scale
    with torch.no_grad():
        head.fc.weight.copy_(torch.from_numpy(weight).float())
        head.fc.bias.copy_(torch.from_numpy(bias).float())


def fit_probe(head: LinearHead, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None = None,
              y_val: np.ndarray | None = None, *, c: float | None = None, features: str = STANDARDISED,
              prefer: str = RAW, class_weights: list[float] | None = None, seed: int = 0) -> ProbeFit:
    """Train ``head`` as an L2-regularised multinomial logistic regression (scikit-learn, L-BFGS, to
    convergence) on cached features.

    The regularisation strength ``c`` (scikit-learn's C, on the standardised features) is chosen on the validation
    features when given, else by repeated stratified k-fold cross-validation on the training features among
    the grid and the two references, ``prefer`` first among near-ties (see :func:`_cross_validate`), else
    ``DEFAULT_C``; a given ``c`` is used as is, on the ``features`` named (see ``FEATURES``). ``class_weights``
    weight the training loss (imbalanced classes).
    """
    num_classes = head.fc.out_features
    fit = ProbeFit(c=c if c is not None else DEFAULT_C, selection="given" if c is not None else "default",
                   features=features if c is not None else STANDARDISED)
    if fit.features not in FEATURES:
        raise ValueError(f"features={features!r}: expected one of {', '.join(FEATURES)}")
    present = np.unique(y_train)
    if len(present) < 2:
        _prepare(head, x_train, STANDARDISED)
        with torch.no_grad():  # one class: nothing to separate, predict it
            head.fc.weight.zero_()
            head.fc.bias.fill_(-1e4)
            head.fc.bias[int(present[0])] = 0.0
        return fit
    smallest = int(np.bincount(y_train)[present].min())
    if c is None and x_val is not None and y_val is not None and len(y_val):
        z = _prepare(head, x_train, STANDARDISED)
        zv, clf = head.standardize(x_val), None
        for cand in PROBE_CS:
            clf = _logistic(z, y_train, cand, class_weights, clf)
            acc, loss = _score(clf, zv, y_val, num_classes)
            fit.grid.append({"C": cand, "val_acc": acc, "val_loss": loss})
        fit.c, fit.selection, fit.examples = _best(fit.grid), "validation", len(y_val)
    elif c is None and smallest >= 2:
        _cross_validate(fit, x_train, y_train, num_classes, class_weights, seed, prefer)
    z = _prepare(head, x_train, fit.features)
    raw = fit.features != STANDARDISED
    _load(head, _logistic(head.inputs(x_train) if raw else z, y_train, fit.c, class_weights), raw=raw)
    if fit.features == BOTH:
        fit_probe(head.add_unit_branch(), x_train, y_train, c=fit.c, features=NORMALISED,
                  class_weights=class_weights, seed=seed)
    return fit


def _prepare(head: LinearHead, x: np.ndarray, features: str) -> np.ndarray:
    """Set ``head`` up for a probe of ``features`` (unit length or not, a unit-length branch only for ``BOTH``;
    standardisation statistics from ``x``); returns ``x`` standardised as the head does."""
    head.set_unit_length(features == NORMALISED)
    if features != BOTH:
        head.unit_branch = None
    inputs = head.inputs(x)
    head.set_normalization(torch.from_numpy(inputs).float())
    return head.standardize(inputs)


def select_probe(head: LinearHead, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None,
                 y_val: np.ndarray | None, *, c: float | None = None, prefer: str = RAW,
                 class_weights: list[float] | None = None, seed: int = 0) -> tuple[ProbeFit, bool]:
    """Train ``head`` on the training features with the probe that the data can choose reliably.

    With a small validation split (:func:`.selection.small_validation`) the probe (features and C) is chosen by
    repeated stratified cross-validation over training + validation features, then ``head`` is trained on the
    training features with it (it is the starting point and the yardstick of fine-tuning, both judged on
    validation); otherwise C is chosen on validation, as :func:`fit_probe` does. Returns the fit and whether
    validation was small."""
    num_classes = head.fc.out_features
    small = (c is None and x_val is not None and y_val is not None and len(y_val) > 0
             and small_validation(np.bincount(y_val, minlength=num_classes).tolist()))
    if not small:
        return fit_probe(head, x_train, y_train, x_val, y_val, c=c, prefer=prefer, class_weights=class_weights,
                         seed=seed), False
    assert x_val is not None and y_val is not None
    chosen = fit_probe(LinearHead(head.fc.in_features, num_classes), np.concatenate([x_train, x_val]),
                       np.concatenate([y_train, y_val]), prefer=prefer, class_weights=class_weights, seed=seed)
    fit_probe(head, x_train, y_train, c=chosen.c, features=chosen.features, class_weights=class_weights, seed=seed)
    return chosen, True


# The candidates of the cross-validation besides the standardised grid: scikit-learn's default and SetFit's head
# (both C=1); the near-tie rule prefers the one the caller names (``prefer``), then the other.
SKLEARN_DEFAULT: tuple[str, float] = (RAW, 1.0)
SETFIT_HEAD: tuple[str, float] = (NORMALISED, 1.0)
REFERENCES: tuple[tuple[str, float], ...] = (SKLEARN_DEFAULT, SETFIT_HEAD)


def preferred_features(modality: str) -> str:
    """The reference a near-tie goes to: for a sentence encoder (text) its embeddings scaled to unit length, the
    space it was trained in (cosine similarity) and where SetFit fits its head; measured on frozen MiniLM
    features, +1.7 points over the raw features on average over 30 few-shot runs (``bench/fewshot_heads.py``).
    Elsewhere scikit-learn's default on the raw features."""
    return NORMALISED if modality == "text" else RAW


def _cross_validate(fit: ProbeFit, x: np.ndarray, y: np.ndarray, num_classes: int,
                    class_weights: list[float] | None, seed: int, prefer: str = RAW) -> None:
    """Choose the probe by repeated stratified k-fold cross-validation among the references (``REFERENCES``:
    scikit-learn's default ``LogisticRegression()`` on the raw features, what a user would try first, and the
    same on the features scaled to unit length) and the grid of C on the standardised features: the most accurate
    on the held-out folds (ties: lower held-out loss), then the first within one standard error of its mean over
    the folds in the order ``prefer``'s reference, the other, then strong to weak regularisation. Few examples
    cannot tell neighbouring candidates apart, and a reference or the stronger regularisation is the safer bet
    then.

    Each fold standardises (and scales) with its own training part's statistics, as the refit will."""
    k, repeats = cv_splits(len(y), int(np.bincount(y)[np.unique(y)].min()))
    folds = list(RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed).split(x, y))
    references = sorted(REFERENCES, key=lambda r: r[0] != prefer)
    candidates = references + [(STANDARDISED, c) for c in PROBE_CS]
    per_fold: list[np.ndarray] = []
    views: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for name in {f for f, _ in candidates}:  # each fold's training and held-out inputs, per kind of features
        head = LinearHead(x.shape[1], num_classes)
        views[name] = []
        for tr, te in folds:
            z = _prepare(head, x[tr], name)
            views[name].append((z, head.standardize(head.inputs(x[te]))) if name == STANDARDISED
                               else (head.inputs(x[tr]), head.inputs(x[te])))
    fold_clfs: list[LogisticRegression | None] = [None] * len(folds)
    for name, cand in candidates:
        warm = fold_clfs if name == STANDARDISED else [None] * len(folds)  # the grid warm-starts along itself
        fold_clfs = [_logistic(train, y[tr], cand, class_weights, clf)
                     for (tr, _), (train, _), clf in zip(folds, views[name], warm, strict=True)]
        scores = np.array([_score(clf, held, y[te], num_classes)
                           for (_, te), (_, held), clf in zip(folds, views[name], fold_clfs, strict=True)])
        if name != STANDARDISED:
            fold_clfs = [None] * len(folds)
        per_fold.append(scores[:, 0])
        fit.grid.append({"C": cand, "features": name, "val_acc": float(scores[:, 0].mean()),
                         "val_loss": float(scores[:, 1].mean()),
                         "val_acc_se": float(scores[:, 0].std(ddof=1) / np.sqrt(len(folds)))})
    best = max(range(len(candidates)), key=lambda i: (round(fit.grid[i]["val_acc"], 9), -fit.grid[i]["val_loss"]))
    chosen = simplest_near_best(per_fold, best)
    (fit.features, fit.c), fit.best = candidates[chosen], (candidates[best] if chosen != best else None)
    fit.selection, fit.examples, fit.folds = "cross-validation", len(y), f"{k}-fold x {repeats}"
