"""Does the export give the same answers? Inputs to check on, and the comparison.

The check runs both whole pipelines (PyTorch: the loaded run's ``predict_proba``; ONNX: the light runtime on the
staged export, preprocessing included) on the same inputs, preferably the run's own examples: ``--data``, else
the data path the run recorded when it still exists (its test split, else val, else all of it); otherwise
synthetic inputs built to exercise the preprocessing (images of several sizes and aspect ratios, texts of every
length up to past the truncation limit, clips shorter and longer than the window at several sample rates).
The figures are the largest absolute difference of a class probability and the top-1 agreement.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GraftworkError

MAX_EXAMPLES = 64
TOLERANCE = {"image": 1e-4, "text": 1e-4, "audio": 1e-3, "ner": 1e-4}
TIE = 1e-6  # PyTorch's top two closer than this: either is top-1


class ExportError(GraftworkError):
    """An export that cannot be written, or that does not give the source run's answers."""


@dataclass
class Parity:
    inputs: str  # "data" or "synthetic"
    source: str  # where the inputs came from, for people
    examples: int
    max_abs_diff: float
    top1_agreement: float
    tolerance: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(reference: np.ndarray, exported: np.ndarray, *, inputs: str, source: str, tolerance: float) -> Parity:
    """Largest absolute probability difference and top-1 agreement (a PyTorch tie within 1e-6 counts either
    way) of ``exported`` against ``reference`` (``[n, classes]``; for NER, one row per word)."""
    diff = float(np.abs(reference - exported).max()) if reference.size else 0.0
    best = reference.max(1, keepdims=True) if len(reference) else reference
    chosen = exported.argmax(1) if len(exported) else np.zeros(0, dtype=int)
    agree = reference[np.arange(len(reference)), chosen] >= best[:, 0] - TIE if len(reference) else np.ones(0)
    agreement = float(np.mean(agree)) if len(agree) else 1.0
    return Parity(inputs, source, int(len(reference)), diff, agreement, tolerance,
                  bool(agreement == 1.0 and diff <= tolerance))


def check(parity: Parity, run: str | Path) -> None:
    """Raise :class:`ExportError` when ``parity`` failed."""
    if parity.passed:
        return
    raise ExportError(
        f"{run}: the ONNX export does not give the run's answers on {parity.examples} {parity.inputs} inputs "
        f"({parity.source}): largest probability difference {parity.max_abs_diff:.2e} (allowed "
        f"{parity.tolerance:.0e}), top-1 agreement {parity.top1_agreement:.1%} (required 100%). Nothing was "
        "written.", hint="report this with the run's backbone name; --no-verify writes the export anyway.")


def spread(n: int, k: int = MAX_EXAMPLES) -> list[int]:
    """At most ``k`` indices spread evenly over ``range(n)`` (every class of a sorted split gets some)."""
    return sorted({int(i) for i in np.linspace(0, n - 1, num=min(n, k))}) if n else []


def data_source(data: str | Path | None, config: dict[str, Any]) -> Path | None:
    """``--data``, else the run's recorded data path when it still exists, else None."""
    if data is not None:
        return Path(data).expanduser()
    recorded = config.get("data")
    return Path(recorded) if recorded and Path(recorded).exists() else None


def classification_inputs(modality: str, config: dict[str, Any], data: str | Path | None, tmp: Path,
                          tokenizer: Any = None) -> tuple[list[str], str, str]:
    """(items, "data" or "synthetic", description)."""
    source = data_source(data, config)
    if source is not None:
        from ..data import load_data

        splits = load_data(source, skip_bad_files=True, require_classes=False)
        chosen, name = next((s, n) for s, n in ((splits.test, "test"), (splits.val, "val"), (splits.train, "all"))
                            if s is not None and len(s))
        if chosen.modality == modality:
            items = [chosen.items[i] for i in spread(len(chosen))]
            return items, "data", f"{source} ({name} split, {len(items)} of {len(chosen)})"
    if modality == "image":
        return synthetic_images(tmp), "synthetic", "random images of 9 sizes and aspect ratios"
    if modality == "audio":
        return synthetic_clips(tmp), "synthetic", "noisy tones, 0.1-2.5 s, 8-44.1 kHz, mono and stereo"
    return synthetic_texts(tokenizer), "synthetic", "random texts from the tokenizer's vocabulary, 1-400 words"


def synthetic_images(tmp: Path, n: int = 18) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(32, 32), (40, 64), (64, 40), (100, 100), (17, 90), (256, 192), (224, 224), (300, 120), (9, 9)]
    paths = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        base = rng.integers(0, 256, size=3)[None, None, :]
        noise = rng.normal(0, 40, size=(h, w, 3))
        img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
        paths.append(str(tmp / f"image_{i}.png"))
        img.save(paths[-1])
    return paths


def synthetic_clips(tmp: Path, n: int = 10) -> list[str]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    rates = (16000, 8000, 22050, 44100)
    paths = []
    for i in range(n):
        rate, seconds = rates[i % 4], float(rng.uniform(0.1, 2.5))
        t = np.arange(int(rate * seconds)) / rate
        mono = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t) + rng.normal(0, 0.02, len(t))
        data = np.stack([mono, 0.5 * mono], axis=1) if i % 2 else mono
        paths.append(str(tmp / f"clip_{i}.wav"))
        sf.write(paths[-1], data.astype(np.float32), rate)
    return paths


def vocabulary_words(tokenizer: Any) -> list[str]:
    """Whole words of the tokenizer's vocabulary (no special tokens, no continuation pieces)."""
    vocab = sorted(tokenizer.get_vocab())
    words = [w.lstrip("Ġ▁") for w in vocab if w.lstrip("Ġ▁").isalpha() and not w.startswith("##")]
    return words or ["hello", "world"]


def synthetic_texts(tokenizer: Any, n: int = 24) -> list[str]:
    rng = np.random.default_rng(0)
    words = vocabulary_words(tokenizer)
    lengths = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 400] * 2
    return [" ".join(rng.choice(words, size=lengths[i % len(lengths)])) for i in range(n)]


def scratch_dir() -> tempfile.TemporaryDirectory:
    """A temporary folder for synthetic inputs (never inside the run or the export)."""
    return tempfile.TemporaryDirectory(prefix="graftwork-parity-")
