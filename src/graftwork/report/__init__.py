"""The run report: ``write_report(run_dir)`` writes ``report.html``, one self-contained HTML file.

A task's report is its list of sections (``report.classify.sections(config, metrics)``,
``report.ner.sections(config, metrics)``) laid out by ``render(config, metrics, sections)``.
"""

from .html import REPORT, read_run_json, render, render_report, sections_for, write_report
from .sections import Section

__all__ = ["REPORT", "Section", "read_run_json", "render", "render_report", "sections_for", "write_report"]
