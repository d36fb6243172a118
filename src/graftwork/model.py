"""A trained model: backbone + head + class names, with ``predict``, ``evaluate`` and ``save``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backbones import Backbone
from .console import SILENT, Console
from .data import Examples, load_data
from .data.skipped import read_noting_skips, skipped_entries
from .errors import DataError, RunFolderError
from .features import Extracted, FeatureCache, default_cache_dir, extract_features, resolve_device
from .metrics import classification_metrics
from .run import read_run_folder, save_run_folder
from .run.backbone import backbone_tensors, restore_backbone
from .run.folder import HEAD
from .strategies import LinearHead
from .strategies.lora import has_lora, remove_lora


class TransferModel:
    """A pretrained backbone with a trained head. Create with :func:`graftwork.fit` or :func:`graftwork.load`."""

    def __init__(self, backbone: Backbone, head: LinearHead, classes: list[str], config: dict[str, Any],
                 metrics: dict[str, Any] | None = None, device: str = "auto", console: Console = SILENT,
                 cache_dir: str | Path | None = None):
        self.backbone = backbone
        self.head = head.eval()
        self.classes = list(classes)
        self.config = config
        self.metrics = metrics or {}
        self.device = resolve_device(device)
        self.console = console
        self.cache_dir = cache_dir  # this machine's feature cache (None: $GRAFTWORK_CACHE or ~/.cache/graftwork)

    @property
    def modality(self) -> str:
        return self.backbone.modality

    def __repr__(self) -> str:
        return (f"TransferModel(backbone={self.backbone.info.name!r}, classes={self.classes!r}, "
                f"strategy={self.config.get('plan', {}).get('strategy')!r})")

    # -- inference -----------------------------------------------------------------------------------------
    def _cache(self, use_cache: bool) -> FeatureCache | None:
        if not use_cache:
            return None
        root = self.cache_dir or default_cache_dir()  # never the run's recorded cache_dir: another machine's
        return FeatureCache(root, self.backbone.cache_key())

    def _extract(self, items: list[str], origins: list[str] | None = None, *, use_cache: bool = False,
                 batch_size: int = 32) -> Extracted:
        return extract_features(self.backbone, self.modality, list(items), origins or list(items),
                                cache=self._cache(use_cache), batch_size=batch_size, device=self.device,
                                console=self.console)

    def features(self, items: list[str], origins: list[str] | None = None, *, use_cache: bool = False,
                 skip_bad: bool = False, batch_size: int = 32, skip_hint: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Backbone features of ``items`` (image paths or texts) and the mask of those that could be read."""
        ext = self._extract(items, origins, use_cache=use_cache, batch_size=batch_size)
        _check_readable(ext, skip_bad, skip_hint, need_one=False)
        return ext.features, ext.ok

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.head(torch.from_numpy(features).float())
            return torch.softmax(logits, dim=1).numpy()

    def predict_proba(self, inputs: list[str]) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (columns in the order of ``classes``)."""
        feats, _ = self.features(list(inputs))
        return self.probabilities(feats)

    def predict(self, inputs: list[str] | str, top_k: int = 3, *, skip_bad_files: bool = False
                ) -> list[dict[str, Any]]:
        """Top-k labels with probabilities for each input (image paths, or texts).

        An input that cannot be read is an error naming it; with ``skip_bad_files`` it is left out instead
        (:meth:`predict_with_skipped` also says which were left out, and why).
        """
        return self.predict_with_skipped(inputs, top_k, skip_bad_files=skip_bad_files)[0]

    def predict_with_skipped(self, inputs: list[str] | str, top_k: int = 3, *, skip_bad_files: bool = False
                             ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """:meth:`predict`, and the inputs it skipped as ``{"path", "reason"}`` entries."""
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        ext = self._extract(items)
        _check_readable(ext, skip_bad_files, skip_hint=True)
        probs = self.probabilities(ext.features)
        k = max(1, min(top_k, len(self.classes)))
        out = []
        for item, p in zip([i for i, good in zip(items, ext.ok, strict=True) if good], probs, strict=True):
            order = np.argsort(-p)[:k]
            out.append({"input": item, "label": self.classes[order[0]],
                        "top": [{"label": self.classes[i], "probability": float(p[i])} for i in order]})
        return out, skipped_entries(ext.problems)

    # -- evaluation ----------------------------------------------------------------------------------------
    def evaluate_examples(self, examples: Examples, *, use_cache: bool = True, skip_bad: bool = False,
                          groups: list[str] | None = None) -> dict[str, Any]:
        """Metrics on ``examples``; with ``groups`` (one per example), per-group metrics and bias findings under
        ``"groups"`` and ``"findings"``. With ``skip_bad``, the unreadable examples left out are listed under
        ``"skipped"`` (``{"path", "reason"}`` each) and counted under ``"n_skipped"``."""
        unknown = sorted(set(examples.labels) - set(self.classes))
        if unknown:
            raise DataError(f"the evaluation data has class(es) this model was not trained on: {unknown}.",
                            hint=f"the model knows: {self.classes}.")
        if examples.modality != self.modality:
            raise DataError(f"the evaluation data is {examples.modality} but this model takes {self.modality}.")
        ext = self._extract(examples.items, examples.origins, use_cache=use_cache)
        _check_readable(ext, skip_bad, skip_hint=True)
        ok = ext.ok
        proba = self.probabilities(ext.features)
        pred = [self.classes[i] for i in proba.argmax(1)]
        y_true = [y for y, good in zip(examples.labels, ok, strict=True) if good]
        result = classification_metrics(y_true, pred, self.classes)
        if groups is not None:
            from .diagnostics.groups import group_metrics

            kept = [g for g, good in zip(groups, ok, strict=True) if good]
            result["groups"], found = group_metrics(y_true, pred, proba, self.classes, kept)
            result["findings"] = [f.to_dict() for f in found]
        if skip_bad:
            result |= {"skipped": skipped_entries(ext.problems), "n_skipped": len(ext.problems)}
        return result

    def evaluate(self, data: str | Path | Examples, *, use_cache: bool = True, skip_bad_files: bool = False,
                 text_column: str = "text", label_column: str = "label",
                 groups: str | Path | None = None) -> dict[str, Any]:
        """Metrics on labelled data: a path (its ``test`` split if it has one, else ``val``, else all of it).

        ``groups``: for CSV/JSONL text, the column holding each example's group; for an image folder, a CSV
        manifest with columns ``path,group``. Adds per-group metrics with bootstrap confidence intervals, the
        worst gap, calibration, and findings (see :mod:`graftwork.diagnostics.groups`).

        ``skip_bad_files``: rows and files that cannot be read are left out instead of stopping; the result
        lists them under ``"skipped"`` (``{"path", "reason"}`` each, those of every split read) and counts them
        under ``"n_skipped"``.
        """
        if isinstance(data, Examples):
            return self.evaluate_examples(data, use_cache=use_cache, skip_bad=skip_bad_files)
        splits, unread = read_noting_skips(lambda skip: load_data(
            data, skip_bad_files=skip, text_column=text_column, label_column=label_column,
            require_classes=False), skip=skip_bad_files)
        chosen, name = (splits.test, "test") if splits.test is not None else (
            (splits.val, "val") if splits.val is not None else (splits.train, "all"))
        assert chosen is not None
        split_groups = None
        if groups is not None:
            from .diagnostics.groups import read_groups

            split_groups = read_groups(splits, groups, text_column=text_column,
                                       label_column=label_column)["train" if name == "all" else name]
        result = self.evaluate_examples(chosen, use_cache=use_cache, skip_bad=skip_bad_files, groups=split_groups)
        result["split"] = name
        result["data"] = str(data)
        if skip_bad_files:
            skipped = skipped_entries(unread) + result.pop("skipped")
            result |= {"skipped": skipped, "n_skipped": len(skipped)}
        return result

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self, out: str | Path, *, force: bool = False) -> Path:
        """Write a run folder (refuses to overwrite a non-empty folder unless ``force``)."""
        backbone_sd, adapter = backbone_tensors(self.backbone)
        head_sd = {k: v.detach().cpu() for k, v in self.head.state_dict().items()}
        return save_run_folder(out, config=self.config, head=head_sd, metrics=self.metrics,
                               backbone=backbone_sd, force=force, extra=self._report(out), adapter=adapter)

    def merge_adapters(self) -> int:
        """Merge LoRA adapters into the backbone weights (PEFT's merge): the same predictions without the adapters'
        extra compute, and a run folder that loads without PEFT. Returns the number of layers merged."""
        if not has_lora(self.backbone):
            raise RunFolderError("this run has no LoRA adapters to merge.",
                                 hint="export --merge applies to runs fitted with --strategy lora.")
        n = remove_lora(self.backbone, merge=True)
        self.backbone.info.extra["fine_tuned"] = f"{self.backbone.info.extra.get('fine_tuned', 'lora')} (merged)"
        self.backbone.refresh_fingerprint()
        load_name = self.config["backbone"].get("load_name")
        self.config["backbone"] = self.backbone.info.to_dict() | {"load_name": load_name}
        return n

    def _report(self, out: str | Path) -> dict[str, str]:
        from .report import REPORT, render_report

        try:
            return {REPORT: render_report(self.metrics, self.config, name=Path(out).name)}
        except Exception as e:  # a chart that cannot be drawn must not cost the trained model
            self.console.warn(f"{REPORT} was not written ({type(e).__name__}: {e}); the model is saved. "
                              f"`graftwork report {out}` tries again.")
            return {}

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", console: Console = SILENT, weights: str | None = None,
             cache_dir: str | Path | None = None) -> TransferModel:
        """Load a run folder, checking everything it says before using it (see :func:`read_run_folder`).

        Locations come from this machine, never from the run's config.json: ``weights``, the pretrained weights'
        file or folder when the default lookup by backbone name does not find them; ``cache_dir``, the feature
        cache (default: ``$GRAFTWORK_CACHE`` or ``~/.cache/graftwork``). Loading writes nothing into the folder.
        """
        config, head_sd, metrics, backbone_sd = read_run_folder(path, task="classification")
        backbone = restore_backbone(path, config, backbone_sd, weights=weights)
        head = restore_head(path, head_sd, in_features=backbone.feature_dim, classes=config["classes"],
                            recorded_in=config["head"]["in_features"])
        return cls(backbone, head, config["classes"], config, metrics, device=device, console=console,
                   cache_dir=cache_dir)


def restore_head(path: str | Path, state: dict[str, torch.Tensor], *, in_features: int, classes: list[str],
                 recorded_in: int) -> LinearHead:
    """The classification head from ``head.safetensors``, after checking that its sizes agree with the backbone and
    with the class list in config.json (a head with more or fewer outputs than classes would mislabel)."""
    where = Path(path) / HEAD
    weight = state.get("fc.weight")
    if weight is None or weight.ndim != 2:
        raise RunFolderError(f"{where}: no linear layer ('fc.weight') of the expected form.",
                             hint="re-run `graftwork fit`.")
    if weight.shape[0] != len(classes):
        raise RunFolderError(f"{where}: the head has {weight.shape[0]} outputs but config.json's 'classes' lists "
                             f"{len(classes)} classes.", hint="config.json or the head was edited: restore the run "
                                                              "folder, or re-run `graftwork fit`.")
    if not weight.shape[1] == recorded_in == in_features:
        raise RunFolderError(f"{where}: the head takes {weight.shape[1]} features, config.json's 'head.in_features' "
                             f"is {recorded_in}, and the backbone gives {in_features}.",
                             hint="re-run `graftwork fit`.")
    head = LinearHead(in_features, len(classes), unit_branch=any(k.startswith("unit_branch.") for k in state))
    try:
        head.load_state_dict(state)
    except RuntimeError as e:
        raise RunFolderError(f"{where}: does not fit a linear head ({str(e).splitlines()[0]}).",
                             hint="re-run `graftwork fit`.") from None
    return head


def _check_readable(ext: Extracted, skip_bad: bool, skip_hint: bool = False, *, need_one: bool = True) -> None:
    """Unreadable inputs are an error naming them, unless skipped; with ``need_one``, so is having nothing
    readable left (there would be nothing to predict or to score)."""
    if not ext.problems:
        return
    if not skip_bad:
        raise DataError(f"{len(ext.problems)} input(s) could not be read:", problems=ext.problems,
                        hint="fix or remove these files" + (", or pass --skip-bad-files." if skip_hint else "."))
    if need_one and not ext.ok.any():
        raise DataError(f"none of the {len(ext.ok)} input(s) could be read:", problems=ext.problems,
                        hint="check that these are the files the model takes (and that they are not damaged).")
