"""Run in every process of a ``torchrun`` launch by ``test_workers.py`` (one launch for both parts, to start the
processes once): ``worker.py DATA CACHE OUT`` writes ``OUT/rank<RANK>.json`` with

- ``features``: the sharded extraction of the images of DATA (one unreadable) against this process's own
  extraction of all of them; then again, every feature now from rank 0's cache (CACHE);
- ``ddp``: one stage of full fine-tuning of a tiny network with the staged trainer: which training examples
  this process saw in each epoch, and digests of its parameters and buffers before and after.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from graftwork.backbones import build_backbone
from graftwork.distributed import processes
from graftwork.features import FeatureCache, extract_features


def _tiny_backbone() -> Any:
    torch.manual_seed(0)
    return build_backbone("timm:test_efficientnet", pretrained=False)


def features(data: Path, cache_dir: Path) -> dict[str, Any]:
    procs = processes()
    backbone = _tiny_backbone()
    items = sorted(str(p) for p in data.rglob("*.png"))
    cache = FeatureCache(cache_dir, backbone.cache_key()) if procs.is_main else None
    shared = extract_features(backbone, "image", items, items, cache=cache, batch_size=3, processes=procs)
    alone = extract_features(backbone, "image", items, items, cache=None, batch_size=3)
    again = extract_features(backbone, "image", items, items, cache=cache, batch_size=3, processes=procs)
    return {"n": len(items), "share": procs.shard(list(range(len(items)))),
            "ok": shared.ok.tolist(), "ok_alone": alone.ok.tolist(),
            "max_diff": float(np.abs(shared.features - alone.features).max()),
            "problems": [str(p) for p in shared.problems], "computed": shared.computed,
            "again_computed": again.computed, "again_from_cache": again.from_cache,
            "again_max_diff": float(np.abs(again.features - alone.features).max())}


class _ToyTask:
    """Random 32x32 images of 3 classes; records the indices of the examples this process trains on."""

    score_name = "val_acc"

    def __init__(self, n: int = 24) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 3, 32, 32, generator=g)
        self.y = torch.arange(n) % 3
        self.seen: list[list[int]] = []

    def train_dataset(self) -> Any:
        return [(i, self.x[i], self.y[i]) for i in range(len(self.y))]

    def collate(self, items: list) -> Any:
        return [i for i, _, _ in items], torch.stack([x for _, x, _ in items]), torch.stack([y for _, _, y in items])

    def loss(self, net: Any, batch: Any, device: torch.device) -> tuple[torch.Tensor, int, int]:
        idx, x, y = batch
        self.seen[-1].extend(idx)
        logits = net(x.to(device))
        return F.cross_entropy(logits, y.to(device)), len(y), int((logits.argmax(1) == y.to(device)).sum())

    def validate(self, net: Any, device: torch.device) -> Any:
        from graftwork.train import ValScore

        self.seen.append([])  # the next epoch's examples
        logits = net(self.x[:6].to(device))
        return ValScore(float((logits.argmax(1) == self.y[:6]).float().mean()), float(F.cross_entropy(logits, self.y[:6])))


def _digest(named: Any) -> str:
    h = hashlib.sha256()
    for name, value in sorted(named):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _digests(net: torch.nn.Module) -> dict[str, str]:
    """Of the parameters (what the gradients change) and of the buffers (BatchNorm's running statistics)."""
    return {"params": _digest(net.named_parameters()), "buffers": _digest(net.named_buffers())}


def ddp() -> dict[str, Any]:
    from graftwork.strategies.base import Rates, TransferNet
    from graftwork.strategies.full import FullStrategy
    from graftwork.strategies.head import LinearHead
    from graftwork.train import Progress, StagedTrainer, TrainSettings

    backbone = _tiny_backbone()
    torch.manual_seed(0)
    net = TransferNet(backbone, LinearHead(backbone.feature_dim, 3))
    task = _ToyTask()
    task.seen.append([])
    strategy = FullStrategy(Rates(lr=1e-2), bn_stats="update")
    before = _digests(net)
    trainer = StagedTrainer(net, task, strategy, TrainSettings(stage_epochs=2, batch_size=4, seed=0, cpu=True))
    trainer.fit(Progress(schedule=strategy.schedule(len(backbone.layer_groups()))))
    return {"world": trainer.accelerator.num_processes, "seen": [s for s in task.seen if s],
            "before": before, "after": _digests(net)}


def main() -> None:
    data, cache, out = (Path(a) for a in sys.argv[1:4])
    result = {"features": features(data, cache), "ddp": ddp()}
    (out / f"rank{processes().rank}.json").write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
