"""The run folder: everything needed to use a trained model, written atomically.

Layout::

    config.json         backbone identity and weights fingerprint, classes, preprocessing, plan, settings, versions
    head.safetensors    the trained head
    backbone.safetensors  backbone weights, only when they are not the pretrained ones (e.g. random init)
    adapter.safetensors   LoRA adapter weights (strategy lora): the pretrained backbone + these give the model
    metrics.json        validation/test metrics, baselines, every stage, findings, drift, data summary
    report.html         the same, for people: one self-contained page with the plots

A folder is first written next to its destination and then renamed into place, so an interrupted save never
leaves a half-written run, and ``--force`` replaces an old run only once the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import RunFolderError

CONFIG = "config.json"
HEAD = "head.safetensors"
BACKBONE = "backbone.safetensors"
ADAPTER = "adapter.safetensors"
METRICS = "metrics.json"


def check_out_dir(out: str | Path, force: bool) -> Path:
    """Refuse to overwrite a non-empty folder (or a file) unless ``force``; called before any work starts."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--out {path}: exists and is a file.", hint="choose another --out folder.")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise RunFolderError(f"--out {path}: the folder exists and is not empty; nothing was overwritten.",
                             hint="choose another --out, or pass --force to replace it.")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; a run folder is as shareable as any
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def save_run_folder(out: str | Path, *, config: dict[str, Any], head: dict[str, torch.Tensor],
                    metrics: dict[str, Any], backbone: dict[str, torch.Tensor] | None = None,
                    force: bool = False, extra: dict[str, str] | None = None,
                    adapter: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the run folder; ``extra`` maps further file names (e.g. the report) to their text."""
    path = check_out_dir(out, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.writing-"))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes an owner-only folder
    try:
        save_file({k: v.contiguous() for k, v in head.items()}, str(staging / HEAD))
        if backbone is not None:
            save_file({k: v.contiguous() for k, v in backbone.items()}, str(staging / BACKBONE))
        if adapter is not None:
            save_file({k: v.contiguous() for k, v in adapter.items()}, str(staging / ADAPTER))
        write_json(staging / CONFIG, config)
        write_json(staging / METRICS, metrics)
        for name, text in (extra or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        for file in staging.iterdir():  # some writers (safetensors) make owner-only files
            os.chmod(file, 0o666 & ~_umask())
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


def read_run_folder(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any],
                                               dict[str, torch.Tensor] | None]:
    """(config, head tensors, metrics, backbone tensors or None)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise RunFolderError(f"{root}: not a folder.", hint="pass the --out folder of a `graftwork fit` run.")
    missing = [f for f in (CONFIG, HEAD) if not (root / f).is_file()]
    if missing:
        raise RunFolderError(f"{root}: not a graftwork run folder (missing {', '.join(missing)}).",
                             hint="pass the --out folder of a completed `graftwork fit` run.")
    try:
        config = json.loads((root / CONFIG).read_text(encoding="utf-8"))
        metrics = json.loads((root / METRICS).read_text(encoding="utf-8")) if (root / METRICS).is_file() else {}
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{root}: damaged JSON ({e}).", hint="re-run `graftwork fit`.") from None
    head = load_file(str(root / HEAD))
    backbone = load_file(str(root / BACKBONE)) if (root / BACKBONE).is_file() else None
    return config, head, metrics, backbone


def read_adapter(path: str | Path) -> dict[str, torch.Tensor] | None:
    """The run's LoRA adapter weights, or None when it has none."""
    file = Path(path).expanduser() / ADAPTER
    return load_file(str(file)) if file.is_file() else None
