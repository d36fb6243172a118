"""What ``graftwork evaluate``, ``predict`` and ``export`` do for a generation run."""

from __future__ import annotations

import json
import sys
from typing import Any

from ..console import Console, literal
from ..errors import DataError


def _model(args: Any) -> Any:
    from .model import GenerationModel

    return GenerationModel.load(args.run, device=args.device, console=Console(verbose=not args.quiet))


def evaluate_generate(args: Any) -> int:
    model = _model(args)
    result = model.evaluate(args.data, outputs=getattr(args, "outputs", None), text_column=args.text_column,
                            max_new_tokens=getattr(args, "max_new_tokens", None))
    if args.json:
        sys.stdout.write(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2) + "\n")
        return 0
    from rich.console import Console as RichConsole

    out = RichConsole(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 160)
    out.print(literal(f"n={result['n']}: exact match {result['exact_match']:.3f}, rougeL {result['rougeL']:.3f}, "
                      f"chrF {result['chrf']:.1f}, loss {result['loss']:.4f}, perplexity {result['perplexity']:.2f}"))
    if "outputs" in result:
        out.print(literal(f"wrote every prompt, reference and generation to {result['outputs']}"))
    return 0


def predict_generate(args: Any, prompts: list[str]) -> int:
    if not prompts:
        raise DataError("nothing to predict: no prompts.", hint="pass prompts, '-' (stdin) or a CSV/JSONL file.")
    model = _model(args)
    options = {"max_new_tokens": getattr(args, "max_new_tokens", None), "temperature": args.temperature or 0.0,
               "top_p": args.top_p if args.top_p is not None else 1.0}
    if args.json or not sys.stdout.isatty():
        preds = model.predict(prompts, **options)
        if args.json:
            sys.stdout.write("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds))
        else:
            sys.stdout.write("".join(p["generation"] + "\n" for p in preds))
        return 0
    from ..console import visible

    for prompt in prompts:  # a terminal: stream each answer as it is generated
        sys.stdout.write(visible(f"> {prompt}") + "\n")
        model.stream(prompt, lambda text: (sys.stdout.write(visible(text)), sys.stdout.flush()), **options)
        sys.stdout.write("\n")
    return 0


def export_generate(args: Any) -> int:
    from .export import export_run

    path = export_run(args.run, args.out, merge=args.merge, adapter=getattr(args, "adapter", False), force=args.force)
    sys.stderr.write(f"wrote {'a merged model folder' if args.merge else 'a PEFT adapter folder'}: {path}\n")
    return 0
