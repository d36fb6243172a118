"""export --format hf: a text classifier as a plain Hugging Face folder that transformers' text-classification
pipeline loads (no graftwork, no remote code) and that gives the run's labels and scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graftwork.cli.main import main
from graftwork.model import TransferModel

from ..conftest import WORDS, make_text_rows, write_csv

TEXTS = ["apple pear", "bus car the", "hello world my", "a pear is a pear", "car"]


@pytest.fixture(scope="module")
def wide_bert(tmp_path_factory):
    """A 2-layer BERT whose feed-forward is 4x its width, as in BERT and MiniLM."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("wide-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w for ws in WORDS.values() for w in ws}) + \
        ["the", "a", "is", "i", "my", "hello", "world"]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    torch.manual_seed(1)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64)
    model = BertModel(config)
    with torch.no_grad():  # a trained [PAD] embedding is not zero (XLM would add it for token type ids)
        model.embeddings.word_embeddings.weight[0].normal_()
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def fine_tuned_run(tmp_path_factory, wide_bert):
    import graftwork

    root = tmp_path_factory.mktemp("hf-run")
    data = write_csv(root / "texts.csv", make_text_rows(per_class=10))
    graftwork.fit(data, out=root / "run", backbone=f"hf:{wide_bert}", strategy="full", stage_epochs=2, cache=False)
    return root / "run"


def test_pipeline_gives_the_runs_labels_and_scores(fine_tuned_run, tmp_path, capsys):
    from transformers import pipeline

    out = tmp_path / "hf"
    assert main(["export", str(fine_tuned_run), "--format", "hf", "--out", str(out)]) == 0
    manifest = json.loads((out / "graftwork-hf.json").read_text())
    assert manifest["parity"]["top1_agreement"] == 1.0 and manifest["parity"]["max_abs_diff"] < 1e-4
    model = TransferModel.load(fine_tuned_run)
    want = model.predict_proba(TEXTS)
    classify = pipeline("text-classification", model=str(out), top_k=None, device="cpu")
    for text, probs in zip(TEXTS, want, strict=True):
        got = {r["label"]: r["score"] for r in classify([text])[0]}
        assert max(got, key=got.get) == model.classes[int(np.argmax(probs))]
        np.testing.assert_allclose([got[c] for c in model.classes], probs, atol=1e-4)


def test_force_replaces_only_an_hf_export_and_other_encoders_get_a_clear_error(fine_tuned_run, tmp_path, capsys,
                                                                                tiny_bert):
    import graftwork

    out = tmp_path / "hf"
    assert main(["export", str(fine_tuned_run), "--format", "hf", "--out", str(out)]) == 0
    assert main(["export", str(fine_tuned_run), "--format", "hf", "--out", str(out), "--force"]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["export", str(fine_tuned_run), "--format", "hf", "--out", str(mine), "--force"]) == 2
    assert (mine / "notes.txt").read_text() == "keep"
    narrow = graftwork.fit(write_csv(tmp_path / "t.csv", make_text_rows(per_class=6)), out=tmp_path / "narrow",
                           backbone=f"hf:{tiny_bert}", strategy="frozen", cache=False)
    capsys.readouterr()
    assert narrow and main(["export", str(tmp_path / "narrow"), "--format", "hf", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--format onnx" in err and "Traceback" not in err and not (tmp_path / "x").exists()


def test_a_head_on_unit_length_embeddings_is_refused_with_a_clear_error(wide_bert):
    from transformers import BertModel

    from graftwork.errors import ConfigError
    from graftwork.export.hf import xlm_classifier
    from graftwork.strategies import LinearHead

    for head in (LinearHead(32, 2, unit_length=True), LinearHead(32, 2, unit_branch=True)):
        with pytest.raises(ConfigError, match="unit length") as e:
            xlm_classifier(BertModel.from_pretrained(wide_bert), head, ["a", "b"])
        assert "--format onnx" in e.value.hint
