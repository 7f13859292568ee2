"""``elnet serve`` (Label Studio ML backend) over HTTP without Label Studio: protocol, storing
reviews, background fine-tuning. The same backend called by a real Label Studio is in
test_labelstudio_server.py."""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import micro_model_file
from helpers_serve import call, scored_model
from pydantic import ValidationError
from review_helpers import make_run

from sam2elnet.errors import UserError
from sam2elnet.export.brush import brush_decode
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.pipeline.serve import BackendConfig, MLBackend, make_server


def test_protocol_predict_store_and_fine_tune(serve_backend):
    be, url, root = serve_backend
    code, h = call(f"{url}/health")
    assert code == 200 and h["status"] == "UP" and h["model_version"].startswith("model.pt@")
    code, s = call(
        f"{url}/setup", {"project": "1.1", "schema": "<View/>", "hostname": "http://x:1"}
    )
    assert code == 200 and s == {"model_version": h["model_version"]}
    tasks = [
        {
            "id": i + 1,
            "data": {
                "image": "/data/local-files/?d=none.png",
                "source": str(root / "images" / f"{n}.tif"),
                "name": n,
            },
        }
        for i, n in enumerate("ab")
    ]
    code, p = call(f"{url}/predict", {"tasks": tasks, "project": "1.1", "label_config": ""})
    assert code == 200 and len(p["results"]) == 2
    for t, r in zip(tasks, p["results"], strict=True):
        want, score = be.predict_image(Path(t["data"]["source"]))
        assert 0 < want.sum() < want.size  # a real region, not an empty or a full mask
        got = np.zeros((40, 48), bool)
        for region in r["result"]:
            got |= brush_decode(region["value"]["rle"], 40, 48)
        assert np.array_equal(got, want) and r["model_version"] == h["model_version"]
        assert 0 < r["score"] < 1 and r["score"] == pytest.approx(score)  # the predicted IoU
    # a submitted review is stored as a training pair and starts a fine-tuning run
    edit = np.zeros((40, 48), bool)
    edit[5:25, 10:30] = True
    ann = {"id": 7, "result": mask_result(edit, "foreground"), "was_cancelled": False}
    code, w = call(
        f"{url}/webhook", {"action": "ANNOTATION_CREATED", "task": tasks[0], "annotation": ann}
    )
    assert code == 200 and w["stored"] == 1 and w["job"] == "ft-1"
    import rasterio

    # a GeoTIFF image's reviewed mask keeps its georeference (as elnet import writes it)
    with rasterio.open(root / "serve" / "data" / "masks" / "a.tif") as m:
        stored, crs = m.read(1), m.crs
    assert np.array_equal(stored > 0, edit) and crs.to_epsg() == 32633
    assert (root / "serve" / "data" / "images" / "a.tif").is_file()
    be.training.join(timeout=240)
    code, h2 = call(f"{url}/health")
    (job,) = h2["jobs"]
    assert job["state"] == "done", job
    assert job["image_size"] == 32  # the served model's training size (no --image-size given)
    assert h2["model_version"] != h["model_version"] and Path(job["model"]).is_file()
    from sam2elnet.model import load_model

    # fine-tuned from the served model (TrainConfig.init_model): its micro architecture, not the
    # config's default size, and trained weights that differ from the start
    tuned, _ = load_model(job["model"])
    start, _ = load_model(root / "model.pt")
    assert tuned.config.size == "micro"
    diffs = [
        float((a - b).abs().max())
        for (k, a), b in zip(tuned.state_dict().items(), start.state_dict().values(), strict=True)
        if not k.startswith("trunk.")
    ]
    assert 0 < max(diffs) < 1.0
    code, p2 = call(f"{url}/predict", {"tasks": tasks[:1]})
    assert p2["results"][0]["model_version"] == h2["model_version"]
    # other actions are acknowledged, errors are JSON
    assert call(f"{url}/webhook", {"action": "PROJECT_UPDATED"})[1]["status"] == "ignored"
    assert call(f"{url}/nope", {})[0] == 404
    req = urllib.request.Request(f"{url}/predict", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400


def test_fine_tuning_size_defaults_to_the_models_training_size(tmp_path: Path):
    """No --image-size: the size in the model's training record (``elnet train --image-size``),
    else elnet train's default 256; an explicit --image-size wins."""
    from sam2elnet.config import DEFAULT_IMAGE_SIZE, TrainConfig

    recorded = scored_model(tmp_path / "m64.pt", image_size=64)
    assert MLBackend(BackendConfig(model=recorded, workdir=tmp_path / "a")).image_size == 64
    cfg = BackendConfig(model=recorded, workdir=tmp_path / "b", image_size=48)
    assert MLBackend(cfg).image_size == 48
    bare = micro_model_file(tmp_path / "bare.pt", bands=3)  # no training record
    assert MLBackend(BackendConfig(model=bare, workdir=tmp_path / "c")).image_size == 256
    assert DEFAULT_IMAGE_SIZE == 256 == TrainConfig(data=tmp_path, out=tmp_path / "r").image_size


def test_bad_settings_and_busy_port(tmp_path: Path):
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    with pytest.raises(ValidationError, match="threshold"):
        BackendConfig(model=model, workdir=tmp_path / "w", threshold=1.5)
    cfg = BackendConfig(model=model, workdir=tmp_path / "w")
    cfg.threshold = 1.5  # changed after it was made: the backend checks again
    with pytest.raises(UserError, match="--threshold"):
        MLBackend(cfg)
    be = MLBackend(BackendConfig(model=model, workdir=tmp_path / "w"))
    srv = make_server(be, port=0)
    try:
        with pytest.raises(UserError, match="choose another --port"):
            make_server(be, port=srv.server_address[1])
    finally:
        srv.server_close()


def test_cli_serve_refuses_missing_model(tmp_path: Path, capsys):
    from sam2elnet.cli import main

    rc = main(["serve", "--model", str(tmp_path / "missing.pt"), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 2 and "--model" in err and len(err.strip().splitlines()) == 1
    time.sleep(0)


def test_serve_cli_refuses_a_bad_option_in_one_line(tmp_path: Path, capsys) -> None:
    """BackendConfig declares the ranges; ``elnet serve`` refuses a value outside them (exit 2)
    before the model is loaded or the work folder made."""
    from sam2elnet.cli import main

    work = tmp_path / "w"
    args = ["serve", "--model", str(tmp_path / "m.pt"), "--workdir", str(work)]
    assert main([*args, "--threshold", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "error: invalid value for --threshold: 1.5 (input should be less than 1; allowed: 0 < x < 1)"
    )
    assert main([*args, "--train-after", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid value for --train-after: 0") and "\n" not in err
    assert not work.exists()


def test_concurrent_predict_requests_each_log_their_own_warnings(tmp_path: Path, caplog):
    """Two /predict requests answered at once (two server threads): each request logs the first
    warning of a kind among its own tasks (here: uint16 images to a model trained on 0..255) and
    counts the rest; one request's warning never hides or swallows the other's."""
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.model.io import save_model

    make_run(tmp_path, {"a": 0.2, "b": 0.8, "c": 0.5, "d": 0.6})  # uint16 values 100..4000
    norm = NormalizationConfig(
        method="fixed", low=[0.0] * 3, high=[255.0] * 3, bands=3, data_dtype="uint8",
        data_low=[0.0] * 3, data_high=[255.0] * 3,
    )  # fmt: skip
    model = save_model(
        build_model(ModelConfig(size="micro", in_bands=3)),
        tmp_path / "model.pt",
        extra={"normalization": norm.model_dump(mode="json")},
    )
    be = MLBackend(BackendConfig(model=model, workdir=tmp_path / "serve", train=False))
    both_inside = threading.Barrier(2, timeout=60)
    waited = threading.local()
    read = be.predictor.read

    def read_when_both_requests_are_in(path):  # the first image of each request waits
        if not getattr(waited, "done", False):
            waited.done = True
            both_inside.wait()
        return read(path)

    be.predictor.read = read_when_both_requests_are_in
    srv = make_server(be, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/predict"

    def tasks(names: str) -> list[dict]:
        return [{"id": n, "data": {"source": str(tmp_path / "images" / f"{n}.tif")}} for n in names]

    answers: dict[str, tuple[int, dict]] = {}
    reqs = [
        threading.Thread(target=lambda k=k: answers.update({k: call(url, {"tasks": tasks(k)})}))
        for k in ("ab", "cd")
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="sam2elnet"):
            for t in reqs:
                t.start()
            for t in reqs:
                t.join(timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
    assert [answers[k][0] for k in ("ab", "cd")] == [200, 200]
    assert all(len(answers[k][1]["results"]) == 2 for k in answers)
    warned = [r.getMessage() for r in caplog.records if "training range" in r.getMessage()]
    # one line per request, naming that request's first image (not one line for both)
    assert sorted(Path(w.split(": ")[0]).name for w in warned) == ["a.tif", "c.tif"], warned


def test_serve_banner_goes_to_stderr(tmp_path: Path, capsys, monkeypatch) -> None:
    """The address banner is a message for the person, on stderr like every other command's
    notes: stdout stays empty."""
    from sam2elnet.pipeline import serve as serve_module

    made = []

    def once(*args, **kwargs):  # the real server, returning at once instead of serving
        srv = make_server(*args, **kwargs)
        srv.serve_forever = lambda: None
        made.append(srv)
        return srv

    monkeypatch.setattr(serve_module, "make_server", once)
    cfg = BackendConfig(model=scored_model(tmp_path / "m.pt"), workdir=tmp_path / "w", train=False)
    serve_module.serve(cfg, port=0)
    out, err = capsys.readouterr()
    port = made[0].server_address[1]
    assert out == ""
    assert f"sam2elnet ML backend at http://127.0.0.1:{port} (model m.pt@" in err
    assert "no fine-tuning" in err
