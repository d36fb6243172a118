"""Batches without padding waste and without cross-example attention.

A batch is ``batch_size`` examples (the unit of an optimizer step, as in every SFT trainer). Its examples are
packed, first-fit by decreasing length, into as few rows of at most ``row_tokens`` tokens as they fit in; each
example keeps its own position ids (0, 1, ...) and a block-diagonal causal attention mask lets a token attend
only to earlier tokens *of its own example*, so a packed batch gives every example exactly the logits it
would get alone (a test checks this). Rows are padded to the longest row; padding attends only to itself (a
fully masked row would give NaN in scaled-dot-product attention) and is never a target.

Why a 4-d mask rather than flash-attention's varlen kernels: it works on CPU and with every attention backend
PyTorch's ``scaled_dot_product_attention`` has, and the rows here are short (hundreds of tokens).
"""

from __future__ import annotations

import torch

from .encode import IGNORE, Encoded


def pack_rows(examples: list[Encoded], row_tokens: int) -> list[list[Encoded]]:
    """First-fit decreasing: few rows, each at most ``row_tokens`` long (an example longer than that has a row
    to itself)."""
    rows: list[list[Encoded]] = []
    room: list[int] = []
    for ex in sorted(examples, key=len, reverse=True):
        for i, free in enumerate(room):
            if len(ex) <= free:
                rows[i].append(ex)
                room[i] -= len(ex)
                break
        else:
            rows.append([ex])
            room.append(row_tokens - len(ex))
    return rows


def collate(examples: list[Encoded], pad_id: int, row_tokens: int) -> dict[str, torch.Tensor]:
    """``input_ids``, ``labels``, ``position_ids``, ``example`` (rows x length; ``example`` is the index in
    ``examples`` of the example each token belongs to, -1 on padding) and a boolean ``attention_mask`` (rows x
    1 x length x length, True where attention is allowed)."""
    rows = pack_rows(examples, row_tokens)
    length = max(sum(len(e) for e in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    labels = torch.full((n, length), IGNORE, dtype=torch.long)
    pos = torch.zeros((n, length), dtype=torch.long)
    which = torch.full((n, length), -1, dtype=torch.long)
    index = {id(ex): k for k, ex in enumerate(examples)}
    mask = torch.zeros((n, 1, length, length), dtype=torch.bool)
    for r, row in enumerate(rows):
        start = 0
        for ex in row:
            end = start + len(ex)
            ids[r, start:end] = torch.tensor(ex.input_ids)
            labels[r, start:end] = torch.tensor(ex.labels)
            pos[r, start:end] = torch.arange(len(ex))
            which[r, start:end] = index[id(ex)]
            mask[r, 0, start:end, start:end] = torch.tril(torch.ones(len(ex), len(ex), dtype=torch.bool))
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
