"""The run report: ``write_report(run_dir)`` writes ``report.html``, one self-contained HTML file."""

from .html import REPORT, read_run_json, render_report, write_report

__all__ = ["REPORT", "read_run_json", "render_report", "write_report"]
