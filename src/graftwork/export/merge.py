"""``graftwork export RUN --merge --out NEW_RUN``: a run folder with its LoRA adapters merged into the backbone.

The run is loaded by its own task's model class (a classification run as
:class:`~graftwork.model.TransferModel`, an NER run as :class:`~graftwork.ner.NerModel`), so that the new folder
is written with the run's own config: loading every run as a classifier read an NER run's config as a
classification one and refused it.
"""

from __future__ import annotations

from pathlib import Path


def merge_run(run: str | Path, out: str | Path, *, force: bool = False) -> tuple[Path, int]:
    """Write ``run`` with its LoRA adapters merged to ``out``; returns the folder written and the layers merged.

    ``out`` follows the output rules (:func:`graftwork.run.check_out_dir`): never the source run, inside it or
    around it, and only a run folder is replaced (with ``force``)."""
    from ..api import load
    from ..run import check_out_dir

    check_out_dir(out, force, data=run)
    model = load(run, device="cpu")
    merged = model.merge_adapters()
    return Path(model.save(out, force=force)), merged
