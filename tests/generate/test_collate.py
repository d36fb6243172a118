"""Packing: several examples in one row, and none of them can attend to another."""

from __future__ import annotations

import pytest
import torch

from graftwork.generate.collate import collate, pack_rows, shared_prefix, token_loss
from graftwork.generate.data import GenExample
from graftwork.generate.encode import IGNORE, Formatter

from .conftest import colour_pairs, make_model, make_tokenizer


def _encoded(n: int):
    tok = make_tokenizer()
    f = Formatter(tok)
    rows = colour_pairs(n, seed=3)
    chat = GenExample("c", "chat", messages=[{"role": "user", "content": "hello"},
                                             {"role": "assistant", "content": "world"},
                                             {"role": "user", "content": "what colour is the dog ?"},
                                             {"role": "assistant", "content": "it is black ."}])
    return tok, [f.encode(GenExample(f"r{i}", "pair", **r)) for i, r in enumerate(rows)] + [f.encode(chat)]


@pytest.mark.parametrize("with_chat", [False, True])
def test_a_packed_batch_gives_each_example_the_logits_it_gets_alone(with_chat):
    """Every token of a packed batch, the shared prefix included, has the logits it has in its example alone."""
    tok, encoded = _encoded(5)
    encoded = encoded if with_chat else encoded[:-1]
    model = make_model(len(tok)).eval()
    model.config._attn_implementation = "sdpa"
    batch = collate(encoded, tok.pad_token_id, row_tokens=60)
    prefix = shared_prefix(encoded)
    assert prefix == (2 if with_chat else 6)  # "<|im_start|> user" (+ "what colour is the")
    assert batch["input_ids"].shape[0] < len(encoded)  # really packed: fewer rows than examples
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        alone = [model(input_ids=torch.tensor([ex.input_ids])).logits[0] for ex in encoded]
    seen = set()
    for r in range(batch["input_ids"].shape[0]):
        for t in range(batch["input_ids"].shape[1]):
            k, pos = int(batch["example"][r, t]), int(batch["position_ids"][r, t])
            if k < 0 and t >= prefix:
                continue  # padding
            ex = k if k >= 0 else 0  # a prefix token: every example has it
            assert int(batch["input_ids"][r, t]) == encoded[ex].input_ids[pos]
            assert torch.allclose(packed[r, t], alone[ex][pos], atol=1e-5)
            seen.add((ex, pos))
    assert all((k, pos) in seen for k, ex in enumerate(encoded) for pos in range(prefix, len(ex)))


def test_rows_respect_their_length_and_padding_is_never_a_target():
    tok, encoded = _encoded(9)
    rows = pack_rows(encoded, 40)
    assert sorted(e.origin for row in rows for e in row) == sorted(e.origin for e in encoded)
    assert all(sum(len(e) for e in row) <= 40 or len(row) == 1 for row in rows)
    batch = collate(encoded, tok.pad_token_id, 40)
    pad = batch["input_ids"] == tok.pad_token_id
    assert (batch["labels"][pad] == IGNORE).all()
    assert int((batch["labels"] != IGNORE).sum()) == sum(sum(x != IGNORE for x in e.labels) for e in encoded)


def test_epoch_batches_depend_only_on_seed_stage_and_epoch():
    """The generation task's batches come from the staged trainer's loader: one order per (seed, stage, epoch)."""
    from torch.utils.data import DataLoader

    from graftwork.generate.training import GenerationTask
    from graftwork.train.state import seed_epoch
    from graftwork.train.trainer import ShardedOrder

    tok, encoded = _encoded(12)
    task = GenerationTask(Formatter(tok), encoded, [], [], batch_size=4, row_tokens=60, stops=set())

    def batches(epoch: int) -> list[list[str]]:
        data = task.train_dataset()
        g = seed_epoch(1, 0, epoch)
        loader = DataLoader(data, batch_size=4, sampler=ShardedOrder(len(data), g), collate_fn=lambda b: b)
        return [[e.origin for e in b] for b in loader]

    a = batches(2)
    assert a == batches(2) and a != batches(3)
    assert sorted(o for b in a for o in b) == sorted(e.origin for e in encoded)
    assert task.collate(task.train_dataset().items[:4])["input_ids"].shape[0] <= 4  # packed rows


def test_the_loss_from_target_positions_only_equals_the_loss_over_every_logit():
    """token_loss projects only the positions that predict a target token; the loss and its gradient are those of
    the plain computation over every position's logits."""
    tok, encoded = _encoded(6)
    batch = collate(encoded, tok.pad_token_id, row_tokens=60)
    model = make_model(len(tok))
    loss, n = token_loss(model, batch)
    loss.backward()
    fast = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"]).logits
    targets = batch["labels"][:, 1:]
    full = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=IGNORE,
                                             reduction="sum")
    full.backward()
    assert n == int((targets != IGNORE).sum()) and torch.allclose(loss, full, atol=1e-4)
    slow = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(fast) == len(slow) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fast, slow, strict=True))


def test_sharing_the_prompt_prefix_leaves_the_loss_and_its_gradient_unchanged():
    """One packed batch with its shared prefix computed once gives the summed loss and gradient of its examples
    trained one by one."""
    tok, encoded = _encoded(6)
    encoded = encoded[:-1]
    assert shared_prefix(encoded) > 0
    model = make_model(len(tok))
    loss, n = token_loss(model, collate(encoded, tok.pad_token_id, row_tokens=60))
    loss.backward()
    shared = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    total, count = 0.0, 0
    for ex in encoded:
        one, k = token_loss(model, collate([ex], tok.pad_token_id, row_tokens=60))
        one.backward()
        total, count = total + float(one), count + k
    assert n == count and float(loss) == pytest.approx(total, rel=1e-5)
    assert all(torch.allclose(a, p.grad, atol=1e-5) for a, p in zip(shared, model.parameters(), strict=True))

