"""The light install: an ONNX export predicts with torch, transformers, timm and torchvision unimportable."""

from __future__ import annotations

import json

import numpy as np

from graftwork.export.onnx import export_onnx
from graftwork.model import TransferModel

from ..conftest import make_image_folder
from .conftest import run_without_torch


def test_the_blocker_really_blocks(tmp_path):
    result = run_without_torch("import torch", tmp_path)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_cli_predict_on_an_image_export_without_torch(image_run, tmp_path):
    out = tmp_path / "onnx"
    export_onnx(image_run, out, verify=False)
    new = make_image_folder(tmp_path / "new", per_class=2, seed=9)
    images = sorted(str(f) for f in new.rglob("*.png"))
    code = ("from graftwork.cli.main import main\n"
            f"code = main(['predict', {str(out)!r}, *{images!r}, '--json', '--top-k', '2'])\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'timm')]\n"
            "sys.exit(code)\n")
    result = run_without_torch(code, tmp_path)
    assert result.returncode == 0, result.stderr
    preds = json.loads(result.stdout)
    reference = TransferModel.load(image_run, device="cpu").predict(images, top_k=2)
    assert [p["input"] for p in preds] == images
    assert [p["label"] for p in preds] == [p["label"] for p in reference]
    got = np.array([[t["probability"] for t in p["top"]] for p in preds])
    want = np.array([[t["probability"] for t in p["top"]] for p in reference])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_text_and_ner_exports_predict_without_torch(text_run, ner_run, tmp_path):
    from graftwork.ner import NerModel

    export_onnx(text_run, tmp_path / "text", verify=False)
    export_onnx(ner_run, tmp_path / "ner", verify=False)
    texts = ["apple pear melon", "bus car boat"]
    code = ("import json\nfrom graftwork.runtime import load_export\n"
            f"print(json.dumps([load_export({str(tmp_path / 'text')!r}).predict({texts!r}),"
            f" load_export({str(tmp_path / 'ner')!r}).predict({texts!r})]))\n")
    result = run_without_torch(code, tmp_path)
    assert result.returncode == 0, result.stderr
    text_preds, ner_preds = json.loads(result.stdout)
    assert [p["label"] for p in text_preds] == [p["label"] for p in TransferModel.load(text_run).predict(texts)]
    assert ner_preds == NerModel.load(ner_run, device="cpu").predict(texts)


def test_a_bad_image_is_a_clear_error_without_torch(image_run, tmp_path):
    out = tmp_path / "onnx"
    export_onnx(image_run, out, verify=False)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    code = f"from graftwork.cli.main import main\nsys.exit(main(['predict', {str(out)!r}, {str(bad)!r}]))\n"
    result = run_without_torch(code, tmp_path)
    assert result.returncode == 2 and "could not be read" in result.stderr and "bad.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_tables_show_user_text_literally(text_run, ner_run, tmp_path, capsys):
    from graftwork.cli.main import main

    export_onnx(text_run, tmp_path / "text", verify=False)
    export_onnx(ner_run, tmp_path / "ner", verify=False)
    hostile = "[bold red]apple[/x] \x1b[2J pear\r"
    for export in ("text", "ner"):
        assert main(["predict", str(tmp_path / export), hostile]) == 0
        out = capsys.readouterr().out
        assert "[bold red]apple[/x]" in out and "\\x1b[2J" in out
        assert "\x1b" not in out and "\r" not in out
