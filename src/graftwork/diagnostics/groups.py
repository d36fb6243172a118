"""Inherited bias: does the model work equally well for every group of examples?

A pretrained backbone carries the biases of the data it was trained on, and fine-tuning on a small dataset
rarely removes them. Given a group for each evaluation example (a column of the text CSV, or a manifest for an
image folder), :func:`group_metrics` measures accuracy, macro F1, and per-class true/false positive rates
(one-vs-rest) in each group, with percentile-bootstrap confidence intervals, and the calibration (ECE) of the
predicted probabilities overall and per group. It reports the worst gap between groups (accuracy, and the largest
TPR or FPR gap of any class, in the spirit of equalized odds) and whether that gap is larger than chance.

Thresholds (all parameters, with these defaults):

* ``gap_threshold = 0.05``: a gap of 5 points of accuracy (or of a class's TPR/FPR) is a warning, 10 points
  (twice the threshold) is high. Smaller gaps are within the run-to-run spread of fine-tuning on a few
  thousand examples; a 10-point gap is a difference between groups that few applications can accept.
  A gap is only reported as a warning or high when it is also *significant*: the bootstrap confidence interval
  of the difference between the best and the worst group excludes 0, at level ``alpha`` Bonferroni-adjusted
  for the number of comparisons made (picking the best and worst of many groups otherwise finds a "gap" in
  pure noise).
* ``min_group = 30``: with fewer examples an accuracy of 0.8 has a standard error of about 0.07, so only gaps
  larger than ~15 points could be seen; such groups are reported but marked too small to judge and left out of
  the gap. A class's TPR (FPR) is only compared between groups that hold at least :data:`MIN_RATE_SUPPORT`
  examples of that class (not of that class).
* :data:`ECE_THRESHOLD` ``= 0.1``: expected calibration error (Guo et al. 2017: 15 equal-width bins of the
  top-class probability, the bin-size-weighted mean of ``|accuracy - mean confidence|``). Above 0.1 the
  model's stated confidence is off by 10 points on average, enough to mislead any decision threshold; well
  calibrated models are usually under 0.05. ECE is biased upwards on few examples, so it is only flagged when
  it is also above what a perfectly calibrated model with the same confidences would show 95% of the time
  (consistency resampling: labels drawn as Bernoulli(confidence)).

Groups are read by :mod:`.group_files` (:func:`read_text_groups`, :func:`read_image_groups`,
:func:`read_groups`), whose names this module re-exports for its callers.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from .findings import SEVERITIES, Finding
from .group_files import read_groups, read_image_groups, read_text_groups

ECE_THRESHOLD = 0.1
ECE_BINS = 15
MIN_RATE_SUPPORT = 10  # positives (TPR) / negatives (FPR) a group needs for a class's rate to be compared
_CELLS_PER_CHUNK = 2_000_000  # bootstrap resamples are drawn in chunks of at most this many indices


# ---------------------------------------------------------------------------------------------- bootstrap


def _rng(seed: int, name: str) -> np.random.Generator:
    """A generator per group, keyed on its name: a group's intervals do not change when other groups do."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _counts(t: np.ndarray, p: np.ndarray, k: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample (rows of ``idx``): true positives, support and predicted count of each of ``k`` classes."""
    b = idx.shape[0]
    offset = (np.arange(b) * k)[:, None]
    tt, pp = t[idx] + offset, p[idx] + offset
    tp = np.bincount(tt[pp == tt], minlength=b * k).reshape(b, k)
    support = np.bincount(tt.ravel(), minlength=b * k).reshape(b, k)
    predicted = np.bincount(pp.ravel(), minlength=b * k).reshape(b, k)
    return tp, support, predicted


def _rates(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray, n: int,
           f1_classes: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, macro F1 (over ``f1_classes``), TPR and FPR per class from per-resample counts (NaN: undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / support
        negatives = n - support
        fpr = (predicted - tp) / negatives
        denom = support + predicted  # 2TP + FP + FN
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)  # 0/0 -> 0, as sklearn's zero_division=0
    macro = f1[:, f1_classes].mean(axis=1) if f1_classes.size else np.full(tp.shape[0], np.nan)
    return {"accuracy": tp.sum(axis=1) / n, "macro_f1": macro, "tpr": tpr, "fpr": fpr}


def _bootstrap(t: np.ndarray, p: np.ndarray, k: int, n_boot: int, rng: np.random.Generator,
               f1_classes: np.ndarray) -> dict[str, np.ndarray]:
    n = len(t)
    chunk = max(1, min(n_boot, _CELLS_PER_CHUNK // max(n, k)))
    parts = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        parts.append(_rates(*_counts(t, p, k, idx), n, f1_classes))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _ci(samples: np.ndarray, alpha: float) -> list[float | None]:
    s = samples[~np.isnan(samples)]
    if s.size == 0:
        return [None, None]
    lo, hi = np.percentile(s, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# -------------------------------------------------------------------------------------------- calibration


def _ece_batch(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """ECE of each row of ``correct`` (shape (b, n)) for the confidences ``conf`` (shape (n,))."""
    n = conf.shape[0]
    edges = np.linspace(0.0, 1.0, bins + 1)  # bins ((m-1)/M, m/M]; a confidence of 0 goes to the first
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    b = correct.shape[0]
    flat = (which[None, :] + (np.arange(b) * bins)[:, None]).ravel()
    hits = np.bincount(flat, weights=correct.ravel().astype(float), minlength=b * bins).reshape(b, bins)
    return np.abs(hits - conf_sum[None, :]).sum(axis=1) / n  # sum_m |B_m|/n * |acc_m - conf_m|


def expected_calibration_error(proba: np.ndarray, y_true_index: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE (Guo et al. 2017): 15 equal-width bins of the top-class probability; the top class is the prediction.

    ``proba`` has one row per example and one column per class; ``y_true_index`` the column of the true class
    (-1 for a label with no column, which counts as a mistake).
    """
    proba = np.asarray(proba, dtype=float)
    if proba.shape[0] == 0:
        return float("nan")
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true_index)
    return float(_ece_batch(conf, correct[None, :], bins)[0])


def _ece_chance(conf: np.ndarray, n_boot: int, rng: np.random.Generator, q: float) -> float:
    """The ``q`` quantile of the ECE a perfectly calibrated model with confidences ``conf`` would show."""
    n = conf.shape[0]
    chunk = max(1, min(n_boot, _CELLS_PER_CHUNK // max(n, 1)))
    eces = [_ece_batch(conf, rng.random((min(chunk, n_boot - s), n)) < conf[None, :])
            for s in range(0, n_boot, chunk)]
    return float(np.quantile(np.concatenate(eces), q))


# ------------------------------------------------------------------------------------------------ metrics


def _gap(name: str, rate: str, values: dict[str, float], boots: dict[str, np.ndarray], alpha: float,
         comparisons: int, threshold: float) -> dict[str, Any]:
    best = max(values, key=lambda g: (values[g], g))
    worst_ = min(values, key=lambda g: (values[g], g))
    diff = boots[best] - boots[worst_]
    a = alpha / max(comparisons, 1)
    lo, hi = _ci(diff, a)
    gap = values[best] - values[worst_]
    significant = lo is not None and lo > 0  # the best group's value is never below the worst's
    severity = "high" if significant and gap > 2 * threshold else "warning" if significant and gap > threshold \
        else "info"
    return {"metric": name, "rate": rate, "gap": gap, "best": best, "worst": worst_,
            "best_value": values[best], "worst_value": values[worst_], "ci": [lo, hi],
            "alpha_adjusted": a, "comparisons": comparisons, "significant": bool(significant),
            "exceeds_threshold": bool(gap > threshold), "severity": severity}


_RATE_WORDS = {"accuracy": "accuracy", "tpr": "true positive rate (recall)", "fpr": "false positive rate"}


def _describe(gap: dict[str, Any]) -> str:
    what = _RATE_WORDS[gap["rate"]]
    if gap["rate"] != "accuracy":
        what += f" of class {gap['metric'].split(':', 1)[1]!r}"
    lo, hi = gap["ci"]
    ci = f"; {100 * (1 - gap['alpha_adjusted']):.3g}% CI of the gap {lo:.3f} to {hi:.3f}" if lo is not None else ""
    return (f"{what} is {gap['worst_value']:.3f} for group {gap['worst']!r} but {gap['best_value']:.3f} for group "
            f"{gap['best']!r} (gap {gap['gap']:.3f}{ci})")


def group_metrics(y_true: list[str], y_pred: list[str], proba: np.ndarray | None, classes: list[str],
                  groups: list[str], *, n_boot: int = 1000, seed: int = 0, gap_threshold: float = 0.05,
                  min_group: int = 30, alpha: float = 0.05) -> tuple[dict[str, Any], list[Finding]]:
    """Per-group metrics with bootstrap confidence intervals, the worst gap between groups, and calibration.

    ``proba`` (optional) has one column per entry of ``classes``, in that order. Returns a JSON-able dict
    (``groups``: per group ``n``, ``judged``, ``accuracy``/``macro_f1`` as ``{"value", "ci"}``, ``per_class``
    TPR/FPR; ``gaps``; ``worst_gap``; ``too_small``; ``calibration``; the settings) and findings
    ``group-gap``, ``group-too-small`` (when any group is), ``miscalibrated`` and ``group-calibration-gap``
    (when ``proba`` is given).
    """
    n = len(y_true)
    if n == 0:
        raise ValueError("group_metrics needs at least one example")
    if not (len(y_pred) == n and len(groups) == n):
        raise ValueError(f"y_true, y_pred and groups must have the same length; got {n}, {len(y_pred)}, "
                         f"{len(groups)}")
    if proba is not None:
        proba = np.asarray(proba, dtype=float)
        if proba.shape != (n, len(classes)):
            raise ValueError(f"proba must have shape ({n}, {len(classes)}) (examples, classes); got {proba.shape}")
    labels = list(classes) + sorted((set(y_true) | set(y_pred)) - set(classes))
    index = {c: i for i, c in enumerate(labels)}
    k = len(labels)
    t = np.array([index[y] for y in y_true], dtype=np.int64)
    p = np.array([index[y] for y in y_pred], dtype=np.int64)
    g = np.asarray(groups, dtype=object)
    names = sorted(set(groups))

    report: dict[str, Any] = {}
    boots: dict[str, dict[str, np.ndarray]] = {}
    points: dict[str, dict[str, np.ndarray]] = {}
    too_small = []
    for name in names:
        members = np.flatnonzero(g == name)
        gt, gp = t[members], p[members]
        m = len(members)
        f1_classes = np.unique(gt)  # macro F1 over the classes present, as metrics.classification_metrics
        point = _rates(*_counts(gt, gp, k, np.arange(m)[None, :]), m, f1_classes)
        boot = _bootstrap(gt, gp, k, n_boot, _rng(seed, name), f1_classes)
        points[name], boots[name] = point, boot
        support = np.bincount(gt, minlength=k)
        judged = m >= min_group
        if not judged:
            too_small.append(name)
        per_class = {}
        for c, label in enumerate(labels):
            if support[c] == 0 and not (gp == c).any() and label not in classes:
                continue
            per_class[label] = {
                "support": int(support[c]),
                "tpr": {"value": _num(point["tpr"][0, c]), "ci": _ci(boot["tpr"][:, c], alpha)},
                "fpr": {"value": _num(point["fpr"][0, c]), "ci": _ci(boot["fpr"][:, c], alpha)},
            }
        report[name] = {
            "n": m, "judged": judged,
            "accuracy": {"value": float(point["accuracy"][0]), "ci": _ci(boot["accuracy"], alpha)},
            "macro_f1": {"value": _num(point["macro_f1"][0]), "ci": _ci(boot["macro_f1"], alpha)},
            "per_class": per_class,
        }

    # ---- gaps between the groups large enough to judge
    judged_names = [nm for nm in names if report[nm]["judged"]]
    gaps: dict[str, Any] = {"accuracy": None, "tpr": {}, "fpr": {}}
    candidates: list[dict[str, Any]] = []
    if len(judged_names) >= 2:
        pairs = len(judged_names) * (len(judged_names) - 1) // 2
        gaps["accuracy"] = _gap("accuracy", "accuracy", {nm: float(points[nm]["accuracy"][0]) for nm in judged_names},
                                {nm: boots[nm]["accuracy"] for nm in judged_names}, alpha, pairs, gap_threshold)
        candidates.append(gaps["accuracy"])
        rate_sets = []
        for rate in ("tpr", "fpr"):
            for c, label in enumerate(labels):
                eligible = []
                for nm in judged_names:
                    sup = report[nm]["per_class"].get(label, {}).get("support", 0)
                    denom = sup if rate == "tpr" else report[nm]["n"] - sup
                    if denom >= MIN_RATE_SUPPORT:
                        eligible.append(nm)
                if len(eligible) >= 2:
                    rate_sets.append((rate, c, label, eligible))
        rate_pairs = sum(len(e) * (len(e) - 1) // 2 for *_, e in rate_sets)  # Bonferroni over all rate comparisons
        for rate, c, label, eligible in rate_sets:
            gap = _gap(f"{rate}:{label}", rate, {nm: float(points[nm][rate][0, c]) for nm in eligible},
                       {nm: boots[nm][rate][:, c] for nm in eligible}, alpha, rate_pairs, gap_threshold)
            gaps[rate][label] = gap
            candidates.append(gap)
    worst_gap = max(candidates, key=lambda d: (SEVERITIES.index(d["severity"]), d["gap"]), default=None)

    findings: list[Finding] = []
    if worst_gap is None:
        findings.append(Finding(
            "group-gap", "info",
            f"cannot compare groups: {len(judged_names)} of {len(names)} group(s) have at least {min_group} "
            "examples, and a comparison needs two.",
            advice=f"evaluate on more examples per group (at least {min_group} each) to check for a bias.",
            details={"groups": {nm: report[nm]["n"] for nm in names}}))
    else:
        severity = worst_gap["severity"]
        details = {"gap": worst_gap, "groups": {nm: report[nm]["n"] for nm in judged_names}}
        if severity == "info":
            why = ("within the threshold" if not worst_gap["exceeds_threshold"]
                   else "above the threshold, but not larger than chance on this many examples")
            findings.append(Finding(
                "group-gap", "info",
                f"no clear difference between groups: the largest gap ({worst_gap['metric']}, "
                f"{worst_gap['gap']:.3f}) is {why} ({gap_threshold:g}).",
                advice="" if not worst_gap["exceeds_threshold"] else
                "evaluate on more examples per group to tell whether this gap is real.",
                value=worst_gap["gap"], metric=f"{worst_gap['metric']} gap", details=details))
        else:
            findings.append(Finding(
                "group-gap", severity,  # type: ignore[arg-type]
                f"the model works worse for group {worst_gap['worst']!r}: {_describe(worst_gap)}.",
                advice=(f"the bias may be inherited from the pretrained backbone or come from the data: compare how "
                        f"many training examples each group has, add labelled examples of group "
                        f"{worst_gap['worst']!r}, or reweight/oversample it, and check the labels of that group; "
                        f"do not deploy for group {worst_gap['worst']!r} without checking."),
                value=worst_gap["gap"], metric=f"{worst_gap['metric']} gap", details=details))
    if too_small:
        sizes = {nm: report[nm]["n"] for nm in too_small}
        findings.append(Finding(
            "group-too-small", "warning" if len(judged_names) < 2 else "info",
            f"{len(too_small)} group(s) have fewer than {min_group} examples and were not judged: "
            + ", ".join(f"{nm!r} ({sizes[nm]})" for nm in too_small[:10])
            + (f" and {len(too_small) - 10} more" if len(too_small) > 10 else "") + ".",
            advice=f"their metrics are reported but too uncertain to compare; evaluate on at least {min_group} "
                   "examples of each group.",
            value=float(len(too_small)), metric="groups too small", details={"groups": sizes}))

    calibration = None
    if proba is not None:
        calibration, cal_findings = _calibration(proba, t, g, names, judged_names, n_boot, seed, alpha,
                                                 gap_threshold)
        findings += cal_findings

    out = {
        "n": n, "classes": labels,
        "settings": {"n_boot": n_boot, "seed": seed, "gap_threshold": gap_threshold, "min_group": min_group,
                     "alpha": alpha, "min_rate_support": MIN_RATE_SUPPORT, "ece_threshold": ECE_THRESHOLD,
                     "ece_bins": ECE_BINS},
        "groups": report, "gaps": gaps, "worst_gap": worst_gap, "too_small": too_small,
        "calibration": calibration,
    }
    return out, findings


def _calibration(proba: np.ndarray, t: np.ndarray, g: np.ndarray, names: list[str], judged_names: list[str],
                 n_boot: int, seed: int, alpha: float, gap_threshold: float) -> tuple[dict[str, Any], list[Finding]]:
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == t  # labels without a column of proba have index >= k: always wrong
    overall = float(_ece_batch(conf, correct[None, :])[0])
    chance = _ece_chance(conf, n_boot, _rng(seed, "\0calibration"), 1 - alpha)
    per_group = {}
    for name in names:
        members = np.flatnonzero(g == name)
        c = conf[members]
        per_group[name] = {"n": len(members), "judged": name in judged_names,
                           "ece": float(_ece_batch(c, correct[members][None, :])[0]),
                           "chance_level": _ece_chance(c, n_boot, _rng(seed, "\0calibration\0" + name), 1 - alpha)}
    calibration = {"ece": overall, "chance_level": chance, "threshold": ECE_THRESHOLD, "bins": ECE_BINS,
                   "mean_confidence": float(conf.mean()) if len(conf) else None,
                   "accuracy": float(correct.mean()) if len(conf) else None, "per_group": per_group}

    findings = []
    bad = overall > ECE_THRESHOLD and overall > chance
    direction = ("overconfident" if calibration["mean_confidence"] > calibration["accuracy"] else "underconfident") \
        if len(conf) else ""
    findings.append(Finding(
        "miscalibrated", "warning" if bad else "info",
        (f"the predicted probabilities are {direction}: mean confidence {calibration['mean_confidence']:.3f}, "
         f"accuracy {calibration['accuracy']:.3f} (ECE {overall:.3f} > {ECE_THRESHOLD:g})." if bad else
         f"the predicted probabilities are calibrated well enough (ECE {overall:.3f}; threshold {ECE_THRESHOLD:g}, "
         f"chance level {chance:.3f})."),
        advice=("do not read the probabilities as confidences as they are; calibrate them on held-out data "
                "(temperature scaling) before using a threshold." if bad else ""),
        value=overall, metric="ECE", details={k: v for k, v in calibration.items() if k != "per_group"}))

    judged = {nm: per_group[nm] for nm in judged_names}
    if judged:
        best = min(judged, key=lambda nm: (judged[nm]["ece"], nm))
        off = [nm for nm, d in judged.items()
               if d["ece"] > ECE_THRESHOLD and d["ece"] > d["chance_level"]
               and d["ece"] - judged[best]["ece"] > gap_threshold]
        worst_ = max(judged, key=lambda nm: (judged[nm]["ece"], nm))
        spread = judged[worst_]["ece"] - judged[best]["ece"]
        details = {"per_group": {nm: {"ece": d["ece"], "chance_level": d["chance_level"], "n": d["n"]}
                                 for nm, d in judged.items()}}
        if off:
            findings.append(Finding(
                "group-calibration-gap", "warning",
                "the probabilities are miscalibrated for group(s) "
                + ", ".join(f"{nm!r} (ECE {judged[nm]['ece']:.3f})" for nm in off)
                + f", against ECE {judged[best]['ece']:.3f} for group {best!r}.",
                advice="the model's confidence means something different for these groups; calibrate per group or "
                       "add labelled examples of them before relying on its probabilities.",
                value=spread, metric="ECE gap", details=details))
        else:
            findings.append(Finding(
                "group-calibration-gap", "info",
                f"no group is markedly worse calibrated than the others (ECE from {judged[best]['ece']:.3f} to "
                f"{judged[worst_]['ece']:.3f}).",
                value=spread, metric="ECE gap", details=details))
    return calibration, findings


__all__ = ["ECE_THRESHOLD", "expected_calibration_error", "group_metrics", "read_groups", "read_image_groups",
           "read_text_groups"]
