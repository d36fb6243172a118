"""Generation as a task of the staged trainer, driven directly: batches, steps, checkpointed state."""

from __future__ import annotations

import torch

from graftwork.generate.data import GenExample
from graftwork.generate.encode import Formatter
from graftwork.generate.training import GenerationTask, train_model
from graftwork.train import Callback, TrainSettings, load_checkpoint

from .conftest import colour_pairs, make_model, make_tokenizer


def _task(n_train: int, batch_size: int) -> tuple[GenerationTask, Formatter]:
    tok = make_tokenizer()
    f = Formatter(tok)
    train = [f.encode(GenExample(f"t{i}", "pair", **r)) for i, r in enumerate(colour_pairs(n_train, 0))]
    val = [f.encode(GenExample(f"v{i}", "pair", **r)) for i, r in enumerate(colour_pairs(4, 1))]
    return GenerationTask(f, train, val, [], batch_size=batch_size, row_tokens=256,
                          stops={tok.eos_token_id}), f


def test_every_example_trains_every_epoch_and_the_checkpoint_holds_only_the_trained_weights(tmp_path):
    task, f = _task(10, 4)
    model = make_model(len(f.tokenizer))
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("model.layers.1."))  # what a plan made trainable
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen: list[int] = []
    collate = task.collate
    task.collate = lambda items: seen.append(len(items)) or collate(items)  # type: ignore[method-assign]
    settings = TrainSettings(stage_epochs=2, batch_size=4, seed=0, cpu=True)
    result, trainer = train_model(model, task, strategy="full", lr=1e-2, weight_decay=0.0, settings=settings,
                                  partial=tmp_path, resume=False)
    assert seen == [4, 4, 2, 4, 4, 2]  # the short last batch is kept (no BatchNorm to protect)
    assert trainer.scheduler.last_epoch == 6  # one optimizer step per batch
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    saved = load_checkpoint(tmp_path / "checkpoint")
    assert saved["net"] and all(k.startswith("model.layers.1.") for k in saved["net"])
    after = model.state_dict()
    frozen = [k for k in before if not k.startswith("model.layers.1.")]
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert result.best_epoch >= 1  # training lowered the validation loss: a trained epoch is kept ...
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.layers.1."))  # ... with its weights


def test_without_validation_data_the_last_epoch_is_kept(tmp_path):
    task, f = _task(8, 4)
    task.val = []
    model = make_model(len(f.tokenizer))
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("model.layers.1."))
    settings = TrainSettings(stage_epochs=2, batch_size=4, seed=0, cpu=True)
    snaps: list[dict[str, torch.Tensor]] = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, state, row):
            snaps.append(trainer.snapshot())

    result, _ = train_model(model, task, strategy="full", lr=1e-2, weight_decay=0.0, settings=settings,
                            partial=None, resume=False, callbacks=[Snap()])
    assert result.best_epoch == 2 and [h["epoch"] for h in result.history] == [0, 1, 2]
    assert all("val_loss" not in h and "val_exact_match" not in h for h in result.history)  # nothing measured
    assert len(snaps) == 3  # epoch 0 (before training), 1, 2
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in snaps[-1].items())  # the last epoch's weights ...
    assert any(not torch.equal(after[k], v) for k, v in snaps[1].items())  # ... not an earlier one's

