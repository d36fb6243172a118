"""Export forms shared by the tasks whose models are a backbone and a head (classification, NER): ONNX, and a
run folder with LoRA adapters merged into the backbone weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RunFolderError
from .base import Exported, ExportRequest


def export_form(request: ExportRequest, default: str) -> str:
    """The form asked for (``--format``; ``--merge`` alone means a merged run folder), after refusing options
    that contradict it."""
    form = request.format or ("run" if request.merge else default)
    if request.merge and form != "run":
        raise ConfigError(f"--merge and --format {form}: an {form} export always has LoRA adapters merged.",
                          hint=f"leave --merge out: graftwork export RUN --format {form} --out DIR")
    if form == "run" and not request.merge:
        raise ConfigError("--format run writes a run folder with LoRA adapters merged: it needs --merge.",
                          hint="graftwork export RUN --merge --out NEW_RUN")
    if request.adapter:
        raise ConfigError("--adapter writes a generation run's LoRA adapter as a PEFT folder; this run is not one.",
                          hint="for a run folder with the adapters merged: graftwork export RUN --merge --out DIR")
    return form


def onnx_export(run_dir: str | Path, out: str | Path, request: ExportRequest) -> Exported:
    from ..export.onnx import describe, export_onnx

    manifest = export_onnx(run_dir, out, data=request.data, verify=request.verify, force=request.force,
                           console=request.console)
    return Exported(Path(out), f"wrote {out}: {describe(manifest)}", manifest)


def merged_run(run_dir: str | Path, out: str | Path, request: ExportRequest, load: Callable[[], Any]) -> Exported:
    """The model of ``run_dir`` (``load()``, on the CPU) saved to ``out`` with its LoRA adapters merged (PEFT's
    merge): the same predictions without the adapters' extra compute, and a run folder that loads without PEFT."""
    from ..run import check_out_dir
    from ..strategies.lora import has_lora, remove_lora

    check_out_dir(out, request.force, data=run_dir)  # never the source run, inside it or around it
    model = load()
    backbone = model.backbone
    if not has_lora(backbone):
        raise RunFolderError(f"{run_dir}: this run has no LoRA adapters to merge.",
                             hint="export --merge applies to runs fitted with --strategy lora.")
    merged = remove_lora(backbone, merge=True)
    backbone.info.extra["fine_tuned"] = f"{backbone.info.extra.get('fine_tuned', 'lora')} (merged)"
    backbone.refresh_fingerprint()
    load_name = model.config["backbone"].get("load_name")
    model.config["backbone"] = backbone.info.to_dict() | {"load_name": load_name}
    path = model.save(out, force=request.force)
    return Exported(Path(path), f"merged {merged} adapted layers into the backbone; wrote {path}")
