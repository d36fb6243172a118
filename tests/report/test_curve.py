"""The report's selection and learning-curve section."""

from __future__ import annotations

from graftwork.report.curve import learning_curve
from graftwork.report.html import render_report


def test_section_shows_the_choice_the_curve_and_the_projections_escaped():
    metrics = {"selection": {"how": "validation is small (6 examples): cross-validation <b>", "probe": "C=0.1"},
               "learning_curve": {"points": [{"n": 4, "accuracy": 0.6, "runs": [0.5, 0.7]},
                                             {"n": 8, "accuracy": 0.7, "runs": [0.7, 0.7]}],
                                  "method": "power law", "current": 12, "note": "",
                                  "projections": [{"factor": 2.0, "examples": 24, "per_class": 10, "accuracy": 0.75,
                                                   "low": 0.7, "high": 0.8, "strategy": "full"}]}}
    html = learning_curve(metrics, {})
    assert "cross-validation &lt;b&gt;" in html  # escaped, as every value from metrics.json
    assert "0.700-0.800" in html and "full" in html and "2.0x" in html
    assert learning_curve({}, {}) is None
    page = render_report(metrics, {})
    assert 'id="how-much-data"' in page
