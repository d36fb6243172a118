"""Language models that write: ``graftwork fit DATA --task generate`` (LoRA or full SFT of causal LMs).

One task, one package; each module is one concept (:mod:`graftwork.tasks.generate` points the shared commands at them):

* :mod:`.data`: read and check prompt/completion, messages or text data (every problem with file:line);
* :mod:`.backbone`: causal LMs from hf:, local folders, .gguf files, the offline SmolLM2 default;
* :mod:`.encode` and :mod:`.collate`: chat-template formatting, completion-only labels, packed batches
  without cross-example attention;
* :mod:`.plan` and :mod:`.training`: the plan (lora/full/auto, and why) and training on the staged trainer
  (:class:`graftwork.train.StagedTrainer`, the one every task trains with);
* :mod:`.metrics`, :mod:`.control`, :mod:`.forgetting`: scores, the untrained base model, the forgetting check;
* :mod:`.model`, :mod:`.export`, :mod:`.report`, :mod:`.runfolder`: load/predict/evaluate, export, report, files.

Imports are lazy: ``import graftwork`` does not load transformers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GenerationModel", "run_fit_generate", "run_task"]


def __getattr__(name: str) -> Any:
    if name == "GenerationModel":
        from .model import GenerationModel

        return GenerationModel
    if name == "run_fit_generate":
        from .fit import run_fit_generate

        return run_fit_generate
    if name == "run_task":
        from .runfolder import run_task

        return run_task
    raise AttributeError(name)
