"""What image backbones share: preprocessing (resize, centre crop, normalise) and pooled forward."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from .base import Backbone, BackboneInfo, LayerGroup

_INTERPOLATION = {
    "bilinear": T.InterpolationMode.BILINEAR,
    "bicubic": T.InterpolationMode.BICUBIC,
    "nearest": T.InterpolationMode.NEAREST,
}


@dataclass
class ImagePreprocess:
    """Evaluation preprocessing: resize the shorter side, centre crop, scale to [0, 1], normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def train_transform(self, scale: tuple[float, float] = (0.6, 1.0), flip: bool = True) -> T.Compose:
        """Fine-tuning augmentation: random resized crop (and horizontal flip), then normalise.

        The crop keeps 60-100 % of the image: with a few hundred examples, ImageNet-style crops down to 8 % (or
        even 35 %) lose the object and cost more than they regularise (measured in BENCHMARKS.md).
        """
        steps: list[object] = [T.RandomResizedCrop(self.crop, scale=scale, antialias=True,
                                                   interpolation=_INTERPOLATION[self.interpolation])]
        if flip:
            steps.append(T.RandomHorizontalFlip())
        steps += [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(list(self.mean), list(self.std))]
        return T.Compose(steps)

    def transform(self) -> T.Compose:
        return T.Compose([
            T.Resize(self.resize, interpolation=_INTERPOLATION[self.interpolation], antialias=True),
            T.CenterCrop(self.crop),
            T.ToImage(),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(list(self.mean), list(self.std)),
        ])


class ImageBackbone(Backbone):
    """An image network whose forward gives pooled features (its classifier already removed)."""

    def __init__(self, model: nn.Module, info: BackboneInfo, preprocess: ImagePreprocess,
                 groups: list[LayerGroup] | None = None):
        super().__init__()
        # convolutional networks run in channels-last layout: oneDNN's (and cuDNN's) fast path for convolutions,
        # 1.4-1.7x faster training steps on CPU for MobileNetV2 and EfficientNet-Lite0 (BENCHMARKS.md); weights
        # are saved contiguous (run/folder.py), so the layout never leaves the process
        self.channels_last = is_convolutional(model)
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        self.info = info
        self.pre = preprocess
        self._transform = preprocess.transform()
        self._groups = groups

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"kind": "image", **self.pre.to_dict()}

    def set_image_size(self, crop: int, resize: int | None = None) -> None:
        """Change the input size (resize keeps the backbone's crop ratio unless given)."""
        ratio = self.pre.resize / self.pre.crop
        try:
            measure_feature_dim(self.model, crop)
        except Exception as e:  # e.g. a ViT with a fixed position-embedding size
            from ..errors import ConfigError

            raise ConfigError(f"'image_size': {self.info.name} does not accept {crop}x{crop} inputs "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}).",
                              hint=f"leave --image-size out (the model's size is {self.pre.crop}).") from None
        self.pre = ImagePreprocess(resize or int(round(crop * ratio)), crop, self.pre.mean, self.pre.std,
                                   self.pre.interpolation)
        self._transform = self.pre.transform()

    def prepare(self, raw: Image.Image) -> torch.Tensor:
        return self._transform(raw)

    def collate(self, prepared: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(prepared)

    def batch_to(self, batch: torch.Tensor, device: torch.device | str) -> torch.Tensor:
        batch = super().batch_to(batch, device)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.model(batch)
        return out.flatten(1) if out.ndim > 2 else out

    def layer_groups(self) -> list[LayerGroup]:
        if self._groups is None:
            raise RuntimeError("layer groups were not set for this backbone")
        return self._groups


def is_convolutional(model: nn.Module) -> bool:
    """More than one 2-d convolution: a CNN (a ViT's single patch-embedding convolution does not count)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules()) > 1


def measure_feature_dim(model: nn.Module, size: int) -> int:
    """Feature size by one forward pass of a small dummy batch (exact for any architecture)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    return int(out.flatten(1).shape[1])
