"""What a run folder's ``config.json`` may say, checked before any of it is used.

A run folder is data: it may have been copied from another machine, edited by hand, or damaged. Every value that
loading a run acts on (the task, class names or tags, the backbone and its LoRA adapters, image sizes, audio
windows, head sizes, weight-file fingerprints) is checked here first, and all that is wrong is reported at once,
each problem naming the key and the value found. Values kept only as provenance (the fit settings, the data
path, library versions) are not acted on at load, so they are not checked.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import ProblemList, RunFolderError
from .guard import RUN_FORMAT

FORMATS = (RUN_FORMAT,)
TASKS = ("classification", "ner")  # the tasks whose run folders this module checks (generate: its own reader)
RUN_TASKS = ("classification", "ner", "generate")  # every task a run folder's config.json may name
MODALITIES = ("image", "text", "audio")
AUDIO_LONG = ("crop", "split")
MAX_CLASSES = 100_000
MAX_IMAGE_SIDE = 4096  # larger than any pretrained backbone's input; a bigger value is damage, not a setting
MAX_WINDOW_S = 30.0  # the longest audio window a backbone sees at once (Whisper's)
MAX_LORA_RANK = 4096
DIGEST = re.compile(r"[0-9a-f]{64}")
TAG = re.compile(r"O|[BI]-\S+")


def validate_run_config(config: Any, folder: str | Path, *, task: str | None = None) -> dict[str, Any]:
    """``config`` when every value loading acts on is usable; otherwise a :class:`RunFolderError` listing each
    problem (key, what was expected, the value found). ``task``: the task the caller loads, when it needs one."""
    where = f"{Path(folder) / 'config.json'}"
    if not isinstance(config, dict):
        raise RunFolderError(f"{where}: expected a JSON object; got {_show(config)}.", hint=_HINT)
    found = config.get("task", "classification")
    if task is not None and found != task:
        raise RunFolderError(f"{where}: this is a {found!r} run, not a {task!r} run.",
                             hint="load it with graftwork.load(), which picks the right model for the run.")
    p = ProblemList()
    _check(p, config.get("format") in FORMATS, "format", f"one of {', '.join(FORMATS)}", config.get("format"))
    _check(p, found in TASKS, "task", f"one of {', '.join(TASKS)}", found)
    if found == "ner":
        _check_tags(p, config.get("tags"))
    else:
        _check_names(p, "classes", config.get("classes"), minimum=2)
    _check_backbone(p, config.get("backbone"))
    _check_preprocessing(p, config.get("preprocessing"))
    _check_head(p, config.get("head"))
    _check_files(p, config.get("files"))
    if p:
        raise RunFolderError(f"{where}: {len(p)} value(s) that graftwork cannot use:", problems=p.items, hint=_HINT)
    return config


def read_run_config(folder: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of the run folder ``folder``, without loading any weights: what the task lookup
    reads. Its values are checked later, by the task's own loader; here only that it is a folder holding a JSON
    object. A folder left between the two renames of a killed replace is recovered first, as on load."""
    from .replace import recover_folder

    root = Path(folder).expanduser()
    if not root.exists():
        recover_folder(root)
    if not root.is_dir():
        raise RunFolderError(f"{root}: not a folder.", hint="pass the --out folder of a `graftwork fit` run.")
    where = root / "config.json"
    if not where.is_file():
        raise RunFolderError(f"{root}: not a graftwork run folder (no config.json).",
                             hint="pass the --out folder of a completed `graftwork fit` run.")
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # unreadable, not JSON, not UTF-8, nested beyond reason
        raise RunFolderError(f"{where}: damaged JSON ({type(e).__name__}: {e}).", hint=_HINT) from None
    if not isinstance(config, dict):
        raise RunFolderError(f"{where}: expected a JSON object; got {_show(config)}.", hint=_HINT)
    return config


def run_task(folder: str | Path) -> str:
    """The task of the run folder ``folder``: ``config.json``'s ``"task"`` (a run written before tasks were
    recorded is a classification run), checked to be one graftwork knows."""
    config = read_run_config(folder)
    task = config.get("task", "classification")
    if task not in RUN_TASKS:
        raise RunFolderError(f"{Path(folder).expanduser() / 'config.json'}: 'task' must be one of "
                             f"{', '.join(RUN_TASKS)}. Got {_show(task)} instead.", hint=_HINT)
    return str(task)


_HINT = ("config.json was edited or damaged after `graftwork fit` wrote it: restore the run folder from a copy you "
         "trust, or re-run `graftwork fit`.")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check(p: ProblemList, ok: bool, key: str, expected: str, value: Any) -> bool:
    if not ok:
        p.add(f"'{key}'", f"expected {expected}; got {_show(value)}")
    return ok


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _int_in(p: ProblemList, section: dict[str, Any], key: str, low: int, high: int, prefix: str) -> None:
    value: Any = section.get(key)
    _check(p, _is_int(value) and low <= value <= high, f"{prefix}.{key}", f"an integer in [{low}, {high}]", value)


def _check_names(p: ProblemList, key: str, names: Any, *, minimum: int) -> bool:
    """A list of distinct, non-empty strings (class names or tags)."""
    if not _check(p, isinstance(names, list) and minimum <= len(names) <= MAX_CLASSES, key,
                  f"a list of {minimum} to {MAX_CLASSES} names", names):
        return False
    if not _check(p, all(isinstance(n, str) and n.strip() for n in names), key, "names that are non-empty strings",
                  names):
        return False
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    return _check(p, not repeated, key, f"distinct names ({_show(repeated)} repeated)", names)


def _check_tags(p: ProblemList, tags: Any) -> None:
    if _check_names(p, "tags", tags, minimum=1):
        bad = [t for t in tags if not TAG.fullmatch(t)]
        _check(p, not bad, "tags", f"IOB2 tags: O, B-TYPE, I-TYPE (not {_show(bad[:3])})", tags)


def _section(p: ProblemList, value: Any, key: str) -> dict[str, Any] | None:
    return value if _check(p, isinstance(value, dict), key, "a JSON object", value) else None


def _check_backbone(p: ProblemList, info: Any) -> None:
    if (info := _section(p, info, "backbone")) is None:
        return
    for key in ("name", "load_name"):
        _check(p, isinstance(info.get(key), str) and bool(info[key].strip()), f"backbone.{key}",
               "a backbone name", info.get(key))
    _check(p, isinstance(info.get("fingerprint", ""), str), "backbone.fingerprint", "a sha256 digest",
           info.get("fingerprint"))
    if (extra := _section(p, info.get("extra", {}), "backbone.extra")) is None:
        return
    if extra.get("lora") is not None and (lora := _section(p, extra["lora"], "backbone.extra.lora")) is not None:
        _int_in(p, lora, "r", 1, MAX_LORA_RANK, "backbone.extra.lora")
        _check(p, _is_number(lora.get("alpha")) and lora["alpha"] > 0, "backbone.extra.lora.alpha",
               "a number > 0", lora.get("alpha"))
        _check(p, _is_number(lora.get("dropout")) and 0 <= lora["dropout"] < 1, "backbone.extra.lora.dropout",
               "a number in [0, 1)", lora.get("dropout"))
        targets = lora.get("targets")
        _check(p, isinstance(targets, list) and bool(targets) and all(isinstance(t, str) and t for t in targets),
               "backbone.extra.lora.targets", "a non-empty list of layer names", targets)


def _check_preprocessing(p: ProblemList, pre: Any) -> None:
    if (pre := _section(p, pre, "preprocessing")) is None:
        return
    kind = pre.get("kind")
    if not _check(p, kind in MODALITIES, "preprocessing.kind", f"one of {', '.join(MODALITIES)}", kind):
        return
    if kind == "image":
        _int_in(p, pre, "crop", 16, MAX_IMAGE_SIDE, "preprocessing")
        _int_in(p, pre, "resize", 16, 2 * MAX_IMAGE_SIDE, "preprocessing")
    elif kind == "audio":
        window: Any = pre.get("window_s")
        _check(p, _is_number(window) and 0 < window <= MAX_WINDOW_S, "preprocessing.window_s",
               f"a number of seconds in (0, {MAX_WINDOW_S:g}]", window)
        _int_in(p, pre, "sample_rate", 1000, 384_000, "preprocessing")
        _check(p, pre.get("long", "split") in AUDIO_LONG, "preprocessing.long", f"one of {', '.join(AUDIO_LONG)}",
               pre.get("long"))
    elif "max_length" in pre:
        _int_in(p, pre, "max_length", 1, 1_000_000, "preprocessing")


def _check_head(p: ProblemList, head: Any) -> None:
    if (head := _section(p, head, "head")) is not None:
        _int_in(p, head, "in_features", 1, 1_000_000, "head")


def _check_files(p: ProblemList, files: Any) -> None:
    """Fingerprints of the weight files: their absence is reported by the file check, which names the file."""
    if files is None or (files := _section(p, files, "files")) is None:
        return
    for name, digest in files.items():
        _check(p, isinstance(digest, str) and bool(DIGEST.fullmatch(digest)), f"files.{name}",
               "a sha256 digest (64 lowercase hex digits)", digest)
