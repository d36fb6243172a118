"""The run folder: everything needed to use a trained model, written atomically.

Layout::

    config.json         backbone identity and weights fingerprint, classes, preprocessing, plan, settings, versions,
                        and the sha256 of each weight file below ("files"), checked before any is loaded
    head.safetensors    the trained head
    backbone.safetensors  backbone weights, only when they are not the pretrained ones (e.g. random init)
    adapter.safetensors   LoRA adapter weights (strategy lora): the pretrained backbone + these give the model
    metrics.json        validation/test metrics, baselines, every stage, findings, drift, data summary
    report.html         the same, for people: one self-contained page with the plots

A folder is first written next to its destination and then renamed into place, so an interrupted save never
leaves a half-written run, and ``--force`` replaces an old run only once the new one is complete; a crash between
the renames is repaired on the next write or load (:mod:`.replace`). What may be replaced at all is decided by
:mod:`.guard`; one process at a time writes a given folder (:mod:`.lock`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import RunFolderError
from .guard import RUN_FORMAT, check_out_dir
from .lock import out_lock
from .replace import recover_folder, write_folder
from .schema import validate_run_config

CONFIG = "config.json"
HEAD = "head.safetensors"
BACKBONE = "backbone.safetensors"
ADAPTER = "adapter.safetensors"
METRICS = "metrics.json"
WEIGHT_FILES = (HEAD, BACKBONE, ADAPTER)


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
    """Write the run folder; ``extra`` maps further file names (e.g. the report) to their text.

    Holds ``out``'s lock, repairs an interrupted earlier replacement, checks ``out`` may be written
    (:func:`~graftwork.run.guard.check_out_dir`: ``force`` replaces only a graftwork run folder), then writes a
    staging folder and swaps it in crash-safely (:func:`~graftwork.run.replace.write_folder`)."""
    path = Path(out).expanduser()
    config = {"format": RUN_FORMAT} | config  # the marker --force recognises a run folder by

    def fill(staging: Path) -> None:
        save_file({k: v.contiguous() for k, v in head.items()}, str(staging / HEAD))
        if backbone is not None:
            save_file({k: v.contiguous() for k, v in backbone.items()}, str(staging / BACKBONE))
        if adapter is not None:
            save_file({k: v.contiguous() for k, v in adapter.items()}, str(staging / ADAPTER))
        full = config | {"files": weight_digests(staging)}  # checked at load: config.json is written after
        write_json(staging / CONFIG, full)
        write_json(staging / METRICS, metrics)
        for name, text in (extra or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        for file in staging.iterdir():  # some writers (safetensors) make owner-only files
            os.chmod(file, 0o666 & ~_umask())

    with out_lock(path):
        recover_folder(path, locked=True)
        check_out_dir(path, force)
        write_folder(path, fill)
    return path


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks (weight files can be large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def weight_digests(folder: Path) -> dict[str, str]:
    """The fingerprint of each weight file in ``folder``, recorded under ``"files"`` in config.json."""
    return {name: file_digest(folder / name) for name in WEIGHT_FILES if (folder / name).is_file()}


def read_run_folder(path: str | Path, *, task: str | None = None
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor] | None]:
    """(config, head tensors, metrics, backbone tensors or None), each checked before use.

    config.json is validated (:func:`~graftwork.run.schema.validate_run_config`; ``task``: the task the caller
    loads) and every weight file is loaded only after its sha256 matches the one config.json records: a run
    folder copied from elsewhere is data to check, not instructions to follow.
    """
    root = Path(path).expanduser()
    if not root.exists():  # a replace killed between its two renames left the previous run beside the name
        recover_folder(root)
    if not root.is_dir():
        raise RunFolderError(f"{root}: not a folder.", hint="pass the --out folder of a `graftwork fit` run.")
    if not (root / CONFIG).is_file():
        raise RunFolderError(f"{root}: not a graftwork run folder (no {CONFIG}).",
                             hint="pass the --out folder of a completed `graftwork fit` run.")
    try:
        config = json.loads((root / CONFIG).read_text(encoding="utf-8"))
        metrics = json.loads((root / METRICS).read_text(encoding="utf-8")) if (root / METRICS).is_file() else {}
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, or nested beyond reason
        raise RunFolderError(f"{root}: damaged JSON ({type(e).__name__}: {e}).",
                             hint="re-run `graftwork fit`.") from None
    validate_run_config(config, root, task=task)
    head = _verified_tensors(root, HEAD, config)
    if head is None:
        raise RunFolderError(f"{root}: not a complete graftwork run folder (no {HEAD}).",
                             hint="pass the --out folder of a completed `graftwork fit` run.")
    return config, head, metrics, _verified_tensors(root, BACKBONE, config)


def read_adapter(path: str | Path, config: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The run's LoRA adapter weights (checked against ``config``'s fingerprint), or None when it has none."""
    return _verified_tensors(Path(path).expanduser(), ADAPTER, config)


_RESTORE = "restore the run folder from a copy you trust, or re-run `graftwork fit`."


def _verified_tensors(root: Path, name: str, config: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The tensors of weight file ``name`` after checking its sha256 against config.json's record; None when the
    run has no such file. A file without a record, or a record without a file, is refused as well."""
    file = root / name
    expected = (config.get("files") or {}).get(name)
    if not file.is_file():
        if expected:
            raise RunFolderError(f"{file}: missing, but config.json records it (sha256 {expected[:16]}...); the "
                                 "run folder is incomplete.", hint=_RESTORE)
        return None
    if not expected:
        raise RunFolderError(f"{file}: config.json records no fingerprint for this file ('files' → {name!r}), so "
                             "it cannot be checked and was not loaded.",
                             hint="runs written before graftwork recorded weight fingerprints, or whose config.json "
                                  "was edited, cannot be trusted: re-run `graftwork fit`.")
    actual = file_digest(file)
    if actual != expected:
        raise RunFolderError(f"{file}: not the file this run wrote (sha256 {actual[:16]}..., config.json records "
                             f"{expected[:16]}...); it was not loaded.",
                             hint=f"it was changed or damaged after `graftwork fit` wrote it: {_RESTORE}")
    try:
        return load_file(str(file))
    except Exception as e:  # safetensors' own error types: a damaged header, a truncated file
        raise RunFolderError(f"{file}: not a readable safetensors file ({type(e).__name__}: {e}).",
                             hint=_RESTORE) from None
