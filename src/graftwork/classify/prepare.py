"""Step 1 of a classification fit: read and check the data, build the backbone, carve out validation data."""

from __future__ import annotations

from pathlib import Path

import torch

from ..backbones import build_backbone, default_backbone
from ..backbones.vision import ImageBackbone
from ..config import FitConfig
from ..console import Console
from ..data import Examples, Splits, load_data, stratified_split
from ..data.audio_window import data_window
from ..errors import DataError
from .state import FitState


def prepare_data(state: FitState) -> FitState:
    """The splits, their classes and groups, the backbone (its weights loaded), and train/val/test parts."""
    cfg, console = state.cfg, state.console
    for name in ("weights", "cache_dir"):  # saved with the run: make them independent of the working directory
        if getattr(cfg, name):
            setattr(cfg, name, str(Path(getattr(cfg, name)).expanduser().absolute()))
    splits = load_data(state.data, skip_bad_files=cfg.skip_bad_files, text_column=cfg.text_column,
                       label_column=cfg.label_column)
    state.groups = read_groups(splits, cfg) if cfg.groups else None  # bad group data fails before any training
    for note in splits.notes:
        console.info(note)
    if splits.skipped:
        console.warn(f"skipped {len(splits.skipped)} bad input(s) (--skip-bad-files); listed in metrics.json")
    state.splits, state.classes, state.skipped = splits, splits.classes, list(splits.skipped)
    if cfg.backbone is None:
        cfg.backbone, why = default_backbone(splits.modality)
        console.info(f"backbone: {cfg.backbone} ({why})")
    torch.manual_seed(cfg.seed)
    # no --audio-window: the window from the clip lengths (not written into cfg: a resumed run recomputes it)
    state.window = (data_window(splits.train.items) if splits.modality == "audio" and cfg.audio_window is None
                    else None)
    backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained, weights=cfg.weights,
                              audio_window=state.window.seconds if state.window else cfg.audio_window,
                              audio_long=cfg.audio_long, audio_max_seconds=cfg.max_audio_seconds)
    if cfg.image_size is not None and isinstance(backbone, ImageBackbone):
        backbone.set_image_size(cfg.image_size)
    if backbone.modality != splits.modality:
        raise DataError(f"{splits.source} holds {splits.modality} data but {backbone.info.name} is a "
                        f"{backbone.modality} backbone.", hint=f"pick a {splits.modality} backbone "
                        "(`graftwork backbones` lists them), or leave --backbone out for the default.")
    console.info(f"weights: {backbone.info.weights}")
    state.backbone = backbone
    train, val = with_val(splits, cfg, console)
    state.parts = {"train": train} | ({"val": val} if val is not None else {}) | (
        {"test": splits.test} if splits.test is not None else {})
    return state


def with_val(splits: Splits, cfg: FitConfig, console: Console) -> tuple[Examples, Examples | None]:
    """The training part and the validation part: the given val split, or a stratified share of train."""
    if splits.val is not None:
        return splits.train, splits.val
    if cfg.val_fraction <= 0:
        console.info("no validation data (val_fraction=0): the probe's regularisation is chosen by cross-validation")
        return splits.train, None
    tr, va = stratified_split(splits.train.labels, cfg.val_fraction, cfg.seed)
    if not va:
        return splits.train, None
    console.info(f"validation: {len(va)} examples held out of {len(splits.train)} "
                 f"(stratified, val_fraction={cfg.val_fraction}, seed={cfg.seed})")
    return splits.train.subset(tr), splits.train.subset(va)


def read_groups(splits: Splits, cfg: FitConfig) -> dict[str, str]:
    """Each example's group, by origin (so the validation part carved from the training data finds its own)."""
    from ..diagnostics.groups import read_groups as read

    assert cfg.groups is not None
    per_split = read(splits, cfg.groups, text_column=cfg.text_column, label_column=cfg.label_column)
    return {origin: group for name, found in per_split.items()
            for origin, group in zip(getattr(splits, name).origins, found, strict=True)}
