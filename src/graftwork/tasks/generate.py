"""Language models that write (``--task generate``): points at :mod:`graftwork.generate` (fit, the model, its CLI
output, its export to Hugging Face folders, its report, the settings it reads)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import SILENT, Console
from ..errors import ConfigError
from .base import Advice, Exported, ExportRequest, Task

if TYPE_CHECKING:
    from ..config import FitConfig


class GenerateTask(Task):
    name = "generate"
    option = "generate"
    export_forms = ("--merge (a plain model folder)", "--adapter (a PEFT adapter folder)")
    command_options = {"evaluate": frozenset({"text_column", "outputs", "max_new_tokens"}),
                       "predict": frozenset({"text_column", "max_new_tokens", "temperature", "top_p"})}

    def fit(self, data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT, resume: bool = False, callbacks: list[Any] | None = None) -> Any:
        from ..generate.fit import run_fit_generate

        return run_fit_generate(data, cfg, out=out, force=force, console=console, resume=resume,
                                callbacks=callbacks)

    def unsupported_settings(self, cfg: FitConfig) -> list[tuple[str, str]]:
        from ..generate.settings import unsupported_settings

        return unsupported_settings(cfg)

    def advise(self, data: str | Path, cfg: FitConfig, *, curve: bool = True, console: Console = SILENT) -> Advice:
        """The generation plan (:func:`graftwork.generate.plan.generate_plan`: ``auto`` keys on the base model's
        size and the training completions' target tokens), the data's splits and what an epoch computes. The base
        model is loaded: its size and its tokenizer decide the plan."""
        from ..generate.advise import advise_generate

        return advise_generate(data, cfg, console)

    def load(self, run_dir: str | Path, *, device: str = "auto", weights: str | None = None,
             cache_dir: str | Path | None = None, console: Console = SILENT) -> Any:
        from ..generate.model import GenerationModel

        if weights is not None:
            raise ConfigError(f"'weights' is not used by generation runs ({run_dir}): the base model is found by "
                              "the name the run records.", hint="leave weights / --weights out.")
        return GenerationModel.load(run_dir, device=device, console=console)

    def evaluate_command(self, args: argparse.Namespace) -> int:
        from ..generate.cli import evaluate_generate

        return evaluate_generate(args)

    def predict_command(self, args: argparse.Namespace) -> int:
        from ..cli.inputs import read_text_inputs
        from ..generate.cli import predict_generate

        return predict_generate(args, read_text_inputs(args.inputs, args.text_column))

    def export(self, run_dir: str | Path, out: str | Path, request: ExportRequest) -> Exported:
        from ..generate.export import export_run

        if request.format is not None:
            raise self.no_export(request.format)
        path = export_run(run_dir, out, merge=request.merge, adapter=request.adapter, force=request.force)
        what = "a merged model folder" if request.merge else "a PEFT adapter folder"
        return Exported(Path(path), f"wrote {what}: {path}")

    def report_sections(self, config: dict[str, Any], metrics: dict[str, Any]) -> list[Any]:
        from ..report.generate import sections

        return sections(config, metrics)
