"""What image backbones share: preprocessing (resize, centre crop, normalise) and pooled forward."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import v2 as T

from ..data.images import resized_centre_crop
from .base import Backbone, BackboneInfo, LayerGroup
from .fold import folded_batchnorm

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

    def train_transform(self, scale: tuple[float, float] = (0.6, 1.0), flip: bool = True) -> _TrainTransform:
        """Fine-tuning augmentation: random resized crop (and horizontal flip), then normalise.

        The crop keeps 60-100 % of the image: with a few hundred examples, ImageNet-style crops down to 8 % (or
        even 35 %) lose the object and cost more than they regularise (measured in BENCHMARKS.md).
        """
        return _TrainTransform(self, scale, flip)

    def transform(self) -> _EvalTransform:
        return _EvalTransform(self)

    def compose(self) -> T.Compose:
        """The evaluation preprocessing as torchvision transforms (what :meth:`transform` computes)."""
        return T.Compose([T.Resize(self.resize, interpolation=_INTERPOLATION[self.interpolation], antialias=True),
                          T.CenterCrop(self.crop), *self.tensor_steps()])

    def tensor_steps(self) -> list[object]:
        """PIL image to a float tensor in [0, 1], normalised: the last steps of every image pipeline."""
        return [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(list(self.mean), list(self.std))]


# Preprocessing runs once per image per epoch, on the training loop's critical path. torchvision's v2 transforms
# spend most of their time in per-call dispatch for the small images of a fine-tuning run (~0.8-1 ms per
# 96 px image, as much as a quarter of a training step's compute per image on 2 CPU cores); these two run the
# same PIL resampling and the same float arithmetic directly, in a third to a half of the time. The evaluation
# transform resamples only the crop's source box (:func:`graftwork.data.images.resized_centre_crop`): within two
# steps of 255 of ``compose()``'s output, a test checks it.

class _EvalTransform:
    """Resize the shorter side (torchvision's rounding), centre crop, scale to [0, 1], normalise."""

    def __init__(self, pre: ImagePreprocess):
        self.pre = pre
        self.resample = _PIL_RESAMPLE[pre.interpolation]
        self.mean, self.std = _stats(pre)
        self.fallback = pre.compose()

    def __call__(self, image: Any) -> torch.Tensor:
        if not isinstance(image, Image.Image) or image.mode != "RGB":
            return self.fallback(image)
        return _normalised(resized_centre_crop(image, self.pre.resize, self.pre.crop, self.resample), self.mean,
                           self.std)


class _TrainTransform:
    """torchvision's random resized crop (same parameters, same random generator), resampled in one PIL call
    from the crop box, then a random horizontal flip, scale to [0, 1], normalise."""

    def __init__(self, pre: ImagePreprocess, scale: tuple[float, float], flip: bool):
        self.crop, self.scale, self.flip = pre.crop, list(scale), flip
        self.ratio = [3.0 / 4.0, 4.0 / 3.0]
        self.resample = _PIL_RESAMPLE[pre.interpolation]
        self.mean, self.std = _stats(pre)
        steps: list[object] = [T.RandomResizedCrop(pre.crop, scale=scale, antialias=True,
                                                   interpolation=_INTERPOLATION[pre.interpolation])]
        if flip:
            steps.append(T.RandomHorizontalFlip())
        self.fallback = T.Compose(steps + pre.tensor_steps())

    def __call__(self, image: Any) -> torch.Tensor:
        if not isinstance(image, Image.Image) or image.mode != "RGB":
            return self.fallback(image)
        top, left, h, w = RandomResizedCrop.get_params(image, self.scale, self.ratio)
        out = image.resize((self.crop, self.crop), self.resample, box=(left, top, left + w, top + h))
        if self.flip and torch.rand(1).item() < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return _normalised(out, self.mean, self.std)


_PIL_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                 "nearest": Image.Resampling.NEAREST}


def _stats(pre: ImagePreprocess) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(pre.mean, dtype=torch.float32).view(-1, 1, 1),
            torch.tensor(pre.std, dtype=torch.float32).view(-1, 1, 1))


def _normalised(image: Image.Image, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """An RGB PIL image as a normalised float CHW tensor (torchvision's ToImage, ToDtype and Normalize)."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return x.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)


class ImageBackbone(Backbone):
    """An image network whose forward gives pooled features (its classifier already removed)."""

    preprocessing_code = 2  # 2: the evaluation crop resampled from its source box (resized_centre_crop)

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
        with folded_batchnorm(self.model):  # the same values, one pass less over the activations
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
