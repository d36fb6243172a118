"""How much data do you need? A learning curve measured on the user's own data, and what more data would buy.

The rule of thumb (50-500 examples per class for a frozen backbone, thousands to fine-tune) is a guess; this
measures it. The linear probe is fitted on nested stratified subsets of the data (an eighth, a quarter, a half,
all of a pool; several seeds, each holding out its own stratified quarter for scoring), on cached features, so it
costs seconds. A saturating power law, ``acc(n) = a - b * n^(-c)`` (the usual form of learning curves: Hestness et
al. 2017, "Deep Learning Scaling is Predictable, Empirically"; Figueroa et al. 2012 for small-sample
classification), is fitted to the mean accuracy per size, and extrapolated to 2x and 4x the current data with an
80 % interval from a bootstrap over the seeds' runs. With fewer than four sizes the exponent is fixed at 0.5 (the
rate of a well-specified parametric model) and only ``a`` and ``b`` are fitted; with fewer than two, nothing is
extrapolated. These are probe accuracies: a fine-tuned model usually ends above them, rarely below.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .findings import Finding

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
SEEDS = 3
HOLDOUT = 0.25
FACTORS = (2.0, 4.0)
FIXED_EXPONENT = 0.5
BOOTSTRAP = 200
MAX_EXAMPLES = 5000  # beyond this, fit skips the curve (``graftwork advise`` measures it on request)


@dataclass
class CurvePoint:
    """Probe accuracy with ``n`` training examples: the mean over seeds, and each seed's run."""

    n: int
    accuracy: float
    runs: list[float] = field(default_factory=list)


@dataclass
class Projection:
    factor: float
    examples: int
    per_class: int  # median examples per class, as the plan counts them
    accuracy: float
    low: float
    high: float
    strategy: str  # what ``auto`` would choose with that much data
    # accuracy minus the curve's value at today's size: what more data adds (the projection's more reliable part:
    # 2 points off on average against real 2x / 4x data, where the level was 3.7 off; bench/curve_extrapolation.py)
    gain: float | None = None

    def gain_text(self) -> str:
        return f"{self.gain * 100:+.1f} points over now, " if self.gain is not None else ""


@dataclass
class LearningCurve:
    points: list[CurvePoint]
    params: dict[str, float] | None  # a, b, c of acc(n) = a - b * n^(-c)
    method: str
    current: int  # labelled examples now
    projections: list[Projection] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LearningCurve:
        return cls(points=[CurvePoint(**p) for p in d["points"]], params=d.get("params"), method=d["method"],
                   current=d["current"], projections=[Projection(**p) for p in d.get("projections", [])],
                   note=d.get("note", ""))

    def describe(self) -> list[str]:
        """Lines for the console: what was measured, and what 2x / 4x the data would give."""
        measured = ", ".join(f"{p.n}: {p.accuracy:.3f}" for p in self.points)
        lines = [f"learning curve (linear probe, examples: accuracy): {measured}"]
        for p in self.projections:
            lines.append(f"  with {p.factor:g}x the data ({p.examples} examples, ~{p.per_class} per class): "
                         f"expected probe accuracy {p.accuracy:.3f} ({p.gain_text()}80% interval "
                         f"{p.low:.3f}-{p.high:.3f}); "
                         f"auto would choose {p.strategy}")
        if self.note:
            lines.append(f"  note: {self.note}")
        return lines

    def finding(self) -> Finding:
        if not self.projections:
            return Finding("learning-curve", "info", f"learning curve: {self.note or 'not extrapolated'}")
        first = self.projections[0]
        return Finding("learning-curve", "info",
                       f"with {first.factor:g}x the data expect probe accuracy {first.accuracy:.3f} "
                       f"({first.gain_text()}{first.low:.3f}-{first.high:.3f}); auto would choose {first.strategy}",
                       advice="more data is worth collecting when the expected gain beats its cost",
                       value=first.accuracy, metric=f"expected accuracy at {first.factor:g}x data",
                       details={"method": self.method, "params": self.params,
                                "projections": [asdict(p) for p in self.projections]})


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def _power_law_jacobian(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """d(power_law)/d(a, b, c): given to the solver, which otherwise differentiates numerically (3x the calls)."""
    t = np.power(n, -c)
    return np.stack([np.ones_like(n), -t, b * t * np.log(n)], axis=1)


def fit_power_law(n: np.ndarray, acc: np.ndarray, sigma: np.ndarray | None = None) -> tuple[dict[str, float], str] | None:
    """Fit ``acc(n) = a - b n^-c`` with ``0 <= a <= 1``, ``b >= 0``, ``0.05 <= c <= 2``; None when impossible.

    Four or more distinct sizes fit all three parameters; two or three fix ``c`` at 0.5; a failed three-parameter
    fit falls back to the fixed exponent too."""
    from scipy.optimize import curve_fit

    n, acc = np.asarray(n, dtype=float), np.asarray(acc, dtype=float)
    if len(np.unique(n)) < 2:
        return None
    top = float(min(1.0, acc.max() + 0.02))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(np.unique(n)) >= 4:
            try:
                p, _ = curve_fit(power_law, n, acc, p0=(top, max(top - acc.min(), 1e-3) * n.min() ** 0.5, 0.5),
                                 jac=_power_law_jacobian,
                                 sigma=sigma, bounds=([0, 0, 0.05], [1, np.inf, 2]), maxfev=20000)
                return {"a": float(p[0]), "b": float(p[1]), "c": float(p[2])}, "power law"
            except (RuntimeError, ValueError):
                pass
        try:
            fixed = lambda x, a, b: power_law(x, a, b, FIXED_EXPONENT)  # noqa: E731
            fixed_jac = lambda x, a, b: _power_law_jacobian(x, a, b, FIXED_EXPONENT)[:, :2]  # noqa: E731
            p, _ = curve_fit(fixed, n, acc, p0=(top, 1.0), jac=fixed_jac, sigma=sigma, bounds=([0, 0], [1, np.inf]),
                             maxfev=20000)
        except (RuntimeError, ValueError):
            return None
    return ({"a": float(p[0]), "b": float(p[1]), "c": FIXED_EXPONENT},
            f"power law, exponent fixed at {FIXED_EXPONENT} (fewer than 4 sizes, or the full fit failed)")


EXPONENTS = np.round(np.arange(0.05, 2.0 + 1e-9, 0.01), 2)  # the exponents the bootstrap's fits choose among


def bootstrap_fits(n: np.ndarray, samples: np.ndarray, exponents: np.ndarray = EXPONENTS) -> list[dict[str, float]]:
    """Least-squares fits of ``a - b n^-c`` (``0 <= a <= 1``, ``b >= 0``) to each row of ``samples`` at once.

    For a given ``c`` the best ``a, b`` are a linear least-squares solution (clipped to the bounds), so each
    row's fit is the best over a fine grid of ``c``: vectorised over every row and every ``c``, where one
    ``curve_fit`` per bootstrap sample cost about a second per fit for 200 samples."""
    t = np.power(n[None, :], -exponents[:, None])  # [c, sizes]
    t_mean = t.mean(1, keepdims=True)
    t_dev = t - t_mean
    y_mean = samples.mean(1)  # [samples]
    slope = (t_dev @ (samples - y_mean[:, None]).T) / np.maximum((t_dev ** 2).sum(1, keepdims=True), 1e-300)
    b = np.maximum(-slope, 0.0)  # [c, samples]
    a = y_mean[None, :] + b * t_mean  # the mean of the fit equals the mean of the data
    # a above 1 (or below 0): a at the bound, b the least-squares slope from it
    tt = (t ** 2).sum(1, keepdims=True)
    for bound, mask in ((1.0, a > 1.0), (0.0, a < 0.0)):
        if mask.any():
            b_at = np.maximum((t @ (bound - samples).T) / tt, 0.0)
            a, b = np.where(mask, bound, a), np.where(mask, b_at, b)
    sse = ((a[:, :, None] - b[:, :, None] * t[:, None, :] - samples[None, :, :]) ** 2).sum(-1)
    best = sse.argmin(0)
    cols = np.arange(samples.shape[0])
    return [{"a": float(a[i, j]), "b": float(b[i, j]), "c": float(exponents[i])} for i, j in zip(best, cols, strict=True)]


def predict(params: dict[str, float], n: float) -> float:
    return float(np.clip(power_law(np.array([n], dtype=float), params["a"], params["b"], params["c"])[0], 0, 1))


def project(points: list[CurvePoint], current: int, scaled_strategy: Any, *, factors: tuple[float, ...] = FACTORS,
            seed: int = 0) -> LearningCurve:
    """Fit the curve to ``points`` and project it to ``factors`` x ``current`` examples.

    ``scaled_strategy(factor)`` returns (median examples per class, strategy auto would choose) at that size."""
    ns = np.array([p.n for p in points], dtype=float)
    means = np.array([p.accuracy for p in points])
    fitted = fit_power_law(ns, means) if len(points) else None
    if fitted is None:
        return LearningCurve(points, None, "none", current,
                             note="fewer than two subset sizes could be measured: nothing to extrapolate")
    params, method = fitted
    rng = np.random.default_rng(seed)
    boots: list[dict[str, float]] = []
    if all(len(p.runs) >= 2 for p in points):
        # resample each size's runs (the spread the seeds' splits show), and each run's score as a binomial draw
        # on its held-out examples (a run is scored on a quarter of the data: on small data its own noise is
        # most of the uncertainty, and the seeds' 3 runs alone understated it: bench/curve_extrapolation.py);
        # each resample is fitted as the means were (the exponent free, or fixed when the means' fit fixed it)
        held = max(1, math.ceil(HOLDOUT * current))
        samples = np.array([[np.mean(rng.binomial(held, rng.choice(p.runs, size=len(p.runs))) / held)
                             for p in points] for _ in range(BOOTSTRAP)])
        exponents = EXPONENTS if method == "power law" else np.array([params["c"]])
        boots = bootstrap_fits(ns, samples, exponents)
    last = means[-1]
    curve = LearningCurve(points, params, method, current)
    for factor in factors:
        n = current * factor
        # a saturating curve does not fall: never project below what the largest subset measured
        acc = max(predict(params, n), float(last))
        sims = [max(predict(b, n), float(last)) for b in boots] or [acc]
        per_class, strategy = scaled_strategy(factor)
        curve.projections.append(Projection(factor, int(round(n)), per_class, acc,
                                            float(min(np.percentile(sims, 10), acc)),
                                            float(max(np.percentile(sims, 90), acc)), strategy,
                                            gain=acc - predict(params, current)))
    if not boots:
        curve.note = "one run per size: no interval (the interval is the prediction itself)"
    return curve


def _nested_subsets(y: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Stratified nested index sets: each class's examples in one random order, the first share of each."""
    orders = {c: rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)}
    return [np.sort(np.concatenate([o[:max(1, math.ceil(f * len(o)))] for o in orders.values()]))
            for f in fractions]


def measure(x: np.ndarray, y: np.ndarray, *, c: float, features: str = "standardised",
            fractions: tuple[float, ...] = FRACTIONS, seeds: int = SEEDS, seed: int = 0,
            class_weights: list[float] | None = None) -> list[CurvePoint]:
    """Accuracy of the probe (C ``c`` on ``features``) on nested stratified subsets; each seed holds out its own
    stratified quarter to score on."""
    import torch
    from sklearn.model_selection import train_test_split

    from ..strategies.head import LinearHead, fit_probe

    classes = int(y.max()) + 1
    runs: dict[int, list[float]] = {}
    for s in range(seeds):
        try:
            pool, held = train_test_split(np.arange(len(y)), test_size=HOLDOUT, stratify=y, random_state=seed + s)
        except ValueError:  # a class with a single example cannot be stratified
            return []
        rng = np.random.default_rng(seed + s)
        for subset in _nested_subsets(y[pool], fractions, rng):
            idx = pool[subset]
            if len(np.unique(y[idx])) < 2:
                continue
            head = LinearHead(x.shape[1], classes)
            fit_probe(head, x[idx], y[idx], c=c, features=features, class_weights=class_weights)
            with torch.no_grad():
                pred = head.eval()(torch.from_numpy(x[held]).float()).numpy()
            runs.setdefault(len(idx), []).append(float(np.mean(pred.argmax(1) == y[held])))
    return [CurvePoint(n, float(np.mean(r)), r) for n, r in sorted(runs.items())]


def learning_curve(x: np.ndarray, y: np.ndarray, class_counts: dict[str, int], *, c: float,
                   features: str = "standardised", modality: str | None = None,
                   backbone_params: int | None = None, seed: int = 0,
                   class_weights: list[float] | None = None) -> LearningCurve:
    """Measure the probe's learning curve on features ``x`` (labels ``y``) and project it to 2x and 4x the data.

    ``class_counts`` are the training examples per class as the plan counts them, scaled to say which strategy
    ``auto`` would choose with more data."""
    from ..strategies.plan import make_plan

    def scaled_strategy(factor: float) -> tuple[int, str]:
        scaled = {k: int(round(v * factor)) for k, v in class_counts.items()}
        plan = make_plan("auto", scaled, backbone_params=backbone_params, modality=modality)
        return int(np.median(list(scaled.values()))), plan.strategy

    points = measure(x, y, c=c, features=features, seed=seed, class_weights=class_weights)
    return project(points, len(y), scaled_strategy, seed=seed)


def curve_for_fit(xs: list[np.ndarray], ys: list[np.ndarray], class_counts: dict[str, int], *, c: float,
                  features: str = "standardised", modality: str | None, backbone_params: int | None, seed: int = 0,
                  class_weights: list[float] | None = None) -> LearningCurve | None:
    """The learning curve ``fit`` records, on its training + validation features; None above ``MAX_EXAMPLES``
    examples (seconds there would become minutes: ``graftwork advise`` measures it on request)."""
    y = np.concatenate(ys)
    if len(y) > MAX_EXAMPLES or len(np.unique(y)) < 2:
        return None
    return learning_curve(np.concatenate(xs), y, class_counts, c=c, features=features, modality=modality,
                          backbone_params=backbone_params, seed=seed, class_weights=class_weights)
