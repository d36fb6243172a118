"""Named-entity recognition (a BIO tag per word): points at :mod:`graftwork.ner` (fit, the model, its CLI output,
the settings it reads) and at the shared ONNX export and report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import SILENT, Console
from .base import Advice, Exported, ExportRequest, Task

if TYPE_CHECKING:
    from ..config import FitConfig


class NerTask(Task):
    name = "ner"
    option = "ner"
    export_forms = ("onnx", "run (with --merge)")
    servable = True
    command_options = {"evaluate": frozenset({"weights", "skip_bad_files"}),
                       "predict": frozenset({"weights", "text_column"})}

    def fit(self, data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT, resume: bool = False, callbacks: list[Any] | None = None) -> Any:
        from ..ner.fit import run_fit_ner

        return run_fit_ner(data, cfg, out=out, force=force, console=console, resume=resume, callbacks=callbacks)

    def unsupported_settings(self, cfg: FitConfig) -> list[tuple[str, str]]:
        from ..ner.settings import unsupported_settings

        return unsupported_settings(cfg)

    def advise(self, data: str | Path, cfg: FitConfig, *, curve: bool = True, console: Console = SILENT) -> Advice:
        """The NER plan (:func:`graftwork.ner.fit.ner_plan`: ``auto`` keys on entity mentions per type, counted
        on the sentences fit would train on, after its validation hold-out) and the mention counts of each
        split. No learning curve: the probe it measures is a classification one."""
        from ..ner.data import hold_out, load_ner_data, mention_counts
        from ..ner.fit import ner_plan
        from .classify import catalogue_params

        splits = load_ner_data(data, skip_bad=True)
        train, val = splits.train, splits.val or []
        if splits.val is None and cfg.val_fraction > 0:
            train, val = hold_out(train, cfg.val_fraction, cfg.seed)
        mentions = mention_counts(train)
        plan = ner_plan(cfg, mentions, catalogue_params(cfg.backbone) or 0)
        sentences = {"train": len(train), "val": len(val), "test": len(splits.test or [])}
        result = plan | {"task": self.option, "modality": "text", "entity_types": splits.entity_types,
                         "sentences": sentences, "mentions": {"train": mentions, "val": mention_counts(val),
                                                              "test": mention_counts(splits.test or [])},
                         "skipped": splits.skipped, "learning_curve": None,
                         "note": "learning curve: not measured for NER (it is the linear probe's, per class)"}
        held = " (held out of train)" if splits.val is None and val else ""
        lines = [f"plan: {plan['strategy']}" + (" (chosen by auto)" if plan["requested"] == "auto" else ""),
                 *(f"  why: {r}" for r in plan["reasons"]),
                 f"sentences: train {sentences['train']}, val {sentences['val']}{held}, test {sentences['test']}",
                 "entity mentions per type (train): " + (", ".join(f"{k} {v}" for k, v in mentions.items())
                                                          or "none"),
                 result["note"]]
        if splits.skipped:
            lines.append(f"note: {len(splits.skipped)} bad line(s) would stop `fit` (see --skip-bad-files)")
        return Advice(result, lines)

    def load(self, run_dir: str | Path, *, device: str = "auto", weights: str | None = None,
             cache_dir: str | Path | None = None, console: Console = SILENT) -> Any:
        from ..ner.model import NerModel

        return NerModel.load(run_dir, device=device, console=console, weights=weights)  # keeps no feature cache

    def evaluate_command(self, args: argparse.Namespace) -> int:
        from ..ner.cli import evaluate_ner

        return evaluate_ner(args)

    def predict_command(self, args: argparse.Namespace) -> int:
        from ..cli.inputs import read_text_inputs
        from ..ner.cli import predict_ner

        return predict_ner(args, read_text_inputs(args.inputs, args.text_column))

    def report_sections(self, config: dict[str, Any], metrics: dict[str, Any]) -> list[Any]:
        from ..report.ner import sections

        return sections(config, metrics)

    def serving(self, model: Any) -> tuple[str, list[str]]:
        return "text", list(model.tags)

    def export(self, run_dir: str | Path, out: str | Path, request: ExportRequest) -> Exported:
        from .exporting import export_form, merged_run, onnx_export

        form = export_form(request, default="onnx")
        if form == "onnx":
            return onnx_export(run_dir, out, request)
        if form == "run":
            return merged_run(run_dir, out, request, lambda: self.load(run_dir, device="cpu"))
        raise self.no_export(form)
