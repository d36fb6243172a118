"""Sequential transfer: a trained run's backbone as the starting point of a new fit (``--backbone run:DIR``).

``run:DIR`` (or just the path of a run folder) rebuilds the backbone a classification or NER run ended with,
through the same checked path as loading that run (:func:`graftwork.run.read_run_folder`: config validated,
every weight file's sha256 compared with the one config.json records; pretrained weights found on this machine
checked against the recorded fingerprint). LoRA adapters are merged into the weights, so the new run starts from
a plain network. A frozen run's backbone is the pretrained one, unchanged: starting from it is the same as
starting from the pretrained weights, and the backbone's ``info.weights`` says so.

The new backbone keeps the architecture's name (a run started from it reloads without the source run) and
records its origin in ``info.extra["source_run"]``: the source folder, task and backbone fingerprint, whether
its weights differ from the original pretrained ones, and that original start (name, fingerprint, whether it
was pretrained at all), which ``--control`` trains as well (:mod:`graftwork.diagnostics.sequential`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RunFolderError
from .base import Backbone

PREFIX = "run:"
TASKS = ("classification", "ner")  # tasks whose runs hold an encoder backbone another task can start from


def run_folder_of(name: str) -> Path | None:
    """The run folder ``name`` refers to (``run:DIR``, or a folder holding a graftwork run's config.json), or
    None when ``name`` is an ordinary backbone name or model folder."""
    from ..run.guard import RUN_FORMAT  # graftwork.run builds backbones: imported when used, not at load time

    if name.startswith(PREFIX):
        return Path(name[len(PREFIX):]).expanduser()
    config = Path(name).expanduser() / "config.json"
    if not config.is_file():
        return None
    try:
        return config.parent if json.loads(config.read_text(encoding="utf-8")).get("format") == RUN_FORMAT else None
    except (ValueError, OSError, AttributeError):  # an HF model folder's config, unreadable or not an object
        return None


def build_from_run(name: str, *, pretrained: bool = True, weights: str | None = None) -> Backbone:
    """The backbone of the run ``name`` refers to, with its trained weights (``pretrained=False``: the same
    architecture, randomly initialised, as a control). ``weights``: where the original pretrained weights are,
    when the run did not store its backbone (a frozen or LoRA run)."""
    from ..run import read_run_folder
    from ..run.backbone import restore_backbone
    from ..run.lock import held_here

    folder = run_folder_of(name)
    if folder is None or not str(folder).strip() or name.strip() == PREFIX:
        raise ConfigError(f"'backbone': {name!r} does not name a run folder.",
                          hint="pass run:DIR, DIR being the --out folder of a completed `graftwork fit` run.")
    if not folder.exists():
        raise RunFolderError(f"'backbone': {name!r}: no such run folder ({folder}).",
                             hint="pass the --out folder of a completed `graftwork fit` run, as run:DIR.")
    if held_here(folder):  # the --out of the fit that asks for it: it would start from itself, then replace it
        raise ConfigError(f"'backbone': {name!r} is the output folder of this fit; a run cannot start from the "
                          "run it replaces.", hint="write the new run to another --out.")
    _check_task(folder, _task_of(folder))  # before the full read: a generation run is not refused as "incomplete"
    config, _, _, backbone_sd = read_run_folder(folder)
    _check_task(folder, config.get("task", "classification"))
    _refuse_chains(folder, config)
    if not pretrained:
        return _random_architecture(folder, config)
    backbone = restore_backbone(folder, config, backbone_sd, weights=weights)
    if backbone.info.fingerprint != config["backbone"].get("fingerprint"):
        raise RunFolderError(f"{folder / 'config.json'}: 'backbone.fingerprint' does not match the backbone "
                             "rebuilt from the run's files; it was not used.",
                             hint="the run folder was edited or damaged: restore it from a copy you trust.")
    return _as_start(backbone, folder, config)


def _task_of(folder: Path) -> Any:
    """The task config.json names, or None when it cannot be read (the full read then says what is wrong)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None
    return config.get("task", "classification") if isinstance(config, dict) else None


def _check_task(folder: Path, task: Any) -> None:
    if task is not None and task not in TASKS:
        raise ConfigError(f"'backbone': {folder} is a {task!r} run, whose model cannot start another fit.",
                          hint="start from a classification or NER run (`graftwork fit ... --out DIR`), or from "
                               "a pretrained backbone by name.")


def _refuse_chains(folder: Path, config: dict[str, Any]) -> None:
    """A run folder's backbone name is an architecture, never another run: following one would load files the
    user never named."""
    load_name = str(config["backbone"].get("load_name", ""))
    if load_name.startswith(PREFIX) or run_folder_of(load_name) is not None:
        raise RunFolderError(f"{folder / 'config.json'}: 'backbone.load_name' ({load_name!r}) names another run; "
                             "graftwork never writes that, so the file was edited and was not followed.",
                             hint="restore the run folder from a copy you trust, or re-run `graftwork fit`.")


def _random_architecture(folder: Path, config: dict[str, Any]) -> Backbone:
    """The source run's architecture with random weights and the run's preprocessing (the random-init control)."""
    from .audio import options_from_preprocessing
    from .registry import build_backbone
    from .vision import ImageBackbone

    pre = config.get("preprocessing", {})
    backbone = build_backbone(config["backbone"]["load_name"], pretrained=False, **options_from_preprocessing(pre))
    if isinstance(backbone, ImageBackbone) and pre.get("crop") and pre.get("resize"):
        backbone.set_image_size(int(pre["crop"]), int(pre["resize"]))
    return backbone


def original_start(config: dict[str, Any]) -> dict[str, Any]:
    """What the run's backbone was before any training in it or in the runs it started from: the architecture's
    name, the fingerprint of those weights, and whether they were pretrained (or random)."""
    info = config["backbone"]
    extra = info.get("extra") or {}
    if isinstance(extra.get("source_run"), dict) and isinstance(extra["source_run"].get("original"), dict):
        return dict(extra["source_run"]["original"])  # a run itself started from a run: the first start
    return {"name": info["load_name"], "pretrained": bool(info.get("pretrained")),
            "fingerprint": extra.get("pretrained_fingerprint") or info.get("fingerprint")}


def _as_start(backbone: Backbone, folder: Path, config: dict[str, Any]) -> Backbone:
    """The restored backbone as a new run's start: adapters merged, its origin recorded, its weights described."""
    from ..strategies.lora import has_lora, remove_lora

    info = config["backbone"]
    extra = info.get("extra") or {}
    fine_tuned = bool(extra.get("fine_tuned")) or "source_run" in extra and bool(
        extra["source_run"].get("fine_tuned"))
    if has_lora(backbone):
        remove_lora(backbone, merge=True)
    recorded = info.get("fingerprint")
    backbone.info.extra = {"source_run": {
        "path": str(folder.absolute()), "task": config.get("task", "classification"), "fingerprint": recorded,
        "kept_stage": extra.get("fine_tuned") or "linear probe", "fine_tuned": fine_tuned,
        "original": original_start(config)}}
    backbone.refresh_fingerprint()
    if fine_tuned:
        backbone.info.weights = f"{folder} (the fine-tuned backbone of this {config.get('task')} run)"
    else:
        backbone.info.weights = (f"{folder} (a run that kept its backbone frozen: these are its start's weights, "
                                 f"{'pretrained' if info.get('pretrained') else 'random'} {info['load_name']}, "
                                 "unchanged; starting from it is starting from them)")
    return backbone
