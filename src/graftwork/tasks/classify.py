"""Classification (one label per image, text or audio clip): points at :mod:`graftwork.pipeline` (fit),
:class:`graftwork.model.TransferModel` (load, evaluate, predict), :mod:`graftwork.export` and :mod:`graftwork.report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import SILENT, Console
from ..errors import DataError, GraftworkError
from .base import Advice, Exported, ExportRequest, Task, given_settings

if TYPE_CHECKING:
    from ..config import FitConfig

# settings only a language model reads (graftwork.generate); gradient_accumulation is read by the staged trainer
ONLY_FOR_GENERATE = ("max_length", "max_new_tokens", "few_shot", "gradient_checkpointing", "trust_remote_code")


class ClassifyTask(Task):
    name = "classification"
    option = "classify"
    export_forms = ("onnx", "hf (text classifiers)", "run (with --merge)")
    servable = True
    command_options = {"evaluate": frozenset({"weights", "no_cache", "skip_bad_files", "text_column", "label_column",
                                              "groups"}),
                       "predict": frozenset({"weights", "skip_bad_files", "text_column", "top_k"})}

    def fit(self, data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT, resume: bool = False, callbacks: list[Any] | None = None) -> Any:
        from ..pipeline import run_fit
        from . import detect_task

        if detect_task(data) == "ner":  # what the classification readers would refuse with a less useful message
            raise DataError(f"{data}: tagged tokens (CoNLL, or JSONL of tokens/tags): data for named-entity "
                            "recognition, not for classification.", hint="add --task ner (task='ner').")
        return run_fit(data, cfg, out=out, force=force, console=console, resume=resume, callbacks=callbacks)

    def unsupported_settings(self, cfg: FitConfig) -> list[tuple[str, str]]:
        given = given_settings(cfg)
        return [(n, "only applies to --task generate") for n in ONLY_FOR_GENERATE if n in given]

    def advise(self, data: str | Path, cfg: FitConfig, *, curve: bool = True, console: Console = SILENT) -> Advice:
        """The plan from the examples per class (after fit's validation hold-out), and the learning curve of the
        linear probe on the backbone's features (unless ``curve`` is False or the backbone cannot load)."""
        from ..data import load_data, stratified_split
        from ..strategies import make_plan

        splits = load_data(data, skip_bad_files=True, text_column=cfg.text_column, label_column=cfg.label_column)
        train = splits.train
        if splits.val is None and cfg.val_fraction > 0:  # fit holds out val_fraction of each class
            train = train.subset(stratified_split(train.labels, cfg.val_fraction, seed=0)[0])
        plan = make_plan(cfg.strategy, train.class_counts(), unfreeze=cfg.unfreeze, class_weights=cfg.class_weights,
                         backbone_params=catalogue_params(cfg.backbone), modality=splits.modality)
        measured, note = _curve(splits.train, train.class_counts(), cfg, console) if curve else \
            (None, "learning curve: skipped (--no-curve)")
        result = plan.to_dict() | {"task": self.option, "modality": splits.modality, "skipped": splits.skipped}
        result |= {"learning_curve": measured.to_dict()} if measured else {"learning_curve": None, "note": note}
        lines = [plan.describe(), "\n".join(measured.describe()) if measured else note]
        if splits.skipped:
            lines.append(f"note: {len(splits.skipped)} bad input(s) would stop `fit` (see --skip-bad-files)")
        return Advice(result, lines)

    def load(self, run_dir: str | Path, *, device: str = "auto", weights: str | None = None,
             cache_dir: str | Path | None = None, console: Console = SILENT) -> Any:
        from ..model import TransferModel

        return TransferModel.load(run_dir, device=device, console=console, weights=weights, cache_dir=cache_dir)

    def evaluate_command(self, args: argparse.Namespace) -> int:
        from ..cli.classify import evaluate_classify

        return evaluate_classify(args)

    def predict_command(self, args: argparse.Namespace) -> int:
        from ..cli.classify import predict_classify

        return predict_classify(args)

    def report_sections(self, config: dict[str, Any], metrics: dict[str, Any]) -> list[Any]:
        from ..report.classify import sections

        return sections(config, metrics)

    def serving(self, model: Any) -> tuple[str, list[str]]:
        return model.modality, list(model.classes)

    def export(self, run_dir: str | Path, out: str | Path, request: ExportRequest) -> Exported:
        from .exporting import export_form, merged_run, onnx_export

        form = export_form(request, default="onnx")
        if form == "onnx":
            return onnx_export(run_dir, out, request)
        if form == "hf":
            return _hf_export(run_dir, out, request)
        return merged_run(run_dir, out, request, lambda: self.load(run_dir, device="cpu"))


def _hf_export(run_dir: str | Path, out: str | Path, request: ExportRequest) -> Exported:
    from ..export.hf import export_hf

    manifest = export_hf(run_dir, out, verify=request.verify, force=request.force, console=request.console)
    parity = manifest["parity"]
    message = (f"wrote {out}: a Hugging Face folder (transformers.pipeline('text-classification', model=...))"
               + (f"; parity on {parity['texts']} texts: max |dp| {parity['max_abs_diff']:.1e}, top-1 agreement "
                  f"{parity['top1_agreement']:.0%}" if parity else ""))
    return Exported(Path(out), message, manifest)


def _curve(examples: Any, counts: dict[str, int], cfg: FitConfig, console: Console) -> tuple[Any, str]:
    """The learning curve for advise (None and why not, when the backbone cannot load)."""
    from ..diagnostics.data_curve import curve_for_data

    try:
        return curve_for_data(examples, counts, cfg.backbone, device=cfg.device, console=console), ""
    except GraftworkError as e:
        return None, f"learning curve: not measured ({e})"


def catalogue_params(name: str | None) -> int | None:
    """Parameters of a catalogue backbone, without building it (None when it is not in the catalogue)."""
    from ..backbones.registry import CATALOGUE

    known = {k.name: k for k in CATALOGUE}
    return int(known[name].params_m * 1e6) if name in known else None
