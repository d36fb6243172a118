"""The commands on a trained run: ``evaluate``, ``predict``, ``report``, ``export``, ``serve``.

Each finds the run's task once (:func:`graftwork.tasks.task_of_run`, from its ``config.json``) and hands over to
it; an option the run's task does not read is an error that names it, as a fit setting would be. ``predict`` and
``serve`` on an ONNX export go to the light runtime instead, without importing torch.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...console import Console
from ...errors import ConfigError
from ..inputs import read_file_inputs, read_text_inputs
from ..io import WEIGHTS_HELP, print_json, say

# options of evaluate and predict that only some tasks read, with their defaults (given: differs from it)
TASK_OPTIONS: dict[str, dict[str, Any]] = {
    "evaluate": {"weights": None, "no_cache": False, "skip_bad_files": False, "text_column": "text",
                 "label_column": "label", "groups": None, "outputs": None, "max_new_tokens": None},
    "predict": {"weights": None, "skip_bad_files": False, "text_column": "text", "top_k": 3,
                "max_new_tokens": None, "temperature": None, "top_p": None},
}


def refuse_unread_options(command: str, args: argparse.Namespace, task: Any) -> None:
    """A :class:`ConfigError` naming each option given to ``command`` that ``task`` does not read."""
    reads = task.command_options.get(command, frozenset())
    unread = [name for name, default in TASK_OPTIONS[command].items()
              if name not in reads and getattr(args, name, default) != default]
    if unread:
        flags = ", ".join("--" + n.replace("_", "-") for n in unread)
        raise ConfigError(f"{command} {args.run}: {flags} not used for {task.name} runs.",
                          hint=f"leave {flags} out; `graftwork {command} --help` says which runs each option is for.")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ...tasks import task_of_run

    task = task_of_run(args.run)
    refuse_unread_options("evaluate", args, task)
    return task.evaluate_command(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from ...runtime.manifest import is_onnx_export

    if is_onnx_export(args.run):  # the light runtime: no torch imported
        from ...runtime.cli import predict_export

        return predict_export(args, read_text_inputs, read_file_inputs)
    from ...tasks import task_of_run

    task = task_of_run(args.run)
    refuse_unread_options("predict", args, task)
    return task.predict_command(args)


def cmd_report(args: argparse.Namespace) -> int:
    from ...tasks import task_of_run

    path = task_of_run(args.run).write_report(args.run, out=args.out, force=args.force)
    say(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Whatever the form (--format onnx or hf, --merge, --adapter), the run's task writes it or says it cannot."""
    from ...tasks import ExportRequest, task_of_run

    request = ExportRequest(format=args.format, merge=args.merge, adapter=args.adapter, data=args.data,
                            verify=not args.no_verify, force=args.force, console=Console(verbose=not args.quiet))
    exported = task_of_run(args.run).export(args.run, args.out, request)
    say(exported.message)
    if args.json and exported.manifest is not None:
        print_json(exported.manifest)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ...serve.app import serve

    serve(args.run, host=args.host, port=args.port, workers=args.workers, max_batch=args.max_batch,
          max_wait_ms=args.max_wait_ms, max_upload_mb=args.max_upload_mb, device=args.device)
    return 0


def add_parsers(sub: Any) -> None:
    _evaluate(sub)
    _report(sub)
    _predict(sub)
    _export(sub)
    _serve(sub)


def _evaluate(sub: Any) -> None:
    ev = sub.add_parser("evaluate", help="metrics of a trained model on labelled data")
    ev.add_argument("run", metavar="RUN_DIR")
    ev.add_argument("data", metavar="DATA", help="labelled data (its test/ split if it has one)")
    ev.add_argument("--json", action="store_true", help="print JSON on stdout")
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ev.add_argument("--weights", metavar="PATH", help=WEIGHTS_HELP + "; classification and NER runs")
    ev.add_argument("--no-cache", action="store_true", help="classification runs: do not use or fill the feature "
                    "cache")
    ev.add_argument("--skip-bad-files", action="store_true", help="skip unreadable inputs instead of stopping "
                    "(classification and NER runs)")
    ev.add_argument("--text-column", default="text", help="classification and generation runs: the CSV/JSONL "
                    "column holding the text")
    ev.add_argument("--label-column", default="label", help="classification runs: the column holding the label")
    ev.add_argument("--groups", metavar="COLUMN_OR_MANIFEST",
                    help="classification runs: per-group metrics and bias checks: for CSV/JSONL text, the column "
                         "that holds each example's group; for an image folder, a CSV manifest with columns "
                         "path,group")
    ev.add_argument("--outputs", metavar="FILE", help="generation runs: write every prompt, reference and "
                    "generation to this new JSONL file")
    ev.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                    help="generation runs: the most tokens per answer (default: the run's)")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)


def _report(sub: Any) -> None:
    rep = sub.add_parser("report", help="(re)write RUN_DIR/report.html, the run's self-contained HTML report")
    rep.add_argument("run", metavar="RUN_DIR")
    rep.add_argument("--out", metavar="FILE", help="write the report here instead of RUN_DIR/report.html")
    rep.add_argument("--force", action="store_true",
                     help="replace an existing --out FILE if it is a report graftwork wrote (any other file is "
                          "always refused)")
    rep.set_defaults(func=cmd_report)


def _predict(sub: Any) -> None:
    pr = sub.add_parser("predict", help="labels, entities or generations for new inputs")
    pr.add_argument("run", metavar="RUN_DIR")
    pr.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="image or audio paths or folders; or texts, '-' for lines on stdin, or a CSV/JSONL file")
    pr.add_argument("--top-k", type=int, default=3, help="classification runs: labels to show per input "
                    "(default: 3)")
    pr.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                    help="generation runs: the most tokens per answer (default: the run's)")
    pr.add_argument("--temperature", type=float, default=None,
                    help="generation runs: sample with this temperature (default: greedy)")
    pr.add_argument("--top-p", type=float, default=None, help="generation runs: nucleus sampling mass (with "
                    "--temperature)")
    pr.add_argument("--json", action="store_true", help="print JSON on stdout")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pr.add_argument("--weights", metavar="PATH", help=WEIGHTS_HELP + "; classification and NER runs")
    pr.add_argument("--text-column", default="text", help="column of a CSV/JSONL input holding the text")
    pr.add_argument("--skip-bad-files", action="store_true",
                    help="classification runs: leave out inputs that are missing or cannot be read (listed on "
                         'stderr; with --json the output is {"predictions": [...], "skipped": [...], '
                         '"n_skipped": N})')
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(func=cmd_predict)


def _export(sub: Any) -> None:
    ex = sub.add_parser("export", help="write a run in another form: ONNX (checked for parity), a Hugging Face "
                        "folder, or a run with LoRA merged",
                        description="--format onnx (the default without --merge): model.onnx (backbone + head, "
                                    "probabilities out), the preprocessing as data and graftwork-onnx.json; the "
                                    "export is checked against the run on its own examples (--data, else the data "
                                    "it was trained on when still there, else synthetic inputs) and refused when "
                                    "they differ. `graftwork predict DIR` and `graftwork serve DIR` use it without "
                                    "PyTorch. --merge: a run folder with LoRA adapters merged into the backbone. "
                                    "Generation runs: --merge (a plain model folder) or --adapter (PEFT).")
    ex.add_argument("run", metavar="RUN_DIR")
    ex.add_argument("--format", choices=["onnx", "hf", "run"], default=None,
                    help="onnx (default); hf (text classifiers: a Hugging Face folder for transformers' "
                         "text-classification pipeline); or run (with --merge)")
    ex.add_argument("--merge", action="store_true",
                    help="merge a LoRA run's adapters into the backbone weights (same predictions, no adapter "
                         "overhead, loadable without PEFT)")
    ex.add_argument("--adapter", action="store_true",
                    help="generation runs: write the LoRA adapter as a PEFT folder (PeftModel.from_pretrained)")
    ex.add_argument("--out", required=True, metavar="DIR", help="the new folder")
    ex.add_argument("--data", metavar="DATA", help="labelled data whose examples (test split, else val, else all) "
                    "the parity check uses")
    ex.add_argument("--no-verify", action="store_true", help="skip the parity check")
    ex.add_argument("--json", action="store_true", help="print the ONNX manifest as JSON on stdout")
    ex.add_argument("--quiet", action="store_true")
    ex.add_argument("--force", action="store_true",
                    help="replace an existing --out folder of the same kind (graftwork's own only; any other "
                         "non-empty folder and the source run are always refused)")
    ex.set_defaults(func=cmd_export)


def _serve(sub: Any) -> None:
    sv = sub.add_parser("serve", help="an HTTP server for a run or an ONNX export: POST /predict, GET /health, "
                        "GET /info", description="Serves RUN_DIR (a run folder or an ONNX export) over HTTP with "
                        "FastAPI and uvicorn. POST /predict takes {\"inputs\": [texts]} as JSON, or image/audio "
                        "files as multipart uploads (field 'files'), and answers as `predict --json`. Requests "
                        "arriving together are batched. The server never writes to RUN_DIR.")
    sv.add_argument("run", metavar="RUN_DIR")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the model")
    sv.add_argument("--max-batch", type=int, default=32, help="most inputs run through the model at once")
    sv.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="how long a request waits for others to share its batch (default: 5)")
    sv.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body accepted (413 above)")
    sv.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="for run folders")
    sv.set_defaults(func=cmd_serve)
