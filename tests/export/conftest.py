"""Trained runs of every kind on tiny random backbones, fitted once per session, and a helper that runs Python
in a subprocess where importing torch (or transformers, timm, torchvision) fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import make_image_folder, make_text_rows, make_tone_folder, write_csv

FAST_NER = {"lr": 1e-2, "stage_epochs": 1, "batch_size": 16}

BLOCK_TORCH = '''
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "timm", "torchvision", "peft", "sklearn"):
            raise ImportError(f"{name} is blocked: the light install has no {name}")
        return None
sys.meta_path.insert(0, _Blocked())
'''


def run_without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which torch and friends cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export-runs")


def _fit(data: Path, out: Path, **settings) -> Path:
    import graftwork

    graftwork.fit(data, out=out, cache=False, **settings)
    return out


@pytest.fixture(scope="session")
def image_run(runs_root) -> Path:
    data = make_image_folder(runs_root / "images", per_class=6)
    return _fit(data, runs_root / "image-run", backbone="timm:test_efficientnet", pretrained=False)


@pytest.fixture(scope="session")
def text_run(runs_root, tiny_bert) -> Path:
    data = write_csv(runs_root / "texts.csv", make_text_rows(per_class=10))
    return _fit(data, runs_root / "text-run", backbone=f"hf:{tiny_bert}")


@pytest.fixture(scope="session")
def audio_run(runs_root, tiny_whisper) -> Path:
    data = make_tone_folder(runs_root / "tones", per_class=4)
    return _fit(data, runs_root / "audio-run", backbone=f"hf:{tiny_whisper}", audio_window=0.5)


@pytest.fixture(scope="session")
def ner_run(runs_root, tiny_bert) -> Path:
    from graftwork import FitConfig
    from graftwork.ner import run_fit_ner

    from ..ner.conftest import make_sentences, write_conll

    data = runs_root / "ner-data"
    data.mkdir()
    write_conll(data / "train.conll", make_sentences(40, seed=0))
    write_conll(data / "test.conll", make_sentences(10, seed=2))
    cfg = FitConfig(task="ner", backbone=str(tiny_bert), strategy="frozen", cache=False, **FAST_NER)  # type: ignore[arg-type]
    run_fit_ner(data, cfg, out=runs_root / "ner-run")
    return runs_root / "ner-run"


def manifest(folder: Path) -> dict:
    return json.loads((folder / "graftwork-onnx.json").read_text())
