"""Training inputs for fine-tuning: examples → (model input, label), with augmentation for images.

Decoded images are kept in memory (downsized to the preprocessing's resize size, which loses nothing the crop
would keep), so that each epoch pays for augmentation and the forward pass, not for JPEG decoding.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..backbones.base import Backbone
from ..backbones.vision import ImageBackbone
from ..data import Examples, load_image

MAX_DECODED_BYTES = 4 * 1024**3


class DecodedImages:
    """In-memory cache of decoded, downsized RGB images, bounded by ``MAX_DECODED_BYTES``."""

    def __init__(self, shorter_side: int, interpolation: str = "bilinear"):
        self.side = shorter_side
        self.resample = Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR
        self.images: dict[str, Image.Image] = {}
        self.bytes = 0

    @classmethod
    def for_backbone(cls, backbone: Backbone) -> DecodedImages | None:
        """The cache at ``backbone``'s preprocessing size; None for a backbone that does not take images."""
        if backbone.modality != "image":
            return None
        return cls(backbone.preprocessing["resize"], backbone.preprocessing["interpolation"])

    def get(self, path: str) -> Image.Image:
        hit = self.images.get(path)
        if hit is not None:
            return hit
        image = load_image(path)
        w, h = image.size
        if min(w, h) > self.side:
            scale = self.side / min(w, h)
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), self.resample)
        size = image.size[0] * image.size[1] * 3
        if self.bytes + size <= MAX_DECODED_BYTES:
            self.images[path] = image
            self.bytes += size
        return image


class TrainingInputs(Dataset):
    """Labelled examples prepared for a backbone; ``augment`` applies the training transform to images."""

    def __init__(self, backbone: Backbone, examples: Examples, labels: list[int], *, augment: bool,
                 decoded: DecodedImages | None = None):
        self.backbone = backbone
        self.items = examples.items
        self.labels = labels
        self.modality = examples.modality
        self.image = examples.modality == "image"
        self.decoded = decoded
        self.transform = None
        if self.image and augment and isinstance(backbone, ImageBackbone):
            self.transform = backbone.pre.train_transform()

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, index: list[int] | np.ndarray) -> TrainingInputs:
        """The examples at ``index``, prepared the same way (a cross-validation fold)."""
        out = copy.copy(self)
        out.items, out.labels = [self.items[int(i)] for i in index], [self.labels[int(i)] for i in index]
        return out

    def __getitem__(self, i: int) -> tuple[Any, int]:
        if not self.image:  # audio is decoded each epoch (cheap next to the forward pass); no augmentation
            return self.backbone.prepare(self.backbone.load(self.items[i])), self.labels[i]
        image = self.decoded.get(self.items[i]) if self.decoded else load_image(self.items[i])
        x = self.transform(image) if self.transform is not None else self.backbone.prepare(image)
        return x, self.labels[i]


def collate_for(backbone: Backbone):
    def collate(rows: list[tuple[Any, int]]) -> tuple[Any, torch.Tensor]:
        return backbone.collate([x for x, _ in rows]), torch.tensor([y for _, y in rows], dtype=torch.long)

    return collate
