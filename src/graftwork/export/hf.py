"""``export RUN --format hf``: a text classifier as a plain Hugging Face folder that
``transformers.pipeline("text-classification", model=DIR)`` loads, with no graftwork and no remote code.

A graftwork text classifier is a BERT-family encoder, the attention-masked mean of its last hidden states, and a
standardising linear head. No stock ``...ForSequenceClassification`` class pools that way on a BERT model, but
transformers' XLM classes run the same post-LayerNorm transformer (embeddings + positions -> LayerNorm; per
layer: attention -> residual -> LayerNorm -> GELU feed-forward (4x wide) -> residual -> LayerNorm) and their
sequence summary can take the mean of the hidden states followed by one linear layer. So the export maps the
encoder's weights onto ``XLMForSequenceClassification`` (``summary_type="mean"``) and folds the head's
standardisation into that linear layer; the tokenizer is the run's own (its ``tokenizer_config.json`` names it),
told not to return ``token_type_ids`` (XLM would read them as word ids), with BERT's token-type-0 embedding
added to the position embeddings instead.

XLM's mean counts padding positions, so scores equal graftwork's for unpadded input: the pipeline's default of
one text at a time. The export checks that on the run's own texts (or a fixed sample) and records the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..console import SILENT, Console
from ..errors import ConfigError, GraftworkError

MARKER = "graftwork-hf.json"
FORMAT = "graftwork-hf/1"
TOLERANCE = 1e-4
_SAMPLE = ["the order arrived late and the box was damaged", "how do I reset my password?", "great service",
           "I would like a refund for the second item", "where can I change my delivery address"]


def _bert(model: Any) -> Any:
    config = model.config
    if config.model_type != "bert" or getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"--format hf supports BERT-family text encoders (MiniLM, BERT); this run's encoder is "
                          f"{config.model_type!r}.", hint="export it with --format onnx instead.")
    if config.intermediate_size != 4 * config.hidden_size or config.hidden_act not in ("gelu", "gelu_python"):
        raise ConfigError("--format hf needs a feed-forward 4x the hidden size with exact GELU (as in BERT and "
                          f"MiniLM); this encoder has {config.intermediate_size} / {config.hidden_size} and "
                          f"{config.hidden_act!r}.", hint="export it with --format onnx instead.")
    return model


def xlm_classifier(encoder: Any, head: Any, classes: list[str]) -> Any:
    """``XLMForSequenceClassification`` computing ``head(mean_pool(encoder(x)))`` for unpadded input."""
    from transformers import XLMConfig, XLMForSequenceClassification

    if getattr(head, "scales_to_unit_length", False):
        raise ConfigError("--format hf: this run's head (or one of its two branches) scales the sentence embedding "
                          "to unit length before its linear layer, which a transformers sequence-classification "
                          "head cannot express.", hint="export it with --format onnx instead (exact).")
    bert = _bert(encoder).config
    config = XLMConfig(
        vocab_size=bert.vocab_size, emb_dim=bert.hidden_size, n_layers=bert.num_hidden_layers,
        n_heads=bert.num_attention_heads, max_position_embeddings=bert.max_position_embeddings,
        layer_norm_eps=bert.layer_norm_eps, gelu_activation=True, sinusoidal_embeddings=False, causal=False,
        asm=False, n_langs=1, use_lang_emb=False, pad_index=bert.pad_token_id or 0, dropout=0.0,
        attention_dropout=0.0, summary_type="mean", summary_use_proj=True, summary_proj_to_labels=True,
        summary_activation=None, summary_first_dropout=0.0, summary_last_dropout=0.0,
        num_labels=len(classes), id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})
    xlm = XLMForSequenceClassification(config).eval()
    src = {k: v.detach().float().cpu() for k, v in encoder.state_dict().items()}
    dst: dict[str, torch.Tensor] = {
        "transformer.embeddings.weight": src["embeddings.word_embeddings.weight"],
        "transformer.position_embeddings.weight": src["embeddings.position_embeddings.weight"]
        + src["embeddings.token_type_embeddings.weight"][0],
        "transformer.layer_norm_emb.weight": src["embeddings.LayerNorm.weight"],
        "transformer.layer_norm_emb.bias": src["embeddings.LayerNorm.bias"],
    }
    for i in range(bert.num_hidden_layers):
        b, x = f"encoder.layer.{i}.", "transformer."
        pairs = {f"attentions.{i}.q_lin": "attention.self.query", f"attentions.{i}.k_lin": "attention.self.key",
                 f"attentions.{i}.v_lin": "attention.self.value", f"attentions.{i}.out_lin": "attention.output.dense",
                 f"layer_norm1.{i}": "attention.output.LayerNorm", f"ffns.{i}.lin1": "intermediate.dense",
                 f"ffns.{i}.lin2": "output.dense", f"layer_norm2.{i}": "output.LayerNorm"}
        for new, old in pairs.items():
            for p in ("weight", "bias"):
                dst[f"{x}{new}.{p}"] = src[f"{b}{old}.{p}"]
    mean = head.norm.running_mean.detach().float()
    scale = 1.0 / torch.sqrt(head.norm.running_var.detach().float() + head.norm.eps)
    weight = head.fc.weight.detach().float() * scale  # fc((x - mean) * scale) = (W * scale) x + b - W (mean * scale)
    dst["sequence_summary.summary.weight"] = weight
    dst["sequence_summary.summary.bias"] = head.fc.bias.detach().float() - weight @ mean
    missing, unexpected = xlm.load_state_dict(dst, strict=False)
    left = [k for k in missing if not k.endswith("position_ids")]
    if left or unexpected:
        raise GraftworkError(f"--format hf: the weight mapping is incomplete (missing {left}, unexpected "
                             f"{list(unexpected)}).", hint="export with --format onnx; please report this.")
    return xlm


def export_hf(run: str | Path, out: str | Path, *, texts: list[str] | None = None, verify: bool = True,
              force: bool = False, console: Console = SILENT) -> dict[str, Any]:
    """Write the text classifier ``run`` as a Hugging Face folder at ``out``; returns the manifest."""
    from ..model import TransferModel
    from ..run import check_out_dir, out_lock, write_folder
    from ..run.guard import HF, RUN

    check_out_dir(out, force, data=run, replaces=(HF, RUN))
    model = TransferModel.load(run, device="cpu", console=console)
    if model.modality != "text":
        raise ConfigError(f"--format hf exports text classifiers; {run} is a {model.modality} model.",
                          hint="export it with --format onnx instead.")
    from ..strategies.lora import has_lora

    if has_lora(model.backbone):
        model.merge_adapters()
    xlm = xlm_classifier(model.backbone.model, model.head, model.classes)
    tokenizer = model.backbone.tokenizer
    model.head.eval()
    sample = list(texts or _SAMPLE)
    manifest: dict[str, Any] = {"format": FORMAT, "source": str(Path(run).expanduser().absolute()),
                                "source_files": model.config.get("files", {}),
                                "architecture": "XLMForSequenceClassification", "parity": None}

    def fill(staging: Path) -> None:
        xlm.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        _tokenizer_settings(staging, model.backbone.max_length)
        if verify:  # what a user of the folder gets: transformers' own pipeline, loaded from the files written
            manifest["parity"] = _parity(model, staging, sample)
        (staging / MARKER).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    with out_lock(out):
        check_out_dir(out, force, data=run, replaces=(HF, RUN))
        write_folder(out, fill)
    return manifest


def _tokenizer_settings(folder: Path, max_length: int) -> None:
    """The saved tokenizer returns no ``token_type_ids`` (XLM would add them as word ids) and truncates where
    graftwork did."""
    file = folder / "tokenizer_config.json"
    settings = json.loads(file.read_text(encoding="utf-8"))
    settings["model_input_names"] = ["input_ids", "attention_mask"]
    settings["model_max_length"] = max_length
    file.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _parity(model: Any, folder: Path, texts: list[str]) -> dict[str, Any]:
    """graftwork's probabilities against ``pipeline("text-classification", model=folder)``'s, one text at a time
    (the pipeline's default)."""
    from transformers import pipeline

    want = model.predict_proba(texts)
    classify = pipeline("text-classification", model=str(folder), top_k=None, device="cpu")
    order = {c: i for i, c in enumerate(model.classes)}
    got = np.zeros_like(want)
    for row, scores in enumerate(classify(texts, truncation=True)):
        for r in scores:
            got[row, order[r["label"]]] = r["score"]
    diff = float(np.abs(got - want).max())
    agree = float(np.mean(got.argmax(1) == want.argmax(1)))
    if diff > TOLERANCE or agree < 1.0:
        raise GraftworkError(f"--format hf: the exported model disagrees with the run (largest probability "
                             f"difference {diff:.2e}, top-1 agreement {agree:.0%}); nothing was written.",
                             hint="export with --format onnx, or --no-verify to write it anyway.")
    return {"texts": len(texts), "max_abs_diff": diff, "top1_agreement": agree}
