"""The review loop against a REAL Label Studio server started here on 127.0.0.1.

Label Studio lives in its own venv (``make setup-ls``, part of ``make test``: ``.venv-ls``, or
``$SAM2ELNET_LS_VENV``); the SDK calls run there through ``ls_driver.py``. One server per module
(a free port, another when a concurrent server takes it first: tests/helpers_ports.py; a temporary
data folder copied from the migrated template; bounded waits; always shut down). The tests skip, saying why, only when Label Studio is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_ports import PortTaken, start_on_free_port
from review_helpers import make_run

from sam2elnet.cli import main
from sam2elnet.export.brush import brush_decode
from sam2elnet.export.labelstudio import mask_result

ROOT = Path(__file__).resolve().parents[1]
LS_VENV = Path(os.environ.get("SAM2ELNET_LS_VENV", ROOT / ".venv-ls"))
USER, PASSWORD, TOKEN = "elnet@example.com", "elnet-test-pw", "elnet0test0token"
START_TIMEOUT_S = 420  # first start without the template runs every migration (minutes on 2 cores)
SCORES = {"b_mid": 0.71, "a_bad": 0.12, "c_good": 0.93}

pytestmark = pytest.mark.timeout(900)


@dataclass
class Server:
    url: str
    token: str
    root: Path  # LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT
    log: Path


def _ready(url: str) -> bool:
    req = urllib.request.Request(f"{url}/api/projects", headers={"Authorization": f"Token {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status == 200
    except Exception:
        return False


IN_USE = "port is already in use"  # Django's runserver, when it cannot bind


def _start_ls(exe: Path, base: Path, port: int) -> tuple[subprocess.Popen, Path]:
    """Label Studio on 127.0.0.1:``port`` with a data folder of its own, once it answers.

    Raises:
        PortTaken: another process has the port (Label Studio then moves to the next port by
            itself, or exits): the server is stopped, :func:`start_on_free_port` tries another.
    """
    data, log = base / f"data-{port}", base / f"server-{port}.log"
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    if (LS_VENV / "template").is_dir():
        shutil.copytree(LS_VENV / "template", data)
    else:
        cmd += ["--username", USER, "--password", PASSWORD, "--user-token", TOKEN]
        cmd += ["--enable-legacy-api-token"]
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",  # its port messages reach the log as they are printed
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(base / "root"),
        "LATEST_VERSION_CHECK": "false",
        # the ML backend (and its webhook) runs on 127.0.0.1 too, which Label Studio blocks by default
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
        "ML_TIMEOUT_SETUP": "60",
        "ML_TIMEOUT_HEALTH": "30",
        "ML_CONNECTION_TIMEOUT": "10",
    }
    url, t0 = f"http://127.0.0.1:{port}", time.monotonic()
    ours = f"Starting development server at {url}/"  # Django's line before it binds the port
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:
            text = log.read_text(errors="replace")
            taken = [x for x in text.splitlines() if f"Port {port} is in use" in x or IN_USE in x]
            if taken:
                raise PortTaken(taken[0].strip("* "))
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited ({proc.returncode}):\n{text[-3000:]}")
            # only after Django said it starts on our port: the answer is from our server
            if ours in text and _ready(url):
                break
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(f"Label Studio not up after {START_TIMEOUT_S} s:\n{text[-3000:]}")
            time.sleep(0.5)
    except BaseException:
        _stop(proc)
        raise
    print(f"Label Studio up in {time.monotonic() - t0:.1f} s at {url}")
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL when it is not gone within 30 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def ls_server(tmp_path_factory):
    exe = LS_VENV / "bin" / "label-studio"
    if not exe.exists():
        pytest.skip(
            f"Label Studio is not installed in {LS_VENV} (`make setup-ls` installs it from PyPI; "
            "set SAM2ELNET_LS_VENV to use another venv)"
        )
    base = tmp_path_factory.mktemp("label-studio")
    (base / "root").mkdir()
    ports: list[int] = []

    def start(port: int) -> tuple[subprocess.Popen, Path]:
        ports.append(port)
        return _start_ls(exe, base, port)

    proc, log = start_on_free_port(start)
    try:
        yield Server(f"http://127.0.0.1:{ports[-1]}", TOKEN, base / "root", log)
    finally:
        _stop(proc)


def drive(step: str, args: dict, tmp: Path, timeout: float = 600) -> dict:
    """Run one ls_driver.py step in the Label Studio venv; return its JSON report."""
    a = tmp / f"{step}-args.json"
    a.write_text(json.dumps(args))
    r = subprocess.run(
        [
            str(LS_VENV / "bin" / "python"),
            str(Path(__file__).with_name("ls_driver.py")),
            step,
            str(a),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _label(run: Path, name: str) -> np.ndarray:
    sub = "labels" if SCORES[name] >= 0.5 else "rejected"
    with rasterio.open(run / sub / f"{name}.tif") as d:
        return d.read(1) > 127


def test_export_review_export_import_round_trip(ls_server: Server, tmp_path: Path, capsys):
    run = make_run(tmp_path, SCORES)
    out = ls_server.root / "review" / "tasks.json"
    rc = main([
        "export", "--labels", str(run), "--out", str(out), "--format", "label-studio",
        "--document-root", str(ls_server.root), "--no-progress",
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    edit = np.zeros((40, 48), bool)
    edit[3:20, 10:40] = True
    drawn = np.zeros((40, 48), bool)  # a polygon drawn on the brush pre-annotation's task
    drawn[26:36, 4:14] = True
    export = tmp_path / "ls-export.json"
    report = drive(
        "roundtrip",
        {
            "url": ls_server.url,
            "token": ls_server.token,
            "config": out.with_suffix(".xml").read_text(),
            "views": str(out.parent / "tasks-images"),
            "tasks": json.loads(out.read_text()),
            "edits": {
                "b_mid": mask_result(edit, "foreground") + mask_result(drawn, "foreground", True)
            },
            "export": str(export),
            "export_min": str(tmp_path / "ls-export-min.json"),
        },
        tmp_path,
    )
    # Label Studio serves the image views and keeps the least-trusted-first order
    assert report["image_status"] == 200 and report["image_png"]
    assert report["order"] == ["a_bad", "b_mid", "c_good"]
    # the predictions read back carry the score, the model id and the exact masks
    for name, preds in report["predictions"].items():
        (p,) = preds
        assert p["score"] == pytest.approx(SCORES[name])
        assert p["model_version"].startswith("model.pt@")
        (region,) = p["result"]
        assert np.array_equal(brush_decode(region["value"]["rle"], 40, 48), _label(run, name))
    rc = main([
        "import", str(export), "--from", "label-studio", "--out", str(tmp_path / "masks"), "--no-progress",
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    for name in SCORES:
        with (
            rasterio.open(tmp_path / "masks" / f"{name}.tif") as m,
            rasterio.open(tmp_path / "images" / f"{name}.tif") as img,
        ):
            assert (m.crs, m.transform, m.shape) == (img.crs, img.transform, img.shape)
            got = m.read(1) > 0
        want = (edit | drawn) if name == "b_mid" else _label(run, name)
        assert np.array_equal(got, want), name
    # Label Studio's JSON-MIN export of the same project gives the same masks
    rc = main([
        "import", str(tmp_path / "ls-export-min.json"), "--from", "label-studio",
        "--out", str(tmp_path / "masks-min"), "--no-progress",
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    for name in SCORES:
        a, b = tmp_path / "masks" / f"{name}.tif", tmp_path / "masks-min" / f"{name}.tif"
        with rasterio.open(a) as ma, rasterio.open(b) as mb:
            assert np.array_equal(ma.read(1), mb.read(1)) and ma.crs == mb.crs, name


def test_polygon_pre_annotations_round_trip(ls_server: Server, tmp_path: Path, capsys):
    from scipy import ndimage

    from sam2elnet.export.labelstudio_import import result_mask

    run = make_run(tmp_path, SCORES)
    out = ls_server.root / "polygons" / "tasks.json"
    rc = main([
        "export", "--labels", str(run), "--out", str(out), "--format", "label-studio",
        "--polygons", "--document-root", str(ls_server.root), "--no-progress",
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    export = tmp_path / "ls-export.json"
    painted = np.zeros((40, 48), bool)  # brush strokes added on a polygon pre-annotation
    painted[30:38, 30:46] = True
    report = drive(
        "roundtrip",
        {
            "url": ls_server.url,
            "token": ls_server.token,
            "config": out.with_suffix(".xml").read_text(),
            "views": str(out.parent / "tasks-images"),
            "tasks": json.loads(out.read_text()),
            "edits": {
                "b_mid": mask_result(_label(run, "b_mid"), "foreground", True)
                + mask_result(painted, "foreground")
            },
            "export": str(export),
            "export_min": str(tmp_path / "ls-export-min.json"),
        },
        tmp_path,
    )
    for name, (p,) in report["predictions"].items():
        assert {r["type"] for r in p["result"]} == {"polygonlabels"}
        filled = ndimage.binary_fill_holes(_label(run, name))  # LS polygons have no holes
        assert np.array_equal(result_mask(p["result"], 40, 48), filled), name
    assert (
        main(["import", str(export), "--from", "label-studio", "--out", str(tmp_path / "m")]) == 0
    )
    min_out = tmp_path / "m-min"
    assert main(["import", str(tmp_path / "ls-export-min.json"), "--from", "label-studio",
                 "--out", str(min_out)]) == 0  # fmt: skip
    for name in SCORES:
        for folder in (tmp_path / "m", min_out):  # JSON and JSON-MIN: the same masks
            with rasterio.open(folder / f"{name}.tif") as m:
                got = m.read(1) > 0
            want = ndimage.binary_fill_holes(_label(run, name))
            assert np.array_equal(got, want | painted if name == "b_mid" else want), name


def _wait_json(url: str, ok, timeout: float, proc: subprocess.Popen | None = None) -> dict:
    """Poll ``url`` until ``ok(json)`` holds (bounded); return the last answer."""
    t0 = time.monotonic()
    last: dict = {}
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"elnet serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                last = json.loads(r.read())
            if ok(last):
                return last
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not reach the expected state in {timeout} s; last answer {last}")


def _announced_url(log: Path, proc: subprocess.Popen, timeout: float) -> str:
    """The address ``elnet serve --port 0`` printed ("sam2elnet ML backend at http://HOST:PORT")."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if m := re.search(r"ML backend at (http://[\d.]+:\d+) ", log.read_text(errors="replace")):
            return m.group(1)
        if proc.poll() is not None:
            pytest.fail(f"elnet serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"elnet serve printed no address in {timeout} s:\n{log.read_text()[-3000:]}")


def test_label_studio_calls_elnet_serve(ls_server: Server, tmp_path: Path, capsys):
    from helpers_serve import scored_model

    from sam2elnet.pipeline.serve import BackendConfig, MLBackend

    scores = {"a": 0.2, "b": 0.8}
    make_run(tmp_path, scores)
    model = scored_model(tmp_path / "model.pt")  # a partial mask and a score for every image
    out = ls_server.root / "backend" / "tasks.json"
    assert main([
        "export", "--labels", str(tmp_path / "run"), "--out", str(out), "--format", "label-studio",
        "--document-root", str(ls_server.root), "--no-progress",
    ]) == 0  # fmt: skip
    tasks = [{"data": t["data"]} for t in json.loads(out.read_text())]  # no pre-annotations
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    # no --image-size: the fine-tuning runs take the model's training size (32 px); --port 0: the
    # backend binds any free port and prints its address (no port another worker can take first)
    cmd = [
        sys.executable, "-c", "import sys; from sam2elnet.cli import main; sys.exit(main(sys.argv[1:]))",
        "serve", "--model", str(model), "--workdir", str(tmp_path / "serve"), "--port", "0",
        "--document-root", str(ls_server.root), "--epochs", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _announced_url(log_path, proc, 120)
        h0 = _wait_json(f"{url}/health", lambda h: h.get("status") == "UP", 120, proc)
        edit = np.zeros((40, 48), bool)
        edit[8:30, 4:20] = True
        report = drive(
            "backend",
            {
                "url": ls_server.url,
                "token": ls_server.token,
                "config": out.with_suffix(".xml").read_text(),
                "views": str(out.parent / "tasks-images"),
                "backend": url,
                "tasks": tasks,
                "annotation": mask_result(edit, "foreground"),
            },
            tmp_path,
        )
        assert report["ml_state"] == "CO"  # connected: Label Studio called /health and /setup
        local = MLBackend(BackendConfig(model=model, workdir=tmp_path / "local"))
        assert sorted(report["predictions"]) == sorted(scores)
        for name, preds in report["predictions"].items():
            (p,) = preds  # Label Studio called /predict and stored the backend's answer
            assert p["model_version"] == h0["model_version"]
            want, score = local.predict_image(tmp_path / "images" / f"{name}.tif")
            assert 0 < want.sum() < want.size, name  # a region to see, not an empty mask
            got = np.zeros((40, 48), bool)
            for region in p["result"]:
                got |= brush_decode(region["value"]["rle"], 40, 48)
            assert np.array_equal(got, want), name
            # the predicted IoU reached Label Studio as the prediction's score
            assert p["score"] == pytest.approx(score, abs=1e-6) and 0 < p["score"] < 1, name
        # the submitted annotation reached /webhook, was stored and fine-tuned a new model
        h = _wait_json(
            f"{url}/health",
            lambda h: h.get("jobs") and h["jobs"][-1]["state"] in ("done", "failed"),
            300,
            proc,
        )
        assert h["jobs"][-1]["state"] == "done", h["jobs"]
        assert h["jobs"][-1]["image_size"] == 32
        assert h["model_version"] != h0["model_version"]
        name = report["annotated"]
        # a GeoTIFF image's reviewed mask keeps its georeference (as elnet import writes it)
        with rasterio.open(tmp_path / "serve" / "data" / "masks" / f"{name}.tif") as m:
            stored, crs = m.read(1), m.crs
        assert np.array_equal(stored > 0, edit) and crs.to_epsg() == 32633
    finally:
        _stop(proc)
        log.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-s"]))
