"""The ``config.json`` of a generation run: what loading needs, and the provenance of the run."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import FitConfig
from ..run.provenance import library_versions
from .backbone import LoadedLM
from .runfolder import FORMAT, TASK

GENERATE_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors")


def _portable(name: str | None) -> str:
    """The base model's name as loading needs it: a local folder or file as an absolute path."""
    if name is None:
        return "smollm2"
    local = Path(name[3:] if name.startswith("hf:") else name).expanduser()
    return str(local.absolute()) if local.exists() else name


def run_config(cfg: FitConfig, lm: LoadedLM, plan: dict[str, Any], data: str | Path,
               lora_scale: float) -> dict[str, Any]:
    model_config = lm.model.config
    config: dict[str, Any] = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": TASK,
        "modality": "text",
        "backbone": {"name": _portable(cfg.backbone), "display": lm.name, "params": lm.params,
                     "model_type": getattr(model_config, "model_type", None),
                     "architectures": getattr(model_config, "architectures", None)},
        "strategy": plan["strategy"],
        "formatting": {"chat_template": bool(getattr(lm.tokenizer, "chat_template", None)),
                       "loss_on": "completion (assistant) tokens", "max_length": cfg.max_length},
        "generation": {"max_new_tokens": cfg.max_new_tokens, "decoding": "greedy"},
        "plan": {k: v for k, v in plan.items() if k != "description"},
        "fit": cfg.to_dict(),
        "data": str(data),
        "versions": library_versions(GENERATE_LIBRARIES),
    }
    if plan["strategy"] == "lora":
        config["lora"] = plan["lora"] | {"scale": lora_scale}
    return config
