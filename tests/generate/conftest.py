"""A tiny causal LM and tokenizer built from configs (no files downloaded), and small generation datasets.

The tokenizer is a word-level vocabulary over the words the datasets use, with a ChatML-style chat template,
so formatting, masking and packing go through the same code as a real instruct model's.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

COLOURS = ["red", "green", "blue", "black", "white"]
THINGS = ["cat", "dog", "car", "house", "tree"]
WORDS = ["what", "colour", "is", "the", "it", "a", "hello", "say", "world", ":", "?", "."] + COLOURS + THINGS
SPECIAL = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "<eos>", "system", "user", "assistant"]
TEMPLATE = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
            "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")


def make_tokenizer(chat: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<|im_end|>" if chat else "<eos>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>", "<eos>"])
    if chat:
        fast.chat_template = TEMPLATE
    return fast


def make_model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=256,
                      pad_token_id=0, bos_token_id=None, eos_token_id=3, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A saved tiny Llama + chat tokenizer: a local model folder, as a user would pass with --backbone."""
    folder = tmp_path_factory.mktemp("tiny-lm")
    tok = make_tokenizer()
    model = make_model(len(tok))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def colour_pairs(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        colour, thing = rng.choice(COLOURS), rng.choice(THINGS)
        out.append({"prompt": f"what colour is the {thing} ? it is {colour} .", "completion": colour})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    root = tmp_path / "colours"
    root.mkdir()
    write_jsonl(root / "train.jsonl", colour_pairs(48, 0))
    write_jsonl(root / "val.jsonl", colour_pairs(12, 1))
    write_jsonl(root / "test.jsonl", colour_pairs(12, 2))
    return root
