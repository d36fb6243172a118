"""A trained generation run as a Python object: load it, generate, evaluate.

>>> from graftwork.generate import GenerationModel
>>> m = GenerationModel.load("run5")                                # doctest: +SKIP
>>> m.predict(["Convert 3 March 2021 to ISO format."])              # doctest: +SKIP
[{'prompt': 'Convert 3 March 2021 to ISO format.', 'generation': '2021-03-03'}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, RunFolderError
from .data import GenExample, load_examples
from .decode import generate_texts, stream_one
from .encode import Encoded, Formatter, encode_all
from .metrics import text_metrics
from .runfolder import ADAPTER, TOKENIZER, WEIGHTS, read_generation_config, verified_file
from .score import completion_scores

Prompt = str | list[dict[str, str]]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class GenerationModel:
    """A causal LM with the run's adapters (or fine-tuned weights), its tokenizer and its run config."""

    def __init__(self, model: Any, tokenizer: Any, config: dict[str, Any], metrics: dict[str, Any] | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.formatter = Formatter(tokenizer)
        self.config = config
        self.metrics = metrics or {}

    @property
    def max_new_tokens(self) -> int:
        return int(self.config.get("generation", {}).get("max_new_tokens", 128))

    @classmethod
    def load(cls, run: str | Path, *, device: str = "auto", console: Any = None,
             trust_remote_code: bool = False) -> GenerationModel:
        """Load a run folder: its base model (by the name it records), then its checked weights on top.

        Whether to run a model repository's code is the caller's decision, never the run folder's."""
        from transformers import AutoTokenizer

        from .backbone import load_causal_lm, prepare_tokenizer

        root = Path(run).expanduser()
        config = read_generation_config(root)
        weights = verified_file(root, ADAPTER if config["strategy"] == "lora" else WEIGHTS, config)
        lm = load_causal_lm(config["backbone"]["name"], console=console, trust_remote_code=trust_remote_code)
        expected = config["backbone"].get("params")
        if isinstance(expected, int) and expected != lm.params:
            raise RunFolderError(f"{root}: the run was trained on a base model with {expected:,} parameters; "
                                 f"{config['backbone']['name']} now has {lm.params:,}.",
                                 hint="load it where the same base model is available.")
        model = _with_weights(lm.model, weights, config)
        tokenizer = AutoTokenizer.from_pretrained(str(root / TOKENIZER)) if (root / TOKENIZER).is_dir() \
            else lm.tokenizer
        prepare_tokenizer(tokenizer)
        metrics_file = root / "metrics.json"
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        model.to(_device(device)).eval()
        return cls(model, tokenizer, config, metrics)

    @staticmethod
    def contexts(prompts: list[Prompt]) -> list[list[dict[str, str]]]:
        """Prompts as chat contexts: a string is one user turn; a list of messages is used as it is."""
        return [[{"role": "user", "content": p}] if isinstance(p, str) else list(p) for p in prompts]

    def generate(self, prompts: list[Prompt], *, max_new_tokens: int | None = None, temperature: float = 0.0,
                 top_p: float = 1.0, batch_size: int = 16) -> list[str]:
        """The model's answer to each prompt: greedy by default; ``temperature`` > 0 samples (with ``top_p``)."""
        return generate_texts(self.model, self.formatter, self.contexts(prompts),
                              max_new_tokens=max_new_tokens or self.max_new_tokens, temperature=temperature,
                              top_p=top_p, batch_size=batch_size)

    def predict(self, prompts: list[Prompt], **kwargs: Any) -> list[dict[str, Any]]:
        """``[{"prompt", "generation"}]``, one per prompt (see :meth:`generate` for the options)."""
        return [{"prompt": p, "generation": g} for p, g in zip(prompts, self.generate(prompts, **kwargs), strict=True)]

    def stream(self, prompt: Prompt, write: Any, **kwargs: Any) -> str:
        """Generate one answer, calling ``write(text)`` as it is produced."""
        kwargs.setdefault("max_new_tokens", self.max_new_tokens)
        return stream_one(self.model, self.formatter, self.contexts([prompt])[0], write=write, **kwargs)

    def completion_loss(self, examples: list[GenExample], batch_size: int = 8) -> dict[str, float]:
        """Mean loss and perplexity of the reference completions given their prompts."""
        encoded: list[Encoded] = encode_all(self.formatter, examples, 1 << 30, [])
        return completion_scores(self.model, encoded, batch_size=batch_size, pad_id=self.tokenizer.pad_token_id,
                                 row_tokens=4096, device=next(self.model.parameters()).device)

    def evaluate_examples(self, examples: list[GenExample], *, outputs: str | Path | None = None,
                          max_new_tokens: int | None = None, batch_size: int = 16) -> dict[str, Any]:
        if not examples:
            raise DataError("nothing to evaluate: no examples.", hint="pass a JSONL/CSV file with completions.")
        if any(e.kind == "text" for e in examples):
            raise DataError("evaluation needs prompts and references (prompt/completion or messages), not 'text'.",
                            hint="plain text is for continued pretraining; its loss is in the fit's metrics.")
        target = _check_outputs(outputs)
        contexts, refs = zip(*(e.context_and_reference() for e in examples), strict=True)
        preds = generate_texts(self.model, self.formatter, list(contexts),
                               max_new_tokens=max_new_tokens or self.max_new_tokens, batch_size=batch_size)
        result = text_metrics(preds, list(refs)) | self.completion_loss(examples)
        result["samples"] = [{"prompt": self.formatter.prompt_text(c), "reference": r, "generation": p}
                             for c, r, p in list(zip(contexts, refs, preds, strict=True))[:10]]
        if target is not None:
            rows = [{"origin": e.origin, "prompt": c, "reference": r, "generation": p}
                    for e, c, r, p in zip(examples, contexts, refs, preds, strict=True)]
            target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            result["outputs"] = str(target)
        return result

    def evaluate(self, data: str | Path, *, outputs: str | Path | None = None, text_column: str = "text",
                 max_new_tokens: int | None = None) -> dict[str, Any]:
        """exact_match, rougeL, chrf, loss, perplexity and n on ``data`` (its test split when it is a folder)."""
        examples = load_examples(data, text_column=text_column)
        return self.evaluate_examples(examples, outputs=outputs, max_new_tokens=max_new_tokens)


def _check_outputs(outputs: str | Path | None) -> Path | None:
    """The user's files are theirs: --outputs writes a new file only."""
    if outputs is None:
        return None
    path = Path(outputs).expanduser()
    if path.exists() or path.is_symlink():
        raise DataError(f"--outputs {outputs}: the file exists; nothing was overwritten.",
                        hint="choose a new file name for the outputs.")
    if not path.parent.is_dir():
        raise DataError(f"--outputs {outputs}: the folder {path.parent} does not exist.",
                        hint="create it, or choose another path.")
    return path


def _with_weights(base: Any, weights: Path, config: dict[str, Any]) -> Any:
    """The base model with the run's LoRA adapter, or with its full fine-tuned weights."""
    from safetensors.torch import load_file, load_model

    if config["strategy"] == "full":
        load_model(base, str(weights))
        return base
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    lora = config["lora"]
    model = get_peft_model(base, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=0.0,
                                            target_modules=lora["target_modules"], task_type="CAUSAL_LM"))
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    if getattr(result, "unexpected_keys", None):
        raise RunFolderError(f"{weights}: adapter weights that fit no layer of the base model "
                             f"({result.unexpected_keys[:3]}...).", hint="the base model is not the one trained.")
    return model
