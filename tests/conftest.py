"""Shared fixtures: offline environment, a private feature cache, tiny datasets and tiny backbones.

Every backbone here is randomly initialised from a config (timm's test models, a torchvision model built
without weights, tiny transformers configs saved to a temporary folder): no network, no downloaded files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["GRAFTWORK_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

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
