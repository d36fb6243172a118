"""Shared fixtures: offline environment, a private feature cache, tiny datasets and tiny backbones.

Every backbone here is randomly initialised from a config (timm's test models, a torchvision model built
without weights, tiny transformers configs saved to a temporary folder): no network, no downloaded files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["GRAFTWORK_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

@pytest.fixture(scope="session")
def built_once(tmp_path_factory) -> Callable[[str, Callable[[Path], None], Path], Path]:
    """``built_once(name, build, into)`` copies into ``into`` a folder that ``build(folder)`` makes once per session.

    For tests that each need the same trained run (and its data) and may change their copy: the real fit runs
    once, every test gets its own copy of what it wrote."""
    store = tmp_path_factory.mktemp("built-once")

    def copy_of(name: str, build: Callable[[Path], None], into: Path) -> Path:
        made = store / name
        if not made.exists():
            staging = store / f".{name}.building"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            build(staging)
            staging.rename(made)
        shutil.copytree(made, into, symlinks=True, dirs_exist_ok=True)
        return into

    return copy_of


COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}
WORDS = {
    "fruit": ["apple", "banana", "cherry", "grape", "melon", "pear"],
    "vehicle": ["car", "truck", "bus", "train", "bicycle", "boat"],
}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own feature cache and torch/HF caches, so nothing leaks between tests."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GRAFTWORK_CACHE", str(root / "graftwork"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf"))
    yield


def make_image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 40) -> Image.Image:
    base = np.array(colour, dtype=np.float32)[None, None, :]
    noise = rng.normal(0, 25, size=(size, size, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def make_image_folder(root: Path, per_class: int = 8, classes: tuple[str, ...] = ("red", "blue"),
                      seed: int = 0, ext: str = "png") -> Path:
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(COLOURS[c], rng).save(root / c / f"{c}_{i}.{ext}")
    return root


def make_text_rows(per_class: int = 12, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for label, words in WORDS.items():
        for _ in range(per_class):
            rows.append((" ".join(rng.choice(words, size=4)), label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture
def text_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "texts.csv", make_text_rows())


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with a small word-level vocabulary, saved as a Hugging Face model folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w for ws in WORDS.values() for w in ws}) + \
        ["the", "a", "is", "i", "my", "hello", "world", "##s"]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    """A 2-layer ViT on 32x32 images, saved as a Hugging Face model folder."""
    import torch
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def write_tone(path: Path, freq: float, *, seconds: float = 0.6, rate: int = 16000, channels: int = 1,
               seed: int = 0) -> Path:
    """A sine tone with a little noise, as an audio file in the format the suffix names."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.01, len(t))
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), rate)
    return path


def make_tone_folder(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """``root/low`` (300-400 Hz) and ``root/high`` (2-3 kHz) tones of varied length, rate and channel count."""
    rng = np.random.default_rng(seed)
    rates, exts = (8000, 16000, 22050, 44100), ("wav", "flac", "ogg")
    for label, (lo, hi) in {"low": (300, 400), "high": (2000, 3000)}.items():
        for i in range(per_class):
            write_tone(root / label / f"{label}_{i}.{exts[i % 3]}", float(rng.uniform(lo, hi)),
                       seconds=float(rng.uniform(0.2, 0.9)), rate=rates[i % 4], channels=1 + i % 2, seed=i)
    return root


@pytest.fixture
def tone_folder(tmp_path) -> Path:
    return make_tone_folder(tmp_path / "tones")


@pytest.fixture
def tone():
    """:func:`write_tone`, for test folders that cannot import this module."""
    return write_tone


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A 2-layer Whisper (32-d) saved as a Hugging Face model folder, with the default feature extractor."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    folder = tmp_path_factory.mktemp("tiny-whisper")
    torch.manual_seed(0)
    config = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64, vocab_size=64,
                           pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
                           max_target_positions=16, num_mel_bins=80, max_source_positions=1500)
    WhisperModel(config).save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    """A 2-layer Wav2Vec2 (32-d, two conv layers, 80 samples per frame) with no preprocessor config."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(16, 16), conv_stride=(10, 8), conv_kernel=(10, 8), vocab_size=8,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


def add_trained_looking_adapters(model, r: int, alpha: float) -> None:
    """Give a fitted model's backbone LoRA adapters with non-zero weights (freshly applied adapters are zero,
    so they would not change the outputs), recorded in its config as a LoRA run would be: for tests of what
    saving and loading adapters does, not of whether LoRA trains."""
    import torch

    from graftwork.backbones.base import fingerprint_module
    from graftwork.strategies.lora import adapter_parameters, apply_lora

    bb = model.backbone
    pretrained = bb.info.fingerprint
    apply_lora(bb, r=r, alpha=alpha, dropout=0.0, targets=None)
    with torch.no_grad():
        for p in adapter_parameters(bb):
            p.add_(0.2 * torch.randn_like(p))
    bb.info.extra |= {"fine_tuned": "lora", "pretrained_fingerprint": pretrained}
    bb.info.fingerprint = fingerprint_module(bb)
    model.config["backbone"] = bb.info.to_dict() | {"load_name": bb.info.name}


@pytest.fixture
def count_forwards(monkeypatch):
    """Counts examples that go through any backbone built by fit()."""
    import graftwork.classify.prepare as fit_module
    from graftwork.backbones import build_backbone

    counter = {"examples": 0}

    def build(*args, **kwargs):
        b = build_backbone(*args, **kwargs)
        b.register_forward_hook(lambda m, inp, out: counter.__setitem__("examples", counter["examples"] + len(out)))
        return b

    monkeypatch.setattr(fit_module, "build_backbone", build)
    return counter
