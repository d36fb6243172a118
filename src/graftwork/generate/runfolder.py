"""The run folder of a generation run: written atomically, and checked before anything in it is used.

Layout::

    config.json          format marker, task "generate", the base model, strategy, LoRA settings, formatting,
                         generation defaults, fit settings, versions, and the sha256 of each weight file
    adapter.safetensors  LoRA adapter weights (strategy lora), in PEFT's key layout
    model.safetensors    every weight (strategy full)
    tokenizer/           the tokenizer and its chat template, as used in training
    metrics.json         history, validation/test metrics, the control, forgetting, findings, samples
    report.html          the same for people
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import RunFolderError
from ..run.folder import file_digest, write_json
from ..run.lock import out_lock
from ..run.replace import recover_folder, write_folder

FORMAT = "graftwork-run/1"
TASK = "generate"
ADAPTER = "adapter.safetensors"
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer"
STRATEGIES = ("lora", "full")


def save_generation_run(out: str | Path, *, config: dict[str, Any], metrics: dict[str, Any], model: Any,
                        tokenizer: Any, lora: bool, extra: dict[str, str] | None = None) -> Path:
    """Write the run to a staging folder beside ``out`` and swap it in crash-safely
    (:func:`graftwork.run.replace.write_folder`; ``out`` was checked by the out-folder guard before training)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file, save_model

    path = Path(out).expanduser()

    def fill(staging: Path) -> None:
        if lora:
            state = get_peft_model_state_dict(model)
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(staging / ADAPTER))
        else:
            save_model(model, str(staging / WEIGHTS))  # handles tied embeddings
        tokenizer.save_pretrained(str(staging / TOKENIZER))
        files = {name: file_digest(staging / name) for name in (ADAPTER, WEIGHTS) if (staging / name).is_file()}
        write_json(staging / "config.json", config | {"files": files})
        write_json(staging / "metrics.json", metrics)
        for name, text in (extra or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        mask = os.umask(0)
        os.umask(mask)
        for file in staging.rglob("*"):  # some writers (safetensors) make owner-only files
            os.chmod(file, (0o777 if file.is_dir() else 0o666) & ~mask)

    with out_lock(path):  # the fit holds it already (re-entrant); a direct call takes it here
        recover_folder(path, locked=True)
        write_folder(path, fill)
    return path


def run_task(path: str | Path) -> str | None:
    """The task a run folder holds (``config.json``'s ``task``), or None when it cannot be read."""
    try:
        config = json.loads((Path(path).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    task = config.get("task", "classification") if isinstance(config, dict) else None
    return task if isinstance(task, str) else None


def read_generation_config(path: str | Path) -> dict[str, Any]:
    """config.json of a generation run, with every value loading acts on checked."""
    root = Path(path).expanduser()
    where = root / "config.json"
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{where}: cannot be read ({e}).", hint="pass the --out folder of a completed "
                             "`graftwork fit --task generate` run.") from None
    problems = []
    if not isinstance(config, dict):
        raise RunFolderError(f"{where}: expected a JSON object.", hint="re-run `graftwork fit`.")
    if config.get("format") != FORMAT:
        problems.append(f"'format': expected {FORMAT!r}; got {config.get('format')!r}")
    if config.get("task") != TASK:
        problems.append(f"'task': expected {TASK!r}; got {config.get('task')!r}")
    if config.get("strategy") not in STRATEGIES:
        problems.append(f"'strategy': expected one of {', '.join(STRATEGIES)}; got {config.get('strategy')!r}")
    backbone = config.get("backbone")
    if not isinstance(backbone, dict) or not isinstance(backbone.get("name"), str):
        problems.append("'backbone': expected an object with a 'name'")
    lora = config.get("lora")
    if config.get("strategy") == "lora" and not (isinstance(lora, dict) and isinstance(lora.get("r"), int)
                                                 and 1 <= lora["r"] <= 4096):
        problems.append("'lora': expected an object with an integer 'r' in [1, 4096]")
    if problems:
        raise RunFolderError(f"{where}: {len(problems)} value(s) that graftwork cannot use: " + "; ".join(problems),
                             hint="restore the run folder from a copy you trust, or re-run `graftwork fit`.")
    return config


def verified_file(root: Path, name: str, config: dict[str, Any]) -> Path:
    """``root/name`` after checking its sha256 against config.json's record."""
    file = root / name
    expected = (config.get("files") or {}).get(name)
    if not file.is_file() or not expected:
        raise RunFolderError(f"{file}: missing, or not recorded in config.json's 'files'; not loaded.",
                             hint="restore the run folder from a copy you trust, or re-run `graftwork fit`.")
    if file_digest(file) != expected:
        raise RunFolderError(f"{file}: not the file this run wrote (its sha256 differs from config.json's); "
                             "not loaded.", hint="restore the run folder from a copy you trust, or re-run "
                                                 "`graftwork fit`.")
    return file
