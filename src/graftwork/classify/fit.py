"""``fit`` for classification: from a data path to a trained, saved model, as explicit steps over one state.

:func:`fit_steps` reads top to bottom: prepare the data (:mod:`.prepare`), decide and print the plan
(:mod:`.planning`), compute frozen features and fit the linear probe (:mod:`.probe`), fine-tune in stages
(:mod:`.tune`, on :class:`graftwork.train.StagedTrainer`), evaluate and check the kept model (:mod:`.evaluate`),
save the run folder (:mod:`.save`). Each step takes the :class:`.state.FitState` and returns it.

While a run is in progress its resumable state lives beside the output folder, in ``.<name>.partial/``
(:mod:`.resume`), so an existing run is only replaced (with ``--force``) once the new one is complete, and
``--resume`` continues an interrupted one. A plain re-run of an interrupted fit is refused rather than discarding
its checkpoint. The whole fit holds the output's lock (:func:`graftwork.run.out_lock`): a second fit into the
same ``--out`` is refused.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..config import FitConfig
from ..console import SILENT, Console
from ..distributed import processes
from ..errors import ConfigError
from ..model import TransferModel
from ..run import check_out_dir, out_lock, recover_folder
from ..run.provenance import data_path, partial_dir
from ..tracking import fit_session
from ..train import Callback
from .evaluate import check, evaluate
from .planning import plan
from .prepare import prepare_data
from .probe import probe
from .resume import check_out, saved_fit
from .save import save
from .state import FitState
from .tune import tune


def run_fit(data: str | Path, cfg: FitConfig, *, out: str | Path | None = None, force: bool = False,
            console: Console = SILENT, resume: bool = False,
            callbacks: list[Callback] | None = None) -> TransferModel:
    """Train a model on ``data`` with settings ``cfg``; save it to ``out`` when given. ``callbacks`` are called
    by the fine-tuning trainer (:class:`graftwork.train.Callback`).

    ``out`` is checked before any work, and again (:func:`.resume.check_out`) once its lock is held, for the
    whole fit.
    """
    data = data_path(data)  # resumable whatever the working folder and spelling
    if cfg.task != "classify":  # every task's fit is found by graftwork.tasks (graftwork.fit, the CLI)
        raise ConfigError(f"run_fit trains classifiers; task={cfg.task!r} is trained by its own task.",
                          hint="use graftwork.fit(...) or graftwork.tasks.get_task(cfg.task).fit(...).")
    if out is None:
        return _fit(data, cfg, out=None, force=force, console=console, resume=resume, callbacks=callbacks)
    procs = processes()
    if not procs.is_main:  # launched on several: rank 0 alone checks, locks and writes --out; the others wait
        procs.barrier()    # for its checks, then train beside it without writing anything
        return _fit(data, cfg, out=None, force=force, console=console, resume=resume, callbacks=callbacks)
    check_out_dir(out, force, data=data)  # before the lock: a refused --out (inside the data) gets no lock file
    with out_lock(out):  # a fit already writing --out: refused here, before its state is looked at
        recover_folder(out, locked=True)
        check_out(out, data, force, resume)
        procs.barrier()
        return _fit(data, cfg, out=out, force=force, console=console, resume=resume, callbacks=callbacks)


def resume_fit(out: str | Path, *, console: Console = SILENT,
               callbacks: list[Callback] | None = None) -> TransferModel:
    """Continue an interrupted ``fit --out OUT`` from its last checkpoint, with its original settings."""
    saved, cfg = saved_fit(out)
    if not saved.get("force"):
        check_out_dir(out, force=False)  # the folder may have been filled since: never overwrite without --force
    console.info(f"resuming the fit of {saved['data']} into {out}")
    return run_fit(saved["data"], cfg, out=out, force=bool(saved.get("force")), console=console, resume=True,
                   callbacks=callbacks)


def _fit(data: str | Path, cfg: FitConfig, *, out: str | Path | None, force: bool, console: Console, resume: bool,
         callbacks: list[Callback] | None) -> TransferModel:
    """:func:`fit_steps` with ``--log-to``'s trackers open around it (settings, epochs, findings, run folder)."""
    with fit_session(cfg, out, console) as tracking:
        state = FitState(data=data, cfg=cfg, out=out, force=force, resume=resume, console=console,
                         callbacks=[*(callbacks or []), *tracking.callbacks], started=time.perf_counter(),
                         partial=partial_dir(out) if out is not None else None)
        model = fit_steps(state).model
        assert model is not None
        tracking.finish(model.metrics, model.config, out)
    return model


def fit_steps(state: FitState) -> FitState:
    """The steps of a fit, once ``--out`` has been checked and locked."""
    state = prepare_data(state)
    state = plan(state)
    state = probe(state)
    state = tune(state)
    state = evaluate(state)
    state = check(state, run_fit)
    return save(state)
