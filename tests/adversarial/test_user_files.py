"""Files the user owns: every command that writes refuses to touch anything but graftwork's own output.

Each test tries to make graftwork destroy something (the data, home, the working folder, a folder of the user's,
a run another process is writing, an interrupted run's checkpoint) and asserts the exact outcome: exit status 2
with a clear message, and the user's files byte-identical afterwards. Replacing a run is checked by killing a
real process between the two renames.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import graftwork
from graftwork.cli.main import main
from graftwork.config import FitConfig
from graftwork.demo.run import DemoRow, build_demo
from graftwork.errors import RunFolderError
from graftwork.pipeline import partial_dir, run_fit
from graftwork.run import recover_folder
from graftwork.train import Callback

from ..conftest import make_image_folder, make_text_rows, write_csv
from ..ner.conftest import make_sentences, write_conll

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--strategy", "frozen"]
TINY_API = {"backbone": "timm:test_efficientnet", "pretrained": False}
ROOT = Path(__file__).resolve().parents[2]


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too) with a digest of its bytes."""
    out = {".": "dir"}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def cli(capsys, *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def refused(capsys, *argv: object, says: str) -> None:
    code, err = cli(capsys, *argv)
    assert code == 2, err
    assert says in err and "Traceback" not in err and "internal error" not in err, err


@pytest.fixture
def imgs(tmp_path) -> Path:
    return make_image_folder(tmp_path / "imgs", per_class=6, classes=("red", "green", "blue"))


@pytest.fixture
def run_folder(tmp_path, imgs, built_once) -> Path:
    """A frozen run fitted on ``imgs`` (the same images in every test), in the test's own folder."""
    def build(folder):
        images = make_image_folder(folder / "imgs", per_class=6, classes=("red", "green", "blue"))
        graftwork.fit(images, out=folder / "run", strategy="frozen", **TINY_API)
        shutil.rmtree(images)

    return built_once("user-files-run", build, tmp_path) / "run"


# -- the data --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where, says", [("imgs/blue", "is inside the data"), ("imgs", "is the data"),
                                         ("imgs/blue/new_run", "is inside the data"), (".", "would contain")])
def test_fit_never_writes_into_or_over_the_image_data(tmp_path, imgs, capsys, where, says):
    before = tree(tmp_path)
    refused(capsys, "fit", imgs, "--out", tmp_path / where, "--force", *TINY, says=says)
    assert tree(tmp_path) == before


def test_a_link_does_not_smuggle_the_data_in(tmp_path, imgs, capsys):
    (tmp_path / "link").symlink_to(imgs / "red")
    before = tree(imgs)
    refused(capsys, "fit", imgs, "--out", tmp_path / "link" / "run", "--force", *TINY, says="inside the data")
    refused(capsys, "fit", imgs, "--out", tmp_path / "link", "--force", *TINY, says="is inside the data")
    (imgs / "green_link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    refused(capsys, "fit", imgs, "--out", tmp_path / "elsewhere" / "run", *TINY, says="inside the data")
    assert tree(imgs) == before | {"green_link": "dir"}


def test_text_fit_never_replaces_the_csv_or_its_folder(tmp_path, capsys, tiny_bert):
    (tmp_path / "texts").mkdir()
    data = write_csv(tmp_path / "texts" / "t.csv", make_text_rows(per_class=6))
    before = tree(tmp_path / "texts")
    common = ["--backbone", f"hf:{tiny_bert}", "--strategy", "frozen", "--force"]
    refused(capsys, "fit", data, "--out", data, *common, says="is the data")
    refused(capsys, "fit", data, "--out", tmp_path / "texts", *common, says="would contain the data")
    assert tree(tmp_path / "texts") == before


def test_ner_fit_never_writes_into_or_over_the_corpus(tmp_path, capsys, tiny_bert):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_conll(corpus / "train.conll", make_sentences(20, seed=0))
    before = tree(corpus)
    common = ["--task", "ner", "--backbone", str(tiny_bert), "--strategy", "frozen", "--force"]
    refused(capsys, "fit", corpus, "--out", corpus, *common, says="is the data")
    refused(capsys, "fit", corpus, "--out", corpus / "run", *common, says="is inside the data")
    refused(capsys, "fit", corpus / "train.conll", "--out", corpus, *common, says="would contain the data")
    assert tree(corpus) == before


def test_export_never_writes_into_or_over_the_source_run(run_folder, capsys):
    before = tree(run_folder)
    refused(capsys, "export", run_folder, "--merge", "--out", run_folder, "--force", says="is the data")
    refused(capsys, "export", run_folder, "--merge", "--out", run_folder / "merged", "--force",
            says="is inside the data")
    assert tree(run_folder) == before


# -- places that are never an output ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["fit", "export", "demo"])
def test_home_cwd_and_root_are_refused_with_force(tmp_path, imgs, run_folder, monkeypatch, capsys, command):
    home, work = tmp_path / "home", tmp_path / "home" / "work" / "project"
    work.mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (work / "code.py").write_text("print(1)")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    args = {"fit": ["fit", imgs, *TINY], "export": ["export", run_folder, "--merge"], "demo": ["demo", "--quick"]}
    before = tree(home)
    for out, says in [(home, "your home folder"), ("~", "your home folder"), (".", "the current working folder"),
                      (work.parent, "contains the current working folder"), ("/", "root of the filesystem")]:
        refused(capsys, *args[command], "--out", out, "--force", says=says)
    assert tree(home) == before


def test_a_folder_graftwork_did_not_write_is_never_replaced(tmp_path, imgs, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    (mine / "config.json").write_text('{"format": "not graftwork"}')
    before = tree(mine)
    refused(capsys, "fit", imgs, "--out", mine, "--force", *TINY, says="is not a graftwork run folder")
    refused(capsys, "fit", imgs, "--out", mine, *TINY, says="--force does not apply")
    assert tree(mine) == before
    (tmp_path / "file").write_text("x")
    refused(capsys, "fit", imgs, "--out", tmp_path / "file", "--force", *TINY, says="is a file")
    assert (tmp_path / "file").read_text() == "x"


def test_force_replaces_a_run_folder_and_an_empty_folder(tmp_path, imgs, capsys):
    (tmp_path / "empty").mkdir()
    assert cli(capsys, "fit", imgs, "--out", tmp_path / "empty", *TINY)[0] == 0
    refused(capsys, "fit", imgs, "--out", tmp_path / "empty", *TINY, says="--force")  # now a run: needs --force
    assert cli(capsys, "fit", imgs, "--out", tmp_path / "empty", "--force", *TINY)[0] == 0
    assert json.loads((tmp_path / "empty" / "config.json").read_text())["format"] == "graftwork-run/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "imgs"], "no lock, staging or old folders left"


# -- report --out ----------------------------------------------------------------------------------------------
def test_report_out_never_overwrites_a_users_file(run_folder, tmp_path, capsys):
    mine = tmp_path / "index.html"
    mine.write_text("<!DOCTYPE html><title>my page</title>")
    refused(capsys, "report", run_folder, "--out", mine, says="not a report graftwork wrote")
    refused(capsys, "report", run_folder, "--out", mine, "--force", says="not a report graftwork wrote")
    assert mine.read_text() == "<!DOCTYPE html><title>my page</title>"
    refused(capsys, "report", run_folder, "--out", tmp_path / "imgs", "--force", says="not a file")
    new = tmp_path / "r.html"
    assert cli(capsys, "report", run_folder, "--out", new)[0] == 0
    first = new.read_bytes()
    refused(capsys, "report", run_folder, "--out", new, says="--force")  # a report: only with --force
    assert new.read_bytes() == first
    assert cli(capsys, "report", run_folder, "--out", new, "--force")[0] == 0
    assert cli(capsys, "report", run_folder)[0] == 0  # the run's own report.html is always rewritten


# -- demo ------------------------------------------------------------------------------------------------------
def _fake_demo(value: str, fail: bool = False):
    def build(folder: Path) -> list[DemoRow]:
        (folder / "data").mkdir()
        (folder / "run").mkdir()
        (folder / "run" / "config.json").write_text(json.dumps({"data": str(folder / "data"), "v": value}))
        if fail:
            raise RunFolderError("no demo data installed.")
        return [DemoRow("image", "fake", "none", 1.0, 0.5, 0.3, 0.0)]
    return build


def test_demo_replaces_its_old_output_only_when_the_new_one_is_complete(tmp_path):
    out = tmp_path / "demo"
    build_demo(out, False, _fake_demo("old"))
    assert json.loads((out / "graftwork-demo.json").read_text())["format"] == "graftwork-demo/1"
    assert json.loads((out / "run" / "config.json").read_text())["data"] == str(out / "data")  # not the staging
    before = tree(out)
    with pytest.raises(RunFolderError, match="--force"):
        build_demo(out, False, _fake_demo("new"))
    with pytest.raises(RunFolderError, match="no demo data"):
        build_demo(out, True, _fake_demo("new", fail=True))
    assert tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    build_demo(out, True, _fake_demo("new"))
    assert json.loads((out / "run" / "config.json").read_text())["v"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_demo_messages_name_the_folder_the_runs_end_up_in(tmp_path):
    import io

    from graftwork.console import Console
    from graftwork.demo.run import _AtFinal

    stream = io.StringIO()
    staging, final = tmp_path / ".demo.writing-1-x", (tmp_path / "demo").absolute()
    console = _AtFinal(Console(stream=stream), staging, final)
    console.info(f"saved to {staging}/image-pretrained  (graftwork predict {staging}/image-pretrained INPUT...)")
    assert stream.getvalue().count(f"{final}/image-pretrained") == 2 and "writing" not in stream.getvalue()


def test_demo_force_never_replaces_a_folder_it_did_not_write(tmp_path, run_folder, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    with pytest.raises(RunFolderError, match="not a graftwork demo folder"):
        build_demo(mine, True, _fake_demo("new"))
    before = tree(run_folder)
    refused(capsys, "demo", "--out", run_folder, "--force", says="not a graftwork demo folder")
    assert (mine / "keep.txt").read_text() == "keep" and tree(run_folder) == before


# -- crashes, concurrent writers, interrupted fits -------------------------------------------------------------
KILL = textwrap.dedent("""
    import os, shutil, signal, sys
    from pathlib import Path
    import graftwork

    run, point = Path(sys.argv[1]), sys.argv[2]
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def replace(src, dst):
        name = Path(src).name
        if (point == "before" and Path(src) == run) or (point == "between" and ".writing-" in name
                                                        and Path(dst) == run):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    def rmtree(path, *args, **kwargs):
        if point == "after" and Path(path).name.startswith(".run.old-"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_rmtree(path, *args, **kwargs)

    os.replace, shutil.rmtree = replace, rmtree
    model = graftwork.load(run)
    model.metrics["written_by"] = "the killed process"
    model.save(run, force=True)
""")


def _child(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("point", ["before", "between", "after"])
def test_a_kill_during_replace_leaves_the_old_run_or_the_new_one(run_folder, imgs, point):
    old = tree(run_folder)
    proc = _child("-c", KILL, str(run_folder), point)
    assert proc.returncode == -9, proc.stderr  # really killed, at that point
    leftovers = sorted(p.name for p in run_folder.parent.iterdir() if p.name.startswith(".run."))
    if point == "between":
        assert not run_folder.exists() and any(n.startswith(".run.old-") for n in leftovers)
    recover_folder(run_folder)  # what the next write of the folder does first (the killed writer is gone)
    metrics = json.loads((run_folder / "metrics.json").read_text())
    if point == "after":
        assert metrics["written_by"] == "the killed process"  # the new run was in place
    else:
        assert tree(run_folder) == old  # the old run, byte for byte
    assert graftwork.load(run_folder).predict([str(next(imgs.rglob("*.png")))])
    assert not [p for p in run_folder.parent.iterdir() if p.name.startswith(".run.")], leftovers


def test_the_next_fit_repairs_a_replace_killed_between_the_renames(run_folder, imgs, capsys):
    old = tree(run_folder)
    assert _child("-c", KILL, str(run_folder), "between").returncode == -9
    refused(capsys, "fit", imgs, "--out", run_folder, *TINY, says="--force")  # the old run is back, protected
    assert tree(run_folder) == old
    assert cli(capsys, "fit", imgs, "--out", run_folder, "--force", *TINY)[0] == 0
    assert not [p for p in run_folder.parent.iterdir() if p.name.startswith(".run.")]


def test_loading_a_run_killed_between_the_renames_finds_the_old_one(run_folder, imgs):
    old = tree(run_folder)
    assert _child("-c", KILL, str(run_folder), "between").returncode == -9
    assert not run_folder.exists()
    assert graftwork.load(run_folder).predict([str(next(imgs.rglob("*.png")))])  # predict, evaluate, export...
    assert tree(run_folder) == old


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from graftwork.config import FitConfig
    from graftwork.pipeline import run_fit
    from graftwork.train import Callback

    data, out, flag = sys.argv[1:4]

    class Wait(Callback):  # the fit holds --out's lock here until the test says go
        def on_epoch_end(self, trainer, state, row):
            Path(flag + ".holding").touch()
            while not Path(flag + ".go").exists():
                time.sleep(0.05)

    cfg = FitConfig(backbone="timm:test_efficientnet", pretrained=False, strategy="gradual", unfreeze=1, stage_epochs=1,
                    batch_size=4)
    run_fit(data, cfg, out=out, callbacks=[Wait()])
""")


def test_two_fits_into_one_out_one_wins_and_nothing_is_lost(tmp_path, imgs, capsys):
    out, flag = tmp_path / "run", tmp_path / "flag"
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(imgs), str(out), str(flag)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3000):
            if Path(str(flag) + ".holding").exists() or first.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        assert Path(str(flag) + ".holding").exists(), first.communicate()[1]
        for force in ([], ["--force"]):
            refused(capsys, "fit", imgs, "--out", out, *force, *TINY, says="is writing this output right now")
        assert (partial_dir(out) / "fit.json").is_file(), "the running fit's state was not touched"
    finally:
        Path(str(flag) + ".go").touch()
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads((out / "config.json").read_text())["plan"]["strategy"] == "gradual"  # the first one's run
    refused(capsys, "fit", imgs, "--out", out, *TINY, says="--force")  # finished: a plain run is refused as usual
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")], "lock and state are gone"


def test_a_plain_rerun_never_discards_an_interrupted_fits_checkpoint(tmp_path, imgs, capsys):
    out = tmp_path / "run"

    class Crash(Callback):
        def on_epoch_end(self, trainer, state, row):
            raise KeyboardInterrupt

    cfg = FitConfig(strategy="gradual", stage_epochs=2, batch_size=4, **TINY_API)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        run_fit(imgs, cfg, out=out, callbacks=[Crash()])
    state = tree(partial_dir(out))
    assert "checkpoint.pt" in state
    for strategy in ("gradual", "frozen"):
        code, err = cli(capsys, "fit", imgs, "--out", out, *TINY[:3], "--strategy", strategy)
        assert code == 2 and f"--resume {out}" in err and "--force" in err and "nothing was discarded" in err
        assert tree(partial_dir(out)) == state
    assert cli(capsys, "fit", imgs, "--out", out, "--force", *TINY)[0] == 0  # --force starts over
    assert not partial_dir(out).exists() and (out / "config.json").is_file()
