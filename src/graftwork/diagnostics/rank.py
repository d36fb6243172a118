"""``rank``: which of several backbones suits a dataset, measured on frozen features before any training.

For each candidate the training data (train + val when the data have a val split; never test) go through the
frozen backbone once (features are cached on disk as for ``fit``), then three scores are computed on the same
examples: LogME (the ranking key: cheap, and in its paper it orders models as fine-tuning does), the
cross-validated linear-probe accuracy and the cosine-kNN accuracy (:mod:`.transferability`). The time of each
step is recorded, so the ranking can be weighed against cost.

A candidate named ``random:NAME`` is NAME with random weights (seeded, with the preprocessing of NAME when NAME
is a candidate too): a control. When it scores as well as the pretrained candidates, pretraining is not helping
on these data (finding ``pretrained-not-helping``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbones import Backbone, build_backbone
from ..backbones.registry import parse_name
from ..backbones.vision import ImageBackbone
from ..console import SILENT, Console
from ..data import Examples, load_data
from ..errors import ConfigError, DataError, WeightsError
from .findings import Finding
from .mismatch import PAIRED_Z, compare_to_random, match_preprocessing
from .transferability import knn_predictions, linear_probe_predictions, logme, paired_gap

RANDOM_PREFIX = "random:"


@dataclass
class RankedBackbone:
    """One candidate's scores and timings (seconds)."""

    name: str
    random_init: bool
    feature_dim: int
    logme: float
    probe_accuracy: float  # NaN when a class has fewer than 2 examples
    knn_accuracy: float
    extract_s: float
    logme_s: float
    probe_s: float
    knn_s: float
    computed: int  # examples that went through the backbone (the rest came from the cache)
    from_cache: int
    weights: str
    rank: int = 0


@dataclass
class Ranking:
    """Candidates ordered by LogME (best first), with findings about the comparison."""

    data: str
    modality: str
    classes: list[str]
    examples: int
    rows: list[RankedBackbone]
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ranked_by: str = "logme"

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {"data": self.data, "modality": self.modality, "classes": self.classes,
                "examples": self.examples, "ranked_by": self.ranked_by,
                "backbones": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows],
                "findings": [f.to_dict() for f in self.findings], "skipped": self.skipped}


def parse_candidates(names: list[str] | str) -> list[str]:
    """Candidate names from a list or a comma-separated string; checked before anything is built."""
    if isinstance(names, str):
        names = names.split(",")
    out = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not out:
        raise ConfigError("'backbones': no backbone names given.",
                          hint="e.g. --backbones torchvision:mobilenet_v2,timm:efficientnet_b0")
    for name in out:
        parse_name(name.removeprefix(RANDOM_PREFIX))
    return out


def _build(name: str, image_size: int | None, seed: int) -> Backbone:
    random_init = name.startswith(RANDOM_PREFIX)
    torch.manual_seed(seed)
    try:
        backbone = build_backbone(name.removeprefix(RANDOM_PREFIX), pretrained=not random_init)
    except WeightsError as e:  # its hint names fit's --no-pretrained; here the way is the random: prefix
        hint = (e.hint or "").replace("To train on purpose from random weights, pass --no-pretrained.",
                                      f"To rank it with random weights on purpose (a control), name it "
                                      f"{RANDOM_PREFIX}{name}.")
        raise WeightsError(e.message, hint=hint, problems=e.problems) from None
    if image_size is not None and isinstance(backbone, ImageBackbone):
        backbone.set_image_size(image_size)
    return backbone


def _concat(train: Examples, val: Examples | None) -> Examples:
    if val is None:
        return train
    return Examples(train.modality, train.items + val.items, train.labels + val.labels,
                    train.origins + val.origins)


def rank_backbones(data: str | Path, backbones: list[str] | str, *, image_size: int | None = None,
                   device: str = "auto", use_cache: bool = True, cache_dir: str | None = None,
                   batch_size: int = 32, workers: int = 0, seed: int = 0, text_column: str = "text",
                   label_column: str = "label", console: Console = SILENT) -> Ranking:
    """Score each of ``backbones`` on the training data at ``data`` and rank them by LogME.

    All candidates are built before any features are extracted, so a wrong name or missing weights fail at
    once. Examples that cannot be read are skipped (and listed); all candidates are scored on the same
    examples.
    """
    from ..features import resolve_device

    names = parse_candidates(backbones)
    splits = load_data(data, skip_bad_files=True, text_column=text_column, label_column=label_column)
    examples = _concat(splits.train, splits.val)
    built = {name: _build(name, image_size, seed) for name in names}
    for name, backbone in built.items():
        if name.startswith(RANDOM_PREFIX) and (reference := built.get(name.removeprefix(RANDOM_PREFIX))):
            match_preprocessing(backbone, reference)
        if backbone.modality != splits.modality:
            raise DataError(f"{splits.source} holds {splits.modality} data but {name} is a "
                            f"{backbone.modality} backbone.",
                            hint=f"rank {splits.modality} backbones only (`graftwork backbones`).")
    skipped = list(splits.skipped)
    extracted = {name: _extract(backbone, examples, cache_dir=cache_dir,
                                use_cache=use_cache, device=resolve_device(device), batch_size=batch_size,
                                workers=workers, console=console, problems=skipped)
                 for name, backbone in built.items()}
    if skipped:
        console.warn(f"skipped {len(skipped)} unreadable input(s); all candidates are scored without them")
    ok = np.logical_and.reduce([e["ok"] for e in extracted.values()])
    labels = np.asarray(examples.labels)[ok]
    if len(set(labels.tolist())) < 2:
        raise DataError(f"{splits.source}: fewer than two classes have readable examples.",
                        hint="check the data (unreadable files are listed with --json).")
    rows, preds = [], {}
    for name, e in extracted.items():
        row, preds[name] = _score(name, e["features"][ok[e["ok"]]], labels, seed)
        rows.append(RankedBackbone(**row, extract_s=round(e["seconds"], 3), computed=e["computed"],
                                   from_cache=e["from_cache"], weights=built[name].info.weights))
    rows.sort(key=lambda r: r.logme, reverse=True)
    for i, r in enumerate(rows, 1):
        r.rank = i
    return Ranking(splits.source, splits.modality, splits.classes, int(ok.sum()), rows,
                   _findings(rows, preds, labels), skipped)


def _extract(backbone: Backbone, examples: Examples, *, cache_dir: str | None, use_cache: bool,
             device: torch.device, batch_size: int, workers: int, console: Console,
             problems: list[str]) -> dict[str, Any]:
    """Frozen features of ``examples`` (cached), the mask of readable ones, and how long it took."""
    from ..features import FeatureCache, default_cache_dir, extract_features

    cache = FeatureCache(cache_dir or default_cache_dir(), backbone.cache_key()) if use_cache else None
    t0 = time.perf_counter()
    try:
        ext = extract_features(backbone, examples.modality, examples.items, examples.origins, cache=cache,
                               batch_size=batch_size, device=device, workers=workers, console=console,
                               description="features")
    finally:
        if cache is not None:
            cache.close()
    seconds = time.perf_counter() - t0
    backbone.cpu()
    console.info(f"{backbone.info.name}: features of {len(examples)} examples in {seconds:.1f}s "
                 f"({ext.computed} computed, {ext.from_cache} from cache)")
    problems += [str(p) for p in ext.problems if str(p) not in problems]
    return {"features": ext.features, "ok": ext.ok, "seconds": seconds, "computed": ext.computed,
            "from_cache": ext.from_cache}


def _score(name: str, x: np.ndarray, labels: np.ndarray, seed: int
           ) -> tuple[dict[str, Any], np.ndarray | None]:
    """LogME, probe and kNN accuracy of one candidate's features, each timed; and the probe's predictions."""
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    t0 = time.perf_counter()
    score = logme(x, labels)
    t1 = time.perf_counter()
    probe = linear_probe_predictions(x, labels, seed=seed)
    t2 = time.perf_counter()
    knn = knn_predictions(x, labels, seed=seed)
    t3 = time.perf_counter()
    row = {"name": name, "random_init": name.startswith(RANDOM_PREFIX), "feature_dim": int(x.shape[1]),
           "logme": score,
           "probe_accuracy": float("nan") if probe is None else float(np.mean(probe == codes)),
           "knn_accuracy": float("nan") if knn is None else float(np.mean(knn == codes)),
           "logme_s": round(t1 - t0, 4), "probe_s": round(t2 - t1, 4), "knn_s": round(t3 - t2, 4)}
    return row, probe


def _findings(rows: list[RankedBackbone], preds: dict[str, np.ndarray | None], labels: np.ndarray
              ) -> list[Finding]:
    out: list[Finding] = []
    if any(p is None for p in preds.values()):
        out.append(Finding("too-few-examples", "warning", "a class has fewer than 2 examples: the probe and "
                           "kNN accuracies cannot be cross-validated; the ranking rests on LogME alone.",
                           advice="add examples so that every class has at least 2 (5 or more for stable "
                                  "scores)."))
        return out
    pretrained = [r for r in rows if not r.random_init]
    controls = [r for r in rows if r.random_init]
    if pretrained and controls:
        best = max(pretrained, key=lambda r: r.probe_accuracy)
        for control in controls:
            f = compare_to_random(preds[best.name], preds[control.name], labels, logme_pretrained=best.logme,
                                  logme_random=control.logme,
                                  what=f"the best pretrained candidate, {best.name},",
                                  control=f"the control {control.name}")
            beaten_by_control = [r.name for r in pretrained if r.logme <= control.logme]
            out.append(Finding(f.code, f.severity, f.message, f.advice, f.value, f.metric,
                               f.details | {"control": control.name, "pretrained": best.name,
                                            "pretrained_ranked_below_control": beaten_by_control}))
    if len(rows) >= 2:
        out.append(_within_noise(rows, preds, labels))
    return out


def _within_noise(rows: list[RankedBackbone], preds: dict[str, np.ndarray | None],
                  labels: np.ndarray) -> Finding:
    """``rank-within-noise``: which candidates' probe accuracies cannot be told apart from the top-ranked
    one's; ``rank-disagreement`` instead when another candidate's probe accuracy is clearly higher."""
    top = rows[0]  # rows are in LogME order
    tied, gaps = [], {}
    for r in rows[1:]:
        gap = paired_gap(preds[top.name], preds[r.name], labels)  # type: ignore[arg-type]
        gaps[r.name] = {"gap": gap.gap, "stderr": gap.stderr}
        if abs(gap.gap) <= PAIRED_Z * gap.stderr:
            tied.append(r.name)
    best_probe = max(rows, key=lambda r: r.probe_accuracy)
    details = {"top": top.name, "compared_to_top": gaps, "within_noise": tied, "z": PAIRED_Z}
    if best_probe is not top and best_probe.name not in tied:
        return Finding("rank-disagreement", "warning",
                       f"LogME ranks {top.name} first but {best_probe.name} has a clearly higher "
                       f"linear-probe accuracy ({best_probe.probe_accuracy:.3f} vs "
                       f"{top.probe_accuracy:.3f}).",
                       advice=f"for a frozen backbone, prefer {best_probe.name}; for fine-tuning, LogME's "
                              "order is the better guide.", details=details)
    if tied:
        return Finding("rank-within-noise", "info",
                       f"{', '.join(tied)} {'is' if len(tied) == 1 else 'are'} within noise of {top.name} on "
                       f"the linear probe ({PAIRED_Z:g} standard errors of the paired difference on "
                       f"{len(labels)} examples): the ranking between them is not decisive.",
                       advice="choose among these on speed and size, or rank again with more examples.",
                       details=details)
    return Finding("rank-within-noise", "info", f"{top.name} is ahead of the other candidates by more than "
                   "noise on the linear probe.", details=details)


def ranking_table(ranking: Ranking) -> Any:
    """The ranking as a rich table (best first); backbone names (local paths too) are shown literally."""
    from ..console import add_row, table

    columns = ("#", "backbone", "LogME", "probe acc", "kNN acc", "features", "extract s", "scoring s")
    out = table(f"{ranking.examples} examples, {len(ranking.classes)} classes; ranked by LogME (higher is "
                "better); accuracies cross-validated", columns, right=[c for c in columns if c != "backbone"])

    def pct(x: float) -> str:
        return "-" if not math.isfinite(x) else f"{x:.3f}"

    for r in ranking.rows:
        cached = f" ({r.from_cache} cached)" if r.from_cache else ""
        add_row(out, r.rank, r.name, f"{r.logme:.4f}", pct(r.probe_accuracy), pct(r.knn_accuracy), r.feature_dim,
                f"{r.extract_s:.1f}{cached}", f"{r.logme_s + r.probe_s + r.knn_s:.2f}")
    return out
