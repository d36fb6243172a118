"""``graftwork rank``: candidates scored on frozen features, as a table, as JSON, and as actionable errors."""

from __future__ import annotations

import json

import pytest

import graftwork
from graftwork.cli.main import main
from graftwork.diagnostics.rank import parse_candidates
from graftwork.errors import ConfigError

from ..conftest import make_image_folder

CONTROL = "random:timm:test_efficientnet"


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path):
    make_image_folder(tmp_path / "data" / "train", per_class=6)
    make_image_folder(tmp_path / "data" / "val", per_class=2, seed=1)
    make_image_folder(tmp_path / "data" / "test", per_class=2, seed=2)  # never used for ranking
    return tmp_path / "data"


def test_rank_prints_a_table_ranked_by_logme(data, tiny_vit, capsys):
    code, out, err = run(capsys, "rank", data, "--backbones", f"{CONTROL},hf:{tiny_vit}")
    assert code == 0, err
    assert "ranked by LogME" in out
    assert "random:timm:test_efficien" in out and "tiny-vit" in out
    assert "pretrained-not-helping" in out  # the random control is compared with the pretrained candidate
    assert "features of 16 examples" in err  # train + val, not test


def test_rank_json_and_the_python_api_share_the_cache(data, tiny_vit, capsys):
    names = [CONTROL, f"hf:{tiny_vit}"]
    code, out, err = run(capsys, "rank", data, "--backbones", ",".join(names), "--json", "--quiet")
    assert code == 0, err
    result = json.loads(out)
    assert result["ranked_by"] == "logme" and result["examples"] == 16
    rows = result["backbones"]
    assert {r["name"] for r in rows} == set(names)
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["logme"] >= rows[1]["logme"]
    for r in rows:
        assert 0 <= r["probe_accuracy"] <= 1 and 0 <= r["knn_accuracy"] <= 1
        assert r["extract_s"] >= 0 and r["logme_s"] >= 0 and r["computed"] == 16
    codes = {f["code"] for f in result["findings"]}
    assert {"pretrained-not-helping", "rank-within-noise"} <= codes

    again = graftwork.rank(data, names)
    assert [r.from_cache for r in again.rows] == [16, 16]
    assert [r.name for r in again.rows] == [r["name"] for r in rows]


def test_bad_backbone_name_is_a_clear_error(data, capsys):
    code, out, err = run(capsys, "rank", data, "--backbones", f"{CONTROL},tim:resnet18")
    assert code == 2
    assert "error: 'backbone': unknown source 'tim'" in err and "did you mean timm:resnet18" in err
    assert "Traceback" not in err and out == ""


def test_missing_weights_point_to_the_random_control(data, capsys):
    code, _, err = run(capsys, "rank", data, "--backbones", "timm:test_efficientnet")
    assert code == 2
    assert f"name it {CONTROL}" in err and "Traceback" not in err


def test_candidate_names():
    assert parse_candidates(" timm:a, random:timm:a,timm:a ,") == ["timm:a", "random:timm:a"]
    with pytest.raises(ConfigError):
        parse_candidates(" , ")


def test_unreadable_images_are_skipped_and_listed(data, capsys):
    (data / "train" / "red" / "broken.png").write_bytes(b"not an image")
    code, out, err = run(capsys, "rank", data, "--backbones", CONTROL, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["examples"] == 16
    assert any("broken.png" in s for s in result["skipped"])
