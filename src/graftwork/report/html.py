"""The run report: one self-contained HTML file (inline CSS, charts as base64 PNG or inline SVG, no scripts, no
links out).

It opens offline in any browser and can be mailed or archived as it is. The page is a jinja2 template
(``templates/report.html.j2``) with autoescaping, and so is every section (:mod:`.templating`): everything in
it that comes from the run (class, group and split names, file names, messages, numbers) is escaped. Its
Content-Security-Policy (:data:`CSP`) lets the browser run no script and load nothing but the inline style
and the ``data:`` images, even if some markup got through. Sections whose data a run does not have
(findings, drift, per-group metrics, the random-init control, ... in older runs) are left out, not shown empty.

Each task supplies its list of sections (:meth:`graftwork.tasks.Task.report_sections`: ``report.classify``,
``report.ner``, ``report.generate``); :func:`render` lays out any such list.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import RunFolderError
from . import classify
from .sections import Section
from .templating import macro
from .templating import render as render_template
from .values import mapping

REPORT = "report.html"
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'; object-src 'none'; "
       "base-uri 'none'; form-action 'none'")


def sections_for(config: dict[str, Any], metrics: dict[str, Any]) -> list[Section]:
    """The sections of the run's task (config.json's ``task``, through the task registry; a run saved before
    tasks were recorded is a classification run)."""
    from ..errors import ConfigError
    from ..tasks import get_task  # the tasks import the report lazily: no cycle

    name = config.get("task") if isinstance(config.get("task"), str) else "classification"
    try:
        task = get_task(name)
    except ConfigError:
        return classify.sections(config, metrics)
    return task.report_sections(config, metrics)


def render(config: dict[str, Any], metrics: dict[str, Any], sections: Sequence[Section], *,
           name: str | None = None) -> str:
    """The report of a run as one HTML document, made of ``sections`` in their order; ``name`` titles it
    (default: the data folder's name). A section that fails to render is replaced by a note saying why."""
    metrics, config = mapping(metrics), mapping(config)
    name = name or Path(str(config.get("data") or "run")).name or "run"
    headline, parts = [], []
    for section in sections:
        try:
            body = section.build(metrics, config)
        except Exception as e:  # one malformed part of metrics.json must not cost the whole report
            body = macro("note", f"This section could not be rendered ({type(e).__name__}: {e}).")
        if not body:
            continue
        if section.headline:
            headline.append(body)
        else:
            parts.append({"anchor": section.anchor, "title": section.title, "body": body})
    return render_template("report.html.j2", csp=CSP, name=name, facts=_facts(metrics, config),
                           headline=headline, parts=parts) + "\n"


def render_report(metrics: dict[str, Any], config: dict[str, Any], *, name: str | None = None) -> str:
    """The report of a run with the sections of its task (see :func:`render`)."""
    metrics, config = mapping(metrics), mapping(config)
    return render(config, metrics, sections_for(config, metrics), name=name)


def _facts(metrics: dict[str, Any], config: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the line under the title says: when, which backbone and weights, which strategy, which stage."""
    backbone, plan = mapping(config.get("backbone")), mapping(config.get("plan"))
    facts = [("created", _date(config.get("created"))), ("backbone", backbone.get("name")),
             ("weights", backbone.get("weights")), ("strategy", plan.get("strategy")),
             ("kept", metrics.get("kept_stage") or _epoch(metrics.get("best_epoch")))]
    return [(k, v) for k, v in facts if v not in (None, "")]


def _epoch(best: Any) -> str | None:
    """The kept epoch of a run that keeps one epoch's weights rather than a stage (a generation run)."""
    return f"epoch {best}" if isinstance(best, int) and not isinstance(best, bool) else None


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
                 force: bool = False, sections: Sequence[Section] | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default: ``run_dir/report.html``); return it.

    ``metrics`` and ``config`` default to the run folder's ``metrics.json`` and ``config.json``. The file is
    written atomically (a temporary file in the same folder, then renamed), so a reader never sees half of it.
    The run's own ``report.html`` is always rewritten; an ``out`` that exists is replaced only with ``force``, and
    only if it is a report graftwork wrote (:func:`graftwork.run.check_out_file`). ``sections`` default to
    those of the run's task (:func:`sections_for`).
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
    metrics, config = mapping(metrics), mapping(config)
    chosen = sections_for(config, metrics) if sections is None else sections
    write_text(target, render(config, metrics, chosen, name=run_dir.resolve().name or None))
    return target


def write_text(target: Path, text: str) -> None:
    """Write a report atomically: a temporary file beside ``target``, then renamed over it (every task's report)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
