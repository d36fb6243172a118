"""The trainer's callbacks driven directly: WiSE-FT's interpolation (end to end, a tiny model's fine-tuned stage
rarely beats its probe, so there would be nothing to interpolate)."""

from __future__ import annotations

import pytest
import torch

from graftwork.train import WiseFT

from .test_trainer import _trainer, images  # noqa: F401  (the fixture)


def test_wise_ft_keeps_the_interpolation_best_on_validation(images):  # noqa: F811
    trainer, progress = _trainer(images, batch_size=8)
    wise = WiseFT()
    wise.on_fit_start(trainer, progress)  # the start: the network as the fit begins
    start = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    with torch.no_grad():  # stand in for a fine-tuned stage that moved far from the start
        for p in trainer.net.parameters():
            p.add_(3.0 * torch.randn_like(p))
    tuned = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    val = trainer.validate()
    progress.stages.append({"stage": "unfreeze 1", "val_acc": val.score, "val_loss": val.loss})
    progress.best = {"stage": "unfreeze 1", "val_acc": val.score, "val_loss": val.loss}
    wise.on_fit_end(trainer, progress)
    record = progress.stages[-1]["wise"]
    assert [t["alpha"] for t in record["tried"]] == [1.0, 0.25, 0.5, 0.75]
    best = max(record["tried"], key=lambda t: (t["val_acc"], -t["val_loss"]))
    assert record["alpha"] == best["alpha"] and progress.best["wise_alpha"] == best["alpha"]
    assert progress.best["val_acc"] == pytest.approx(best["val_acc"]) and progress.done_wise
    a = record["alpha"]
    key = "net.head.fc.weight" if "net.head.fc.weight" in start else "head.fc.weight"
    torch.testing.assert_close(trainer.net.state_dict()[key], torch.lerp(start[key], tuned[key], a))
    assert trainer.validate().score == pytest.approx(best["val_acc"])  # the network holds what was kept


def test_wise_ft_does_nothing_when_the_probe_is_kept(images):  # noqa: F811
    trainer, progress = _trainer(images, batch_size=8)
    wise = WiseFT()
    wise.on_fit_start(trainer, progress)
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    wise.on_fit_end(trainer, progress)  # best is the linear probe
    assert "wise" not in progress.stages[0] and not progress.done_wise
    for k, v in trainer.net.state_dict().items():
        assert torch.equal(v, before[k])

