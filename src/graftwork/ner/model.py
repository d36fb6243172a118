"""The token classifier (a text backbone's token states + a linear layer per token) and :class:`NerModel`, the
trained model with ``predict``, ``evaluate``, ``save`` and ``load``.

The backbone is the project's :class:`~graftwork.backbones.hf.TextBackbone`, built by name exactly as for
classification (so weights resolve from packages, caches and folders the same way); NER uses its encoder's
last hidden states instead of the pooled sentence vector.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones.hf import TextBackbone
from ..console import SILENT, Console
from ..errors import DataError, RunFolderError
from ..features import resolve_device
from ..run import read_run_folder, save_run_folder
from ..run.backbone import backbone_tensors, restore_backbone
from ..strategies.base import TransferNet
from .align import chunk_sentences, encode, word_tokenizer
from .data import Sentence, load_ner_data
from .decode import constraints, spans, viterbi
from .metrics import entity_metrics
from .words import split_inputs


class TokenHead(nn.Module):
    """Dropout, then one linear layer from a token state to tag logits."""

    def __init__(self, in_features: int, num_tags: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_tags)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(states))


class TokenClassifier(TransferNet):
    """Backbone encoder and token head as one network: ``forward(inputs)`` gives logits ``[batch, pieces, tags]``
    (a :class:`~graftwork.strategies.base.TransferNet`, so every strategy trains it as it trains a classifier)."""

    backbone: TextBackbone
    head: TokenHead

    def __init__(self, backbone: TextBackbone, num_tags: int):
        super().__init__(backbone, TokenHead(backbone.feature_dim, num_tags))
        self.tokenizer = word_tokenizer(backbone.tokenizer)

    def states(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone.model(**inputs).last_hidden_state

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.states(inputs))

    @torch.no_grad()
    def per_word(self, sentences: list[list[str]], fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], *,
                 batch_size: int, device: torch.device) -> list[np.ndarray]:
        """``fn`` (states or logits, ``[batch, pieces, dim]``) at each word's first piece, one ``[words, dim]``
        array per sentence; a word without a piece gets zeros. Rows are batched by length to save padding."""
        chunks = chunk_sentences(self.tokenizer, sentences, self.backbone.max_length)
        order = sorted(range(len(chunks)), key=lambda i: chunks[i].pieces)
        parts: dict[int, np.ndarray] = {}
        for b in range(0, len(order), batch_size):
            rows = [chunks[i] for i in order[b:b + batch_size]]
            enc = encode(self.tokenizer, [sentences[c.sentence][c.start:c.end] for c in rows],
                         self.backbone.max_length)
            out = fn({k: v.to(device) for k, v in enc.inputs.items()}).float().cpu()
            for r, (i, pos) in enumerate(zip(order[b:b + batch_size], enc.first, strict=True)):
                idx = torch.tensor([max(p, 0) for p in pos], dtype=torch.long)
                vals = out[r, idx].numpy()
                vals[[p < 0 for p in pos]] = 0.0
                parts[i] = vals
        dim = next(iter(parts.values())).shape[1] if parts else 0
        result = [np.zeros((0, dim), dtype=np.float32) for _ in sentences]
        for i, c in enumerate(chunks):
            result[c.sentence] = np.concatenate([result[c.sentence], parts[i]]) if c.start else parts[i]
        return result


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


class NerModel:
    """A trained token classifier with its tag list. Create with ``graftwork fit --task ner`` or
    :meth:`load`; ``predict`` gives entity spans, ``evaluate`` entity-level metrics."""

    def __init__(self, net: TokenClassifier, tags: list[str], config: dict[str, Any],
                 metrics: dict[str, Any] | None = None, device: str = "auto", console: Console = SILENT):
        self.net = net.eval()
        self.tags = list(tags)
        self.config = config
        self.metrics = metrics or {}
        self.device = resolve_device(device)
        self.console = console
        self._start, self._trans = constraints(self.tags)

    @property
    def backbone(self) -> TextBackbone:
        return self.net.backbone

    @property
    def entity_types(self) -> list[str]:
        return sorted({t[2:] for t in self.tags if t != "O"})

    def __repr__(self) -> str:
        return f"NerModel(backbone={self.backbone.info.name!r}, entity_types={self.entity_types!r})"

    # -- inference -----------------------------------------------------------------------------------------
    def word_logprobs(self, sentences: list[list[str]], batch_size: int = 32) -> list[np.ndarray]:
        self.net.to(self.device).eval()
        logits = self.net.per_word(sentences, self.net, batch_size=batch_size, device=self.device)
        return [log_softmax(x) for x in logits]

    def decode(self, logp: np.ndarray) -> list[str]:
        return [self.tags[i] for i in viterbi(logp, self._start, self._trans)]

    def predict_tokens(self, sentences: list[list[str]], batch_size: int = 32) -> list[list[str]]:
        """IOB2 tags for pre-split sentences."""
        return [self.decode(lp) for lp in self.word_logprobs(sentences, batch_size)]

    def predict(self, texts: str | list[str] | list[list[str]], batch_size: int = 32) -> list[dict[str, Any]]:
        """Entities in each text: ``text``, ``type``, ``start``/``end`` (word indices, end exclusive),
        ``char_start``/``char_end`` (offsets in the input; for pre-split tokens, in the tokens joined by single
        spaces) and ``score`` (mean probability of the entity's tags). Raw text is split into words on whitespace
        and around punctuation (:func:`graftwork.ner.words.split_words`)."""
        items: list[Any] = [texts] if isinstance(texts, str) else list(texts)
        words, offsets, sources = split_inputs(items)
        logps = self.word_logprobs(words, batch_size)
        out = []
        for text, ws, offs, lp in zip(sources, words, offsets, logps, strict=True):
            path = viterbi(lp, self._start, self._trans)
            tags = [self.tags[i] for i in path]
            ents = []
            for kind, a, b in spans(tags):
                c0, c1 = offs[a][0], offs[b - 1][1]
                score = float(np.exp(lp[np.arange(a, b), path[a:b]]).mean())
                ents.append({"text": text[c0:c1], "type": kind, "start": a, "end": b, "char_start": c0,
                             "char_end": c1, "score": round(score, 4)})
            out.append({"input": text, "tokens": ws, "tags": tags, "entities": ents})
        return out

    # -- evaluation ----------------------------------------------------------------------------------------
    def evaluate_sentences(self, sentences: list[Sentence], batch_size: int = 32) -> dict[str, Any]:
        unknown = sorted({t[2:] for s in sentences for t in s.tags if t != "O"} - set(self.entity_types))
        if unknown:
            where = next(f"{s.file}:{n}" for s in sentences for t, n in zip(s.tags, s.lines, strict=True)
                         if t != "O" and t[2:] in unknown)
            raise DataError(f"{where}: entity type(s) {unknown} are not known to this model.",
                            hint=f"the model knows: {self.entity_types}.")
        logps = self.word_logprobs([s.tokens for s in sentences], batch_size)
        index = {t: i for i, t in enumerate(self.tags)}
        nll = [-lp[np.arange(len(s.tags)), [index[t] for t in s.tags]] for s, lp in zip(sentences, logps, strict=True)]
        result = entity_metrics([s.tags for s in sentences], [self.decode(lp) for lp in logps], self.entity_types)
        result["loss"] = float(np.concatenate(nll).mean()) if nll else 0.0
        return result

    def evaluate(self, data: str | Path, *, skip_bad_files: bool = False, batch_size: int = 32) -> dict[str, Any]:
        """Entity-level metrics on tagged data: a file, or a folder's test split (else val, else train)."""
        splits = load_ner_data(data, skip_bad=skip_bad_files, require_train=False)
        chosen, name = (splits.test, "test") if splits.test is not None else (
            (splits.val, "val") if splits.val is not None else (splits.train, "all"))
        for note in splits.notes:
            self.console.info(note)
        result = self.evaluate_sentences(chosen, batch_size)
        return result | {"split": name, "data": str(data)}

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self, out: str | Path, *, force: bool = False) -> Path:
        """Write a run folder with its ``report.html``; backbone weights only when they differ from the pretrained
        ones."""
        backbone_sd, adapter = backbone_tensors(self.backbone)
        head_sd = {k: v.detach().cpu() for k, v in self.net.head.state_dict().items()}
        return save_run_folder(out, config=self.config, head=head_sd, metrics=self.metrics, backbone=backbone_sd,
                               force=force, adapter=adapter, extra=self._report(out))

    def _report(self, out: str | Path) -> dict[str, str]:
        from ..report import REPORT, render_report

        try:
            return {REPORT: render_report(self.metrics, self.config, name=Path(out).name)}
        except Exception as e:  # a chart that cannot be drawn must not cost the trained model
            self.console.warn(f"{REPORT} was not written ({type(e).__name__}: {e}); the model is saved. "
                              f"`graftwork report {out}` tries again.")
            return {}

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", console: Console = SILENT,
             weights: str | None = None) -> NerModel:
        """Load an NER run folder, checking everything it says before using it; ``weights``: where the pretrained
        weights are on this machine when the lookup by backbone name does not find them (never taken from the
        run's config.json). Loading writes nothing into the folder."""
        if (Path(path) / "config.json").is_file() and not is_ner_run(path):
            raise RunFolderError(f"{path}: not an NER run (its config.json has no task 'ner').",
                                 hint="load it with graftwork.load().")
        config, head_sd, metrics, backbone_sd = read_run_folder(path, task="ner")
        tags = config["tags"]
        backbone = restore_backbone(path, config, backbone_sd, weights=weights)
        if not isinstance(backbone, TextBackbone):
            raise RunFolderError(f"{path}: an NER run needs a text backbone; {backbone.info.name} is "
                                 f"{backbone.modality}.", hint="re-run `graftwork fit --task ner`.")
        net = TokenClassifier(backbone, len(tags))
        _load_head(path, net.head, head_sd, tags)
        return cls(net, tags, config, metrics, device=device, console=console)


def _load_head(path: str | Path, head: TokenHead, state: dict[str, torch.Tensor], tags: list[str]) -> None:
    """Load the tag layer, after checking it has one output per tag in config.json (or tags would be mislabelled)."""
    where = Path(path) / "head.safetensors"
    weight = state.get("fc.weight")
    if weight is None or weight.ndim != 2 or weight.shape[0] != len(tags):
        found = "no tag layer ('fc.weight')" if weight is None or weight.ndim != 2 else f"{weight.shape[0]} outputs"
        raise RunFolderError(f"{where}: {found}, but config.json's 'tags' lists {len(tags)} tags.",
                             hint="config.json or the head was edited: restore the run folder, or re-run "
                                  "`graftwork fit --task ner`.")
    try:
        head.load_state_dict(state)
    except RuntimeError as e:  # e.g. a head for another backbone's state size
        raise RunFolderError(f"{where}: does not fit this backbone's tag layer ({str(e).splitlines()[0]}).",
                             hint="re-run `graftwork fit --task ner`.") from None


def is_ner_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder written by an NER fit (its config says task "ner")."""
    import json

    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("task") == "ner"
    except (OSError, ValueError, AttributeError):
        return False
