"""The staged trainer on tiny models: hook order, gradient accumulation, one prepared model per stage."""

from __future__ import annotations

import pytest
import torch

from graftwork.backbones import build_backbone
from graftwork.data import Examples
from graftwork.strategies.base import Rates
from graftwork.strategies.gradual import GradualStrategy
from graftwork.strategies.head import LinearHead
from graftwork.strategies.inputs import TrainingInputs
from graftwork.train import Callback, Progress

from ..conftest import make_image_folder
from .tiny import make_trainer


@pytest.fixture
def images(tmp_path):
    folder = make_image_folder(tmp_path / "img", per_class=8, classes=("red", "blue"))
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    labels = [0 if "red" in p else 1 for p in paths]
    return paths, labels


class FixedStatistics(GradualStrategy):
    """Gradual, with the head's standardisation on its running statistics (not the batch's): no statistic then
    depends on how the examples are cut into batches."""

    def train_mode(self, net, n_unfrozen):
        super().train_mode(net, n_unfrozen)
        net.head.norm.eval()


def _trainer(images, *, batch_size, accumulation=1, epochs=1, extra=None, schedule_groups=1):
    torch.manual_seed(0)
    bb = build_backbone("timm:test_efficientnet", pretrained=False)
    bb.set_image_size(32)
    paths, labels = images
    ex = Examples("image", paths, ["red" if y == 0 else "blue" for y in labels], paths)
    data = TrainingInputs(bb, ex, labels, augment=False)  # no augmentation: batches are deterministic
    head = LinearHead(bb.feature_dim, 2)
    strategy = FixedStatistics(Rates(lr=0.05, lr_ratio=2.0))
    trainer = make_trainer(bb, head, data, data, strategy, epochs=epochs, patience=epochs, batch_size=batch_size,
                           accumulation=accumulation, extra=extra)
    val = trainer.validate()
    progress = Progress(schedule=[schedule_groups] if isinstance(schedule_groups, int) else schedule_groups,
                        best={"stage": "linear probe", "val_acc": val.score, "val_loss": val.loss},
                        stages=[{"stage": "linear probe", "val_acc": val.score, "val_loss": val.loss}])
    return trainer, progress


def test_accumulating_two_half_batches_steps_like_one_full_batch(images):
    """16 examples: batches of 8, or of 4 with gradients summed over 2 (the same examples in the same order,
    no dropout, every normalisation on fixed statistics): the same optimizer steps, so the same weights."""
    trained = [Trained(), Trained()]
    whole, p1 = _trainer(images, batch_size=8, extra=[trained[0]])
    halves, p2 = _trainer(images, batch_size=4, accumulation=2, extra=[trained[1]])
    start = whole.net.head.fc.weight.detach().clone()
    whole.fit(p1)
    halves.fit(p2)
    torch.testing.assert_close(trained[1].weight, trained[0].weight, rtol=1e-4, atol=1e-5)
    assert float((trained[0].weight - start).abs().max()) > 1e-4, "training moved the weights"


class Trained(Callback):
    """The head's weights after the last epoch (before selection restores the kept stage's)."""

    def on_epoch_end(self, trainer, state, row):
        self.weight = trainer.net.head.fc.weight.detach().clone()


class Recorder(Callback):
    def __init__(self):
        self.calls: list[str] = []
        self.steps = 0

    def on_fit_start(self, trainer, state):
        self.calls.append("fit_start")

    def on_stage_start(self, trainer, state):
        self.calls.append(f"stage_start {state.stage}")

    def loss_term(self, trainer):
        self.steps += 1
        return None

    def on_epoch_end(self, trainer, state, row):
        self.calls.append(f"epoch {state.stage}.{row['epoch']}")
        assert {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"} <= set(row)
        assert row is state.stages[-1]["history"][-1]

    def on_stage_end(self, trainer, state, record):
        self.calls.append(f"stage_end {record['stage']}")

    def on_fit_end(self, trainer, state):
        self.calls.append("fit_end")
        assert all("kept" in r for r in state.stages), "selection (an earlier callback) has decided"


def test_hooks_run_in_order_and_each_stage_prepares_one_model(images):
    rec = Recorder()
    trainer, progress = _trainer(images, batch_size=8, epochs=2, extra=[rec], schedule_groups=[1, 2])
    progress.stale_stages = -5  # keep unfreezing whatever validation says: both stages run
    trainer.fit(progress)
    assert rec.calls == ["fit_start", "stage_start 0", "epoch 0.1", "epoch 0.2", "stage_end unfreeze 1",
                         "stage_start 1", "epoch 1.1", "epoch 1.2", "stage_end unfreeze 2", "fit_end"]
    assert rec.steps == 2 * 2 * 2  # every optimizer step asked for an extra loss term (2 batches, 2 epochs, 2 stages)
    assert len(trainer.accelerator._models) <= 1, "re-preparing per stage does not pile up wrapped models"
    assert not any(p.requires_grad for p in trainer.net.parameters()) and not trainer.net.training
