"""A small spoken-keyword dataset synthesised with espeak-ng, for audio demos and benchmarks without downloads.

Each clip is one word (yes, no, up, down, left, right, stop, go: the core of Speech Commands, Warden 2018)
spoken by an espeak-ng voice with a random accent, voice variant, speed and pitch, placed at a random offset in
a 1 s clip (longer words are cut) with white noise at 5-30 dB SNR, saved as 16 kHz mono WAV. The test split uses
voice variants that the train split never uses, so accuracy measures generalisation to unseen voices.

Synthetic speech is far more regular than real recordings: treat accuracies as a comparison between methods,
not as what a keyword spotter reaches on real speech. espeak-ng is GPL; the audio it writes is free to use.

    python -m graftwork.demo.keywords OUT [--train-per-class 50] [--test-per-class 25] [--words yes,no,...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError

WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "klatt2", "croak", "Alex", "Annie",
                  "Andy", "Gene", "Lee", "Mario", "Michael", "Tweaky", "adam", "john")
TEST_VARIANTS = ("m5", "m6", "f4", "f5", "klatt3", "belinda", "edward", "grandma", "linda", "max")
RATE = 16000
CLIP_S = 1.0


def espeak() -> str:
    found = shutil.which("espeak-ng")
    if not found:
        raise DataError("espeak-ng is not installed; it synthesises the keyword clips.",
                        hint="install it: sudo apt-get install -y espeak-ng (Debian/Ubuntu)")
    return found


def _speak(word: str, voice: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    import soundfile as sf

    from ..data.audio import Waveform, resample

    wav = tmp / "w.wav"
    subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), word],
                   check=True, capture_output=True)
    data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return resample(Waveform(data.mean(axis=1), int(rate)), RATE).samples


def _clip(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The word at a random offset in a 1 s clip, with white noise at a random SNR."""
    speech = speech[np.flatnonzero(np.abs(speech) > 0.01).min():] if np.abs(speech).max() > 0.01 else speech
    n = int(CLIP_S * RATE)
    speech = speech[:n]
    out = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, n - len(speech) + 1))
    out[start:start + len(speech)] = speech
    power = float(np.mean(speech**2)) or 1e-6
    snr_db = float(rng.uniform(5, 30))
    out += rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), n).astype(np.float32)
    return (0.9 * out / max(1e-6, float(np.abs(out).max()))).astype(np.float32)


def make_keywords(out: str | Path, *, train_per_class: int = 50, test_per_class: int = 25,
                  words: tuple[str, ...] = WORDS, seed: int = 0) -> Path:
    """Write ``out/train/<word>/*.wav`` and ``out/test/<word>/*.wav`` (test voices unseen in train)."""
    import soundfile as sf

    root = Path(out)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        for split, n, variants in (("train", train_per_class, TRAIN_VARIANTS), ("test", test_per_class,
                                                                                 TEST_VARIANTS)):
            for word in words:
                folder = root / split / word
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    voice = f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{variants[int(rng.integers(len(variants)))]}"
                    speed, pitch = int(rng.integers(110, 230)), int(rng.integers(15, 85))
                    speech = _speak(word, voice, speed, pitch, Path(tmp))
                    sf.write(str(folder / f"{word}_{i:03d}.wav"), _clip(speech, rng), RATE, subtype="PCM_16")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write train/ and test/ into")
    parser.add_argument("--train-per-class", type=int, default=50)
    parser.add_argument("--test-per-class", type=int, default=25)
    parser.add_argument("--words", default=",".join(WORDS), help="comma-separated words (the classes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_keywords(args.out, train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                  words=tuple(w.strip() for w in args.words.split(",") if w.strip()), seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
