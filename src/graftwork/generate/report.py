"""``report.html`` of a generation run: the shared report page (:mod:`graftwork.report`: jinja2 templates with
autoescaping, a Content-Security-Policy that forbids scripts) with the generation sections
(:mod:`graftwork.report.generate`: what fine-tuning bought, loss curves as inline SVG, forgetting, samples).
Prompts, references and generations are user text: a generation holding ``<script>`` stays text.
"""

from __future__ import annotations

from typing import Any

from ..report import render
from ..report.generate import sections


def render_report(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The report of a generation run, from its config and metrics."""
    return render(config, metrics, sections(config, metrics))
