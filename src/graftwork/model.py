"""A trained model: backbone + head + class names, with ``predict``, ``evaluate`` and ``save``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backbones import Backbone
from .console import SILENT, Console
from .data import Examples, load_data
from .errors import DataError, RunFolderError
from .features import FeatureCache, default_cache_dir, extract_features, resolve_device
from .metrics import classification_metrics
from .run import read_run_folder, save_run_folder
from .run.backbone import backbone_tensors, restore_backbone
from .strategies import LinearHead
from .strategies.lora import has_lora, remove_lora


class TransferModel:
    """A pretrained backbone with a trained head. Create with :func:`graftwork.fit` or :func:`graftwork.load`."""

    def __init__(self, backbone: Backbone, head: LinearHead, classes: list[str], config: dict[str, Any],
                 metrics: dict[str, Any] | None = None, device: str = "auto", console: Console = SILENT):
        self.backbone = backbone
        self.head = head.eval()
        self.classes = list(classes)
        self.config = config
        self.metrics = metrics or {}
        self.device = resolve_device(device)
        self.console = console

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
        root = self.config.get("fit", {}).get("cache_dir") or default_cache_dir()
        return FeatureCache(root, self.backbone.cache_key())

    def features(self, items: list[str], origins: list[str] | None = None, *, use_cache: bool = False,
                 skip_bad: bool = False, batch_size: int = 32, skip_hint: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Backbone features of ``items`` (image paths or texts) and the mask of those that could be read."""
        ext = extract_features(self.backbone, self.modality, list(items), origins or list(items),
                               cache=self._cache(use_cache), batch_size=batch_size, device=self.device,
                               console=self.console)
        if ext.problems and not skip_bad:
            raise DataError(f"{len(ext.problems)} input(s) could not be read:", problems=ext.problems,
                            hint="fix or remove these files" + (", or pass --skip-bad-files." if skip_hint else "."))
        return ext.features, ext.ok

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.head(torch.from_numpy(features).float())
            return torch.softmax(logits, dim=1).numpy()

    def predict_proba(self, inputs: list[str]) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (columns in the order of ``classes``)."""
        feats, _ = self.features(list(inputs))
        return self.probabilities(feats)

    def predict(self, inputs: list[str] | str, top_k: int = 3) -> list[dict[str, Any]]:
        """Top-k labels with probabilities for each input (image paths, or texts)."""
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        probs = self.predict_proba(items)
        k = max(1, min(top_k, len(self.classes)))
        out = []
        for item, p in zip(items, probs, strict=True):
            order = np.argsort(-p)[:k]
            out.append({"input": item, "label": self.classes[order[0]],
                        "top": [{"label": self.classes[i], "probability": float(p[i])} for i in order]})
        return out

    # -- evaluation ----------------------------------------------------------------------------------------
    def evaluate_examples(self, examples: Examples, *, use_cache: bool = True, skip_bad: bool = False,
                          groups: list[str] | None = None) -> dict[str, Any]:
        """Metrics on ``examples``; with ``groups`` (one per example), per-group metrics and bias findings under
        ``"groups"`` and ``"findings"``."""
        unknown = sorted(set(examples.labels) - set(self.classes))
        if unknown:
            raise DataError(f"the evaluation data has class(es) this model was not trained on: {unknown}.",
                            hint=f"the model knows: {self.classes}.")
        if examples.modality != self.modality:
            raise DataError(f"the evaluation data is {examples.modality} but this model takes {self.modality}.")
        feats, ok = self.features(examples.items, examples.origins, use_cache=use_cache, skip_bad=skip_bad,
                                  skip_hint=True)
        proba = self.probabilities(feats)
        pred = [self.classes[i] for i in proba.argmax(1)]
        y_true = [y for y, good in zip(examples.labels, ok, strict=True) if good]
        result = classification_metrics(y_true, pred, self.classes)
        if groups is not None:
            from .diagnostics.groups import group_metrics

            kept = [g for g, good in zip(groups, ok, strict=True) if good]
            result["groups"], found = group_metrics(y_true, pred, proba, self.classes, kept)
            result["findings"] = [f.to_dict() for f in found]
        return result

    def evaluate(self, data: str | Path | Examples, *, use_cache: bool = True, skip_bad_files: bool = False,
                 text_column: str = "text", label_column: str = "label",
                 groups: str | Path | None = None) -> dict[str, Any]:
        """Metrics on labelled data: a path (its ``test`` split if it has one, else ``val``, else all of it).

        ``groups``: for CSV/JSONL text, the column holding each example's group; for an image folder, a CSV
        manifest with columns ``path,group``. Adds per-group metrics with bootstrap confidence intervals, the
        worst gap, calibration, and findings (see :mod:`graftwork.diagnostics.groups`).
        """
        if isinstance(data, Examples):
            return self.evaluate_examples(data, use_cache=use_cache, skip_bad=skip_bad_files)
        splits = load_data(data, skip_bad_files=skip_bad_files, text_column=text_column,
                           label_column=label_column, require_classes=False)
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
    def load(cls, path: str | Path, *, device: str = "auto", console: Console = SILENT) -> TransferModel:
        config, head_sd, metrics, backbone_sd = read_run_folder(path)
        try:
            classes = config["classes"]
        except KeyError as e:
            raise RunFolderError(f"{path}: config.json lacks {e}.", hint="re-run `graftwork fit`.") from None
        backbone = restore_backbone(path, config, backbone_sd)
        head = LinearHead(int(head_sd["fc.weight"].shape[1]), int(head_sd["fc.weight"].shape[0]))
        head.load_state_dict(head_sd)
        return cls(backbone, head, classes, config, metrics, device=device, console=console)
