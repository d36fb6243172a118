"""The real server on 127.0.0.1, called over HTTP: answers equal to predict, batching, and every error path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from graftwork.export.onnx import export_onnx
from graftwork.model import TransferModel
from graftwork.runtime import load_export

from ..conftest import make_image_folder
from .conftest import call, post_files, post_json, running


@pytest.fixture(scope="module")
def image_export(image_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "onnx"
    export_onnx(image_run, out, verify=False)
    return out


@pytest.fixture
def images(tmp_path):
    return sorted(make_image_folder(tmp_path / "imgs", per_class=3, seed=4).rglob("*.png"))


def _snapshot(folder):
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


def test_onnx_export_answers_like_predict_and_batches_concurrent_requests(image_export, images):
    expected = load_export(image_export).predict([str(p) for p in images])
    for e, p in zip(expected, images, strict=True):
        e["input"] = p.name  # the server names each answer by the uploaded file's name
    before = _snapshot(image_export)
    with running(image_export, max_wait_ms=100, max_batch=64) as url:
        assert call(url + "/health") == (200, {"status": "ok", "task": "classification", "modality": "image"})
        status, info = call(url + "/info")
        assert status == 200 and info["labels"] == ["blue", "red"] and info["kind"] == "onnx"
        status, got = post_files(url + "/predict", images)
        assert status == 200 and [g["label"] for g in got] == [e["label"] for e in expected]
        np.testing.assert_allclose([g["top"][0]["probability"] for g in got],
                                   [e["top"][0]["probability"] for e in expected], atol=1e-6)
        batches = call(url + "/info")[1]["batches_run"]
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda i: post_files(url + "/predict?top_k=1", [images[i % len(images)]]),
                                    range(24)))
        assert all(s == 200 for s, _ in answers)
        assert [a[0]["label"] for _, a in answers] == [expected[i % len(images)]["label"] for i in range(24)]
        assert all(len(a[0]["top"]) == 1 for _, a in answers)
        assert call(url + "/info")[1]["batches_run"] - batches < 24  # requests shared batches
    assert _snapshot(image_export) == before  # nothing written to the served folder


def test_a_bad_image_is_a_422_for_its_request_only(image_export, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG but not really")
    with running(image_export, max_wait_ms=50) as url:
        with ThreadPoolExecutor(2) as pool:
            bad_answer = pool.submit(post_files, url + "/predict", [images[0], bad])
            good_answer = pool.submit(post_files, url + "/predict", [images[1]])
        status, body = bad_answer.result()
        assert status == 422 and "could not be read" in body["error"]
        assert any("broken.png" in p for p in body["problems"]) and body["hint"]
        assert good_answer.result()[0] == 200
        status, body = post_json(url + "/predict", {"inputs": ["a text"]})
        assert status == 415 and "multipart" in body["hint"]


def test_too_large_upload_is_413(image_export, images):
    with running(image_export, max_upload_mb=0.0005) as url:  # 500 bytes
        status, body = post_files(url + "/predict", images[:3])
        assert status == 413 and "--max-upload-mb" in body["hint"]
        assert call(url + "/health")[0] == 200  # the server is still there


def test_text_run_with_pytorch_and_malformed_json(text_run):
    texts = ["apple pear melon", "bus car truck boat"]
    expected = TransferModel.load(text_run, device="cpu").predict(texts)
    before = _snapshot(text_run)
    with running(text_run, device="cpu") as url:
        status, got = post_json(url + "/predict", {"inputs": texts})
        assert status == 200 and [g["label"] for g in got] == [e["label"] for e in expected]
        assert got[0]["top"][0]["probability"] == pytest.approx(expected[0]["top"][0]["probability"], abs=1e-5)
        assert post_json(url + "/predict", {"inputs": "apple pear"})[1][0]["input"] == "apple pear"
        status, body = call(url + "/predict", b'{"inputs": ["unclosed', "application/json")
        assert status == 400 and "not valid JSON" in body["error"] and "inputs" in body["hint"]
        status, body = post_json(url + "/predict", {"inputs": [1, 2]})
        assert status == 422 and "'inputs' must be" in body["error"]
        assert post_json(url + "/predict", {"inputs": []})[0] == 422
        assert call(url + "/info")[1]["kind"] == "run"
    assert _snapshot(text_run) == before


def test_ner_run_is_served(ner_run):
    from graftwork.ner import NerModel

    texts = ["I like apples and a red car."]
    with running(ner_run, device="cpu") as url:
        status, got = post_json(url + "/predict", {"inputs": texts})
    assert status == 200 and got == NerModel.load(ner_run, device="cpu").predict(texts)


def test_several_worker_processes_answer_like_one(image_export, images):
    """``graftwork serve EXPORT --workers 2`` as a user starts it: a real process tree (uvicorn's supervisor and
    two workers, each loading the export), concurrent requests answered as ``predict`` answers, and a clean
    shutdown on Ctrl-C."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import free_port

    expected = [e["label"] for e in load_export(image_export).predict([str(p) for p in images])]
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen([sys.executable, "-m", "graftwork", "serve", str(image_export), "--port", str(port),
                               "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if call(url + "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        assert server.poll() is None, server.communicate()[1][-3000:]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: post_files(url + "/predict", [images[i % len(images)]]), range(16)))
        assert all(s == 200 for s, _ in answers)
        assert [a[0]["label"] for _, a in answers] == [expected[i % len(images)] for i in range(16)]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert server.returncode == 0, err[-3000:]
    assert "Traceback" not in err
