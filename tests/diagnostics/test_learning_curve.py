"""The learning curve: a known power law is recovered, few points degrade gracefully, projections say what
``auto`` would do with more data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graftwork.diagnostics.learning_curve import (
    CurvePoint,
    LearningCurve,
    fit_power_law,
    learning_curve,
    power_law,
    project,
)

from ..strategies.test_head import blobs


def test_a_known_curve_is_recovered_from_noisy_points():
    rng = np.random.default_rng(0)
    n = np.array([8, 16, 32, 64, 128, 256], dtype=float)
    acc = power_law(n, 0.92, 1.1, 0.6) + rng.normal(0, 0.003, len(n))
    params, method = fit_power_law(n, acc)
    assert method == "power law"
    assert params["a"] == pytest.approx(0.92, abs=0.02)
    assert params["b"] == pytest.approx(1.1, rel=0.25)
    assert params["c"] == pytest.approx(0.6, abs=0.1)


def test_two_points_fix_the_exponent_and_one_point_extrapolates_nothing():
    points = [CurvePoint(10, 0.6, [0.55, 0.65]), CurvePoint(20, 0.7, [0.68, 0.72])]
    curve = project(points, 27, lambda f: (int(13 * f), "frozen"))
    assert curve.params is not None and curve.params["c"] == 0.5 and "fixed" in curve.method
    assert [p.factor for p in curve.projections] == [2.0, 4.0]
    for p in curve.projections:
        assert 0.7 <= p.low <= p.accuracy <= p.high <= 1.0  # never below the largest measured subset
    assert curve.projections[1].accuracy >= curve.projections[0].accuracy
    for p in curve.projections:  # what more data adds: from the curve at today's 27 examples
        assert p.gain == pytest.approx(p.accuracy - power_law(27.0, **curve.params)) and p.gain > 0
    assert "points over now" in curve.describe()[1] and "points over now" in curve.finding().message
    single = project([CurvePoint(10, 0.6, [0.6])], 13, lambda f: (int(6 * f), "frozen"))
    assert single.params is None and not single.projections and "nothing to extrapolate" in single.note
    assert single.finding().code == "learning-curve" and single.note in single.finding().message


def test_measured_curve_on_features_projects_the_plan_at_more_data():
    x, y = blobs(40, classes=2, spread=14.0, seed=6)
    curve = learning_curve(x, y, {"a": 32, "b": 32}, c=0.1, modality="image")
    assert len(curve.points) == 4 and curve.points[-1].n == 60  # a quarter held out, nested subsets of the rest
    assert all(len(p.runs) == 3 for p in curve.points)  # three seeds per size
    assert [p.strategy for p in curve.projections] == ["full", "full"]  # 64 and 128 images per class: LP-FT
    assert curve.current == 80 and curve.projections[0].examples == 160
    again = LearningCurve.from_dict(curve.to_dict())
    assert again.to_dict() == curve.to_dict()
    older = curve.to_dict()  # a run recorded before the gain was: still readable
    older["projections"] = [{k: v for k, v in p.items() if k != "gain"} for p in older["projections"]]
    assert LearningCurve.from_dict(older).projections[0].gain is None
    assert any("2x the data" in line for line in curve.describe())


def test_advise_prints_the_curve_and_reuses_cached_features(tmp_path, tiny_bert, capsys):
    from graftwork.cli.main import main

    from ..conftest import make_text_rows, write_csv

    data = write_csv(tmp_path / "t.csv", make_text_rows(per_class=16, seed=2))
    assert main(["advise", str(data), "--backbone", str(tiny_bert), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    curve = out["learning_curve"]
    assert curve["current"] == 32 and len(curve["points"]) == 4
    assert [p["factor"] for p in curve["projections"]] == [2.0, 4.0]
    assert main(["advise", str(data), "--backbone", str(tiny_bert)]) == 0
    captured = capsys.readouterr()
    assert "with 2x the data" in captured.out and "32 from cache" in captured.err
    assert main(["advise", str(data), "--backbone", str(tiny_bert), "--no-curve"]) == 0
    assert "skipped (--no-curve)" in capsys.readouterr().out


def test_the_bootstraps_vectorised_fits_are_as_good_as_curve_fits():
    """Every resample's fit (a grid over the exponent, least squares for the rest) fits its points as well as
    scipy's bounded curve_fit does, within the grid's resolution, and respects the bounds."""
    from graftwork.diagnostics.learning_curve import bootstrap_fits, fit_power_law, power_law

    rng = np.random.default_rng(0)
    n = np.array([10.0, 20.0, 40.0, 80.0])
    truth = power_law(n, 0.9, 1.2, 0.6)
    samples = np.clip(truth[None, :] + rng.normal(0, 0.03, size=(40, 4)), 0, 1)
    samples[0] = [0.95, 0.97, 0.99, 1.0]  # saturating at the top: a is held at 1
    samples[1] = [0.5, 0.5, 0.5, 0.5]  # flat: b is 0
    for row, fit in zip(samples, bootstrap_fits(n, samples), strict=True):
        assert 0 <= fit["a"] <= 1 and fit["b"] >= 0 and 0.05 <= fit["c"] <= 2
        mine = float(((power_law(n, fit["a"], fit["b"], fit["c"]) - row) ** 2).sum())
        found = fit_power_law(n, row)
        assert found is not None
        ref = found[0]
        theirs = float(((power_law(n, ref["a"], ref["b"], ref["c"]) - row) ** 2).sum())
        assert mine <= theirs + 1e-4, (row, fit, ref)


def test_the_interval_counts_the_noise_of_the_held_out_scores():
    """Three runs that agree exactly still leave the uncertainty of scoring each on a quarter of the data: the
    interval is not a point, and it narrows as the data (so each held-out quarter) grows."""
    from graftwork.diagnostics.learning_curve import CurvePoint, project

    def width(current: int) -> float:
        sizes = [current * f * 0.75 for f in (0.125, 0.25, 0.5, 1.0)]
        points = [CurvePoint(int(n), a, [a, a, a]) for n, a in zip(sizes, (0.6, 0.7, 0.76, 0.8), strict=True)]
        p = project(points, current, lambda factor: (0, "frozen")).projections[0]
        assert p.low <= p.accuracy <= p.high
        return p.high - p.low

    small, large = width(80), width(8000)
    assert small > 0.02 and large < small / 3
