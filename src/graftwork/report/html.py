"""The run report: one self-contained HTML file (inline CSS, charts as base64 PNG, no scripts, no links out).

It opens offline in any browser and can be mailed or archived as it is. Everything in it that comes from the
run (class, group and split names, file names, messages, numbers) is escaped (see :mod:`.sections`), and its
Content-Security-Policy (:data:`CSP`) lets the browser run no script and load nothing but the inline style
and the ``data:`` images, even if some markup got through. Sections whose data a run does not have
(findings, drift, per-group metrics, the random-init control, ... in older runs) are left out, not shown empty.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import RunFolderError
from . import sections as s
from .curve import learning_curve

REPORT = "report.html"
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'; object-src 'none'; "
       "base-uri 'none'; form-action 'none'")

Section = Callable[[dict[str, Any], dict[str, Any]], "str | None"]
SECTIONS: list[tuple[str, str, Section]] = [
    ("findings", "Findings", s.findings),
    ("data", "Data", s.data),
    ("plan", "The plan and why", s.plan),
    ("curves", "Training stages and learning curves", s.curves),
    ("how-much-data", "Selection, and how much data you need", learning_curve),
    ("confusion", "Confusion matrix", s.confusion),
    ("per-class", "Per-class metrics", s.per_class),
    ("drift", "Representation drift", s.drift),
    ("groups", "Per-group metrics", s.groups),
    ("control", "Pretrained versus random initialisation", s.control),
    ("mismatch", "Domain mismatch", s.mismatch),
    ("about", "Timing, backbone and versions", s.footer),
]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #111827; max-width: 1100px; margin: 0 auto; padding: 1.5rem; line-height: 1.45;
       font-size: 15px; }
h1 small { display: block; font-size: .8rem; color: #6b7280; font-weight: 400; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #e5e7eb; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; }
.meta { color: #4b5563; margin-top: 0; overflow-wrap: anywhere; }
nav { font-size: .9rem; margin: .8rem 0; }
nav a { margin-right: .8rem; color: #1d4ed8; text-decoration: none; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; max-width: 100%; }
th, td { border: 1px solid #d1d5db; padding: .25rem .55rem; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f3f4f6; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
tr.kept td { background: #ecfdf5; font-weight: 600; }
tr.muted td { color: #9ca3af; }
tr.warn td { background: #fef3c7; }
code { background: #f3f4f6; padding: 0 .2rem; border-radius: 3px; overflow-wrap: anywhere; }
figure { margin: .8rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption, .note { color: #4b5563; font-size: .88rem; }
.finding { border-left: 5px solid #9ca3af; background: #f9fafb; padding: .3rem .8rem; margin: .6rem 0; }
.finding p { margin: .3rem 0; overflow-wrap: anywhere; }
.badge { display: inline-block; color: #fff; border-radius: 4px; padding: 0 .45rem; font-size: .8rem;
         font-weight: 700; text-transform: uppercase; background: #6b7280; }
.sev-high { border-color: #b91c1c; } .badge.sev-high { background: #b91c1c; }
.sev-warning { border-color: #b45309; } .badge.sev-warning { background: #b45309; }
.sev-info { border-color: #1d4ed8; } .badge.sev-info { background: #1d4ed8; }
details summary { cursor: pointer; color: #1d4ed8; }
"""


def render_report(metrics: dict[str, Any], config: dict[str, Any], *, name: str | None = None) -> str:
    """The report of a run as one HTML document; ``name`` titles it (default: the data folder's name)."""
    metrics = metrics if isinstance(metrics, dict) else {}
    config = config if isinstance(config, dict) else {}
    name = name or Path(str(config.get("data") or "run")).name or "run"
    body, toc = [], []
    for anchor, title, section in SECTIONS:
        try:
            content = section(metrics, config)
        except Exception as e:  # one malformed part of metrics.json must not cost the whole report
            content = (f'<p class="note">This section could not be rendered ({s.esc(type(e).__name__)}: '
                       f"{s.esc(e)}).</p>")
        if content:
            toc.append(f'<a href="#{anchor}">{s.esc(title)}</a>')
            body.append(f'<section id="{anchor}"><h2>{s.esc(title)}</h2>{content}</section>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{s.esc(CSP)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>graftwork report: {s.esc(name)}</title><style>{CSS}</style></head><body>"
            f"{_header(metrics, config, name)}<nav>{''.join(toc)}</nav>{''.join(body)}</body></html>\n")


def _header(metrics: dict[str, Any], config: dict[str, Any], name: str) -> str:
    backbone: dict[str, Any] = config["backbone"] if isinstance(config.get("backbone"), dict) else {}
    plan: dict[str, Any] = config["plan"] if isinstance(config.get("plan"), dict) else {}
    facts = [("created", _date(config.get("created"))), ("backbone", backbone.get("name")),
             ("weights", backbone.get("weights")), ("strategy", plan.get("strategy")),
             ("kept", metrics.get("kept_stage"))]
    meta = " · ".join(f"{s.esc(k)}: <b>{s.esc(v)}</b>" for k, v in facts if v not in (None, ""))
    results = s.results(metrics)
    return (f"<h1><small>graftwork run</small> {s.esc(name)}</h1><p class=\"meta\">{meta}</p>"
            + (results or ""))


def _date(created: Any) -> Any:
    """An ISO timestamp as "2026-01-02 03:04 UTC"; anything else as it is."""
    try:
        when = datetime.fromisoformat(str(created))
    except ValueError:
        return created
    if when.utcoffset() is not None:
        return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return when.strftime("%Y-%m-%d %H:%M")


def write_report(run_dir: str | Path, metrics: dict[str, Any] | None = None,
                 config: dict[str, Any] | None = None, out: str | Path | None = None, *,
                 force: bool = False) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default: ``run_dir/report.html``); return it.

    ``metrics`` and ``config`` default to the run folder's ``metrics.json`` and ``config.json``. The file is
    written atomically (a temporary file in the same folder, then renamed), so a reader never sees half of it.
    The run's own ``report.html`` is always rewritten; an ``out`` that exists is replaced only with ``force``, and
    only if it is a report graftwork wrote (:func:`graftwork.run.check_out_file`).
    """
    from ..run.guard import check_out_file

    run_dir = Path(run_dir).expanduser()
    if out is not None:
        check_out_file(out, force)
    if metrics is None or config is None:
        loaded_metrics, loaded_config = read_run_json(run_dir)
        metrics = loaded_metrics if metrics is None else metrics
        config = loaded_config if config is None else config
    target = Path(out).expanduser() if out is not None else run_dir / REPORT
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(metrics, config, name=run_dir.resolve().name or None)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_run_json(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, config) of a run folder, without loading any weights; metrics is {} when the run has none."""
    root = Path(run_dir).expanduser()
    if not (root / "config.json").is_file():
        raise RunFolderError(f"{root}: not a graftwork run folder (no config.json).",
                             hint="pass the --out folder of a `graftwork fit` run.")
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        path = root / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{root}: damaged JSON ({e}).", hint="re-run `graftwork fit`.") from None
    return metrics, config
