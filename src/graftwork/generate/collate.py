"""Batches without padding waste, without repeated prompts and without cross-example attention.

A batch is ``batch_size`` examples (the unit of an optimizer step, as in every SFT trainer). Its examples are
packed, first-fit by decreasing length, into as few rows of at most ``row_tokens`` tokens as they fit in; each
example keeps its own position ids (0, 1, ...) and a block-diagonal causal attention mask lets a token attend
only to earlier tokens *of its own example*, so a packed batch gives every example exactly the logits it
would get alone (a test checks this). Rows are padded to the longest row; padding attends only to itself (a
fully masked row would give NaN in scaled-dot-product attention) and is never a target.

Shared prompt prefix. Task data usually starts every example the same way: the chat template's system turn
(SmolLM2 and Qwen templates add a default one) and a fixed instruction, often half of the tokens. The leading
tokens that all of a batch's examples share, as context, are computed once per row: a row is the prefix, then
each example's own tokens, which attend to the prefix and causally to themselves, with the positions they
have in the example. Every target gets the logits it gets alone, and the gradient is the same sum (the
prefix's activations receive each example's share), for fewer tokens through the model. The prefix stops
before any example's first target, so no shared position has to predict two different tokens.

Why a 4-d mask rather than flash-attention's varlen kernels: it works on CPU and with every attention backend
PyTorch's ``scaled_dot_product_attention`` has, and the rows here are short (hundreds of tokens).
"""

from __future__ import annotations

import torch

from .encode import IGNORE, Encoded


def shared_prefix(examples: list[Encoded]) -> int:
    """The number of leading tokens all ``examples`` have in common as context: at most each one's first target
    position minus one, so every example's own tokens start with a context token. 0 for a single example."""
    if len(examples) < 2:
        return 0
    limit = min(next(i for i, label in enumerate(e.labels) if label != IGNORE) for e in examples) - 1
    first = examples[0].input_ids
    n = 0
    while n < limit and all(e.input_ids[n] == first[n] for e in examples):
        n += 1
    return n


def pack_rows(examples: list[Encoded], row_tokens: int, prefix: int = 0) -> list[list[Encoded]]:
    """First-fit decreasing: few rows, each at most ``row_tokens`` long counting one copy of the shared
    ``prefix`` (an example longer than that has a row to itself)."""
    rows: list[list[Encoded]] = []
    room: list[int] = []
    for ex in sorted(examples, key=len, reverse=True):
        own = len(ex) - prefix
        for i, free in enumerate(room):
            if own <= free:
                rows[i].append(ex)
                room[i] -= own
                break
        else:
            rows.append([ex])
            room.append(row_tokens - prefix - own)
    return rows


def collate(examples: list[Encoded], pad_id: int, row_tokens: int) -> dict[str, torch.Tensor]:
    """``input_ids``, ``labels``, ``position_ids``, ``example`` (rows x length; ``example`` is the index in
    ``examples`` of the example each token belongs to, -1 on the shared prefix and on padding) and a boolean
    ``attention_mask`` (rows x 1 x length x length, True where attention is allowed)."""
    p = shared_prefix(examples)
    rows = pack_rows(examples, row_tokens, p)
    length = max(p + sum(len(e) - p for e in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    labels = torch.full((n, length), IGNORE, dtype=torch.long)
    pos = torch.zeros((n, length), dtype=torch.long)
    which = torch.full((n, length), -1, dtype=torch.long)
    mask = torch.zeros((n, 1, length, length), dtype=torch.bool)
    index = {id(ex): k for k, ex in enumerate(examples)}
    for r, row in enumerate(rows):
        ids[r, :p] = torch.tensor(examples[0].input_ids[:p], dtype=torch.long)
        pos[r, :p] = torch.arange(p)
        mask[r, 0, :p, :p] = torch.tril(torch.ones(p, p, dtype=torch.bool))
        start = p
        for ex in row:
            end = start + len(ex) - p
            ids[r, start:end] = torch.tensor(ex.input_ids[p:])
            labels[r, start:end] = torch.tensor(ex.labels[p:])
            pos[r, start:end] = torch.arange(p, len(ex))
            which[r, start:end] = index[id(ex)]
            mask[r, 0, start:end, :p] = True  # an example's own tokens see the shared prefix
            mask[r, 0, start:end, start:end] = torch.tril(torch.ones(end - start, end - start, dtype=torch.bool))
            start = end
        idx = torch.arange(start, length)
        mask[r, 0, idx, idx] = True  # padding attends to itself only
    return {"input_ids": ids, "labels": labels, "position_ids": pos, "example": which, "attention_mask": mask}


def fixed_batches(examples: list[Encoded], batch_size: int) -> list[list[Encoded]]:
    """Batches in order (for evaluation)."""
    return [examples[k:k + batch_size] for k in range(0, len(examples), batch_size)]


def token_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed next-token cross-entropy over target tokens, number of target tokens) of one packed batch."""
    logits, targets, _ = target_logits(model, batch)
    return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum"), int(targets.numel())


def target_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The logits at the positions that predict a target token (targets x vocabulary), those targets, and the
    positions (``keep``, rows x length: True at position t when token t + 1 is a target), row by row.

    Only those positions go through the output layer (``logits_to_keep`` as a boolean mask, which transformers'
    causal LMs accept): the prompt's positions, usually most of a batch, would cost a vocabulary-sized projection
    each for logits nobody reads. A model without ``logits_to_keep`` gets every position's logits, and the same
    result."""
    labels = batch["labels"]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE  # position t predicts token t + 1
    targets = labels[:, 1:][keep[:, :-1]]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "position_ids": batch["position_ids"], "use_cache": False}
    try:
        logits = model(**inputs, logits_to_keep=keep).logits
    except TypeError:  # a model whose forward has no logits_to_keep
        logits = model(**inputs).logits
    if logits.dim() == 3:  # every position's logits came back: take the kept ones
        logits = logits[keep]
    return logits, targets, keep
