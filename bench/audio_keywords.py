"""Benchmark: audio transfer with real Whisper tiny.en weights on synthesised spoken keywords.

The keyword set is synthesised with espeak-ng (``graftwork.demo.keywords``: 8 words, many voices, speeds,
pitches, 5-30 dB white noise; the test split uses voice variants never heard in training). For 10 and 50
training clips per class, the fixed test split, and one process each:

* ``frozen``: linear probe on pooled encoder features;
* ``gradual``: probe, then unfreezing from the top (validation decides how far);
* ``scratch``: the same encoder from random initialisation (``--no-pretrained``), every layer trained
  (``--strategy full``), with the same epochs budget as ``gradual``;
* ``auto``: every default (the window too when ``--window auto``);
* ``probe``: scikit-learn's default ``LogisticRegression()`` on the frozen run's cached features (needs
  ``frozen`` before it in ``--methods``).

Also measured: feature extraction throughput (clips/s, 1 s clips, empty cache) at the benchmark's window and at
Whisper's native 30 s window.

Usage: python bench/audio_keywords.py --sizes 10,50 --window 1.0|auto [--seeds 0,1,2] [--words yes,no,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

import graftwork
from graftwork.backbones import build_backbone
from graftwork.demo.keywords import WORDS, make_keywords
from graftwork.features import extract_features

sys.path.insert(0, str(Path(__file__).parent))
import strategy_curve  # noqa: E402

BACKBONE = "hf:openai/whisper-tiny.en"


def subsample(src: Path, dst: Path, per_class: int, seed: int) -> Path:
    """``dst/train`` with ``per_class`` clips of each word from ``src/train``, and ``src/test`` as it is."""
    rng = np.random.default_rng(seed)
    for word_dir in sorted((src / "train").iterdir()):
        files = sorted(word_dir.glob("*.wav"))
        (dst / "train" / word_dir.name).mkdir(parents=True, exist_ok=True)
        for f in rng.choice(files, size=min(per_class, len(files)), replace=False):
            os.symlink(f, dst / "train" / word_dir.name / f.name)
    os.symlink(src / "test", dst / "test")
    return dst


def throughput(data: Path, window: float, n: int) -> float:
    """Clips per second through prepare + encoder (no cache), ``n`` test clips."""
    backbone = build_backbone(BACKBONE, audio_window=window)
    clips = sorted(str(p) for p in (data / "test").rglob("*.wav"))[:n]
    t0 = time.perf_counter()
    extract_features(backbone, "audio", clips, clips, cache=None, batch_size=16)
    return n / (time.perf_counter() - t0)


def run_probe(model, data: Path) -> dict:
    """scikit-learn's default logistic regression on ``model``'s cached frozen features of the same clips (and, as
    ``test_acc_standardised``, the image curve's probe on standardised features): ``strategy_curve.run_probe``."""
    probe = strategy_curve.run_probe(model, data)
    return {"method": "probe", "test_acc": round(probe["default_raw_accuracy"], 4),
            "test_acc_standardised": round(probe["test_accuracy"], 4), "seconds": round(probe["seconds"], 1),
            "note": "on the frozen run's cached features"}


def run(data: Path, method: str, window: float | None, epochs: int, seed: int) -> tuple[dict, object]:
    settings = {"frozen": {"strategy": "frozen"}, "gradual": {"strategy": "gradual"}, "auto": {},
                "scratch": {"strategy": "full", "pretrained": False}}[method]
    t0 = time.perf_counter()
    model = graftwork.fit(data, backbone=BACKBONE, audio_window=window, seed=seed, stage_epochs=epochs,
                          unfreeze_patience=1, **settings)
    return {"method": method, "strategy": model.config["plan"]["strategy"],
            "window_s": model.config["preprocessing"].get("window_s"),
            "test_acc": round(model.metrics["test"]["accuracy"], 4),
            "test_macro_f1": round(model.metrics["test"]["macro_f1"], 4), "kept": model.metrics["kept_stage"],
            "not_kept": {s["stage"]: s["rejected"] for s in model.metrics["stages"] if s.get("rejected")},
            "seconds": round(time.perf_counter() - t0, 1)}, model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50")
    ap.add_argument("--methods", default="frozen,gradual,scratch")
    ap.add_argument("--words", default=",".join(WORDS))
    ap.add_argument("--test-per-class", type=int, default=25)
    ap.add_argument("--window", default="1.0",
                    help="seconds the encoder sees (clips are 1 s), or auto: graftwork picks it from the clips")
    ap.add_argument("--epochs", type=int, default=3, help="maximum epochs per fine-tuning stage")
    ap.add_argument("--seed", type=int, default=0, help="the keyword synthesis")
    ap.add_argument("--seeds", default=None, help="training draws and fits (default: --seed)")
    ap.add_argument("--throughput-clips", type=int, default=64, help="0: skip the throughput measurement")
    ap.add_argument("--out", default="bench/results/audio_keywords.json")
    args = ap.parse_args()
    args.window = None if args.window == "auto" else float(args.window)
    work = Path(tempfile.mkdtemp(prefix="graftwork-audio-"))
    os.environ.setdefault("GRAFTWORK_CACHE", str(work / "cache"))
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    words = tuple(w for w in args.words.split(",") if w)
    full = make_keywords(work / "keywords", train_per_class=max(sizes), test_per_class=args.test_per_class,
                         words=words, seed=args.seed)
    results: dict = {"backbone": BACKBONE, "window_s": args.window, "words": list(words),
                     "test_per_class": args.test_per_class, "synthesis_s": round(time.perf_counter() - t0, 1),
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
                     "date": date.today().isoformat(), "runs": []}
    if args.throughput_clips and args.window is not None:
        n = args.throughput_clips
        results["clips_per_s"] = {f"window {args.window:g} s": round(throughput(full, args.window, n), 1),
                                  "window 30 s": round(throughput(full, 30.0, max(8, n // 8)), 2)}
        print(json.dumps(results["clips_per_s"]), flush=True)
    for seed in [int(s) for s in (args.seeds or str(args.seed)).split(",")]:
        for size in sizes:
            data = subsample(full, work / f"n{size}-s{seed}", size, seed)
            frozen = None
            for method in args.methods.split(","):
                if method == "probe":
                    if frozen is None:
                        raise SystemExit("--methods: probe needs frozen before it")
                    result = run_probe(frozen, data)
                else:
                    result, model = run(data, method, args.window, args.epochs, seed)
                    frozen = model if method == "frozen" else frozen
                row = {"per_class": size, "seed": seed} | result
                print(json.dumps(row), flush=True)
                results["runs"].append(row)
    results["total_s"] = round(time.perf_counter() - t0, 1)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
