"""Export a generation run to the standard Hugging Face formats.

* ``merge``: the adapters folded into the base weights (``W + s * (alpha / r) * B A``), written with the
  tokenizer and generation config as an ordinary model folder: ``transformers.pipeline("text-generation",
  model=DIR)`` loads it with no PEFT and no graftwork, and gives the same greedy outputs (tested);
* ``adapter``: a PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) that
  ``PeftModel.from_pretrained(base, DIR)`` loads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError
from .decode import stop_ids
from .model import GenerationModel


def export_run(run: str | Path, out: str | Path, *, merge: bool, adapter: bool, force: bool = False) -> Path:
    """Write ``run`` as a merged model folder or a PEFT adapter folder at ``out``."""
    from ..run.guard import check_out_dir

    if merge == adapter:
        raise ConfigError("export of a generation run needs exactly one of --merge or --adapter.",
                          hint="graftwork export RUN --merge --out DIR (a plain model folder) or --adapter.")
    check_out_dir(out, force, run)
    gm = GenerationModel.load(run, device="cpu")
    if adapter and gm.config["strategy"] != "lora":
        raise ConfigError(f"--adapter: {run} fine-tuned every weight (strategy full); it has no adapter.",
                          hint="use --merge to write the model folder.")
    path = Path(out).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.writing-"))
    try:
        model = gm.model
        if merge:
            if gm.config["strategy"] == "lora":
                model = model.merge_and_unload()
            model.generation_config.eos_token_id = stop_ids(model, gm.tokenizer)
            model.generation_config.pad_token_id = gm.tokenizer.pad_token_id
            model.save_pretrained(str(staging), safe_serialization=True)
        else:
            model.save_pretrained(str(staging))
        gm.tokenizer.save_pretrained(str(staging))
        if path.exists():
            shutil.rmtree(path)  # checked above: empty, or a graftwork folder with --force
        os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path
