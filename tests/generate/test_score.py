"""Scoring completions by teacher forcing: the greedy exact match it gives is what generating gives."""

from __future__ import annotations

import pytest
import torch

from graftwork.generate.collate import collate, token_loss
from graftwork.generate.data import GenExample
from graftwork.generate.decode import generate_texts, stop_ids
from graftwork.generate.encode import Formatter
from graftwork.generate.score import completion_scores

from .conftest import colour_pairs, make_model, make_tokenizer


def test_validation_exact_match_is_greedy_decodings_without_generating():
    """Teacher-forced exact match (one forward pass) says, example by example, what greedy generation says."""
    tok = make_tokenizer()
    f = Formatter(tok)
    rows = [{"prompt": r["prompt"], "completion": f"it is {r['completion']}"} for r in colour_pairs(24, 0)]
    train = [f.encode(GenExample(f"t{i}", "pair", **r)) for i, r in enumerate(rows)]
    model = make_model(len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(150):
        batch = collate(train[(step * 8) % 24:(step * 8) % 24 + 8], tok.pad_token_id, 256)
        loss, n = token_loss(model, batch)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
    # learnt answers, answers the model would not give, and answers it would not stop after: right and wrong occur
    wrong = [{"prompt": r["prompt"], "completion": "it is a cat"} for r in colour_pairs(3, 5)]
    unfinished = [{"prompt": r["prompt"], "completion": "it is"} for r in colour_pairs(3, 6)]
    examples = [GenExample(f"v{i}", "pair", **r) for i, r in enumerate(rows[:8] + wrong + unfinished)]
    contexts, refs = zip(*(e.context_and_reference() for e in examples), strict=True)
    generated = generate_texts(model, f, list(contexts), max_new_tokens=8)
    greedy = [g.strip() == r.strip() for g, r in zip(generated, refs, strict=True)]
    stops = set(stop_ids(model, tok))
    single = [completion_scores(model, [f.encode(e)], batch_size=1, pad_id=tok.pad_token_id, row_tokens=256,
                                device=torch.device("cpu"), stops=stops)["exact_match"] == 1.0 for e in examples]
    assert single == greedy and any(greedy) and not all(greedy)
    packed = completion_scores(model, [f.encode(e) for e in examples], batch_size=16, pad_id=tok.pad_token_id,
                               row_tokens=64, device=torch.device("cpu"), stops=stops)
    assert packed["exact_match"] == pytest.approx(sum(greedy) / len(greedy)) and packed["n"] == len(examples)


def test_only_the_last_answer_up_to_its_end_of_turn_is_judged():
    from graftwork.generate.score import answer_positions

    tok = make_tokenizer()
    f = Formatter(tok)
    chat = GenExample("c", "chat", messages=[{"role": "user", "content": "say hello"},
                                             {"role": "assistant", "content": "hello world"},
                                             {"role": "user", "content": "say red"},
                                             {"role": "assistant", "content": "red"}])
    enc = f.encode(chat)
    judged = [tok.convert_ids_to_tokens(enc.input_ids[i]) for i in answer_positions(enc, {tok.eos_token_id})]
    assert judged == ["red", "<|im_end|>"]  # the first answer is context here; nothing after the stop token
    doc = f.encode(GenExample("d", "text", text="the cat is red"))
    assert answer_positions(doc, {tok.eos_token_id}) == []  # a plain document answers no prompt
