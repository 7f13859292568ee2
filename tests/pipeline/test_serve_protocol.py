"""``elnet serve`` as a new user meets it: malformed requests, unreadable images, a project's own
labelling config, the token only to Label Studio, a restart keeping the fine-tuned model."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers_data import micro_model_file
from helpers_serve import call

from sam2elnet.export.brush import brush_decode
from sam2elnet.pipeline.serve import BackendConfig, MLBackend
from sam2elnet.pipeline.serve_protocol import LabelTarget, label_target


def _task(root: Path, name: str, i: int = 1, key: str = "image") -> dict:
    return {"id": i, "data": {key: str(root / "images" / f"{name}.tif"), "name": name}}


def test_malformed_requests_are_400_with_a_sentence(serve_backend):
    be, url, root = serve_backend
    good = _task(root, "a")
    cases = {
        "/predict": [
            ([1, 2], "the request body must be a JSON object, got list"),
            ({"tasks": "abc"}, "'tasks' must be a list of tasks, got str"),
            ({"tasks": [1]}, "tasks[0] must be a JSON object, got int"),
            ({"tasks": [{"id": 1, "data": "x"}]}, "tasks[0].data must be a JSON object, got str"),
        ],
        "/webhook": [
            ({"action": "ANNOTATION_CREATED", "task": 3}, "'task' must be a JSON object, got int"),
            (
                {"action": "ANNOTATION_CREATED", "task": good, "annotation": "x"},
                "annotation 0 must be a JSON object, got str",
            ),
            (
                {"action": "ANNOTATION_CREATED", "task": good, "annotation": {"result": "x"}},
                "annotation 0: 'result' must be a list of regions",
            ),
        ],
        "/train": [({"annotations": [1]}, "annotations[0] must be a JSON object, got int")],
    }
    for route, items in cases.items():
        for body, msg in items:
            code, ans = call(f"{url}{route}", body)
            assert (code, ans) == (400, {"error": msg}), (route, body)

    def hook(region: dict) -> tuple[int, dict]:
        body = {"action": "ANNOTATION_CREATED", "task": good, "annotation": {"result": [region]}}
        return call(f"{url}/webhook", body)

    code, ans = hook({"type": "brushlabels", "value": [1]})
    assert code == 400 and ans["error"].startswith("annotation of task 1: a result region")
    # a well-formed region whose RLE does not decode: logged and not stored
    code, ans = hook({"type": "brushlabels", "value": {"format": "rle", "rle": "nope"}})
    assert code == 200 and ans["stored"] == 0
    assert not list((root / "serve" / "data" / "masks").glob("*"))  # nothing stored
    assert call(f"{url}/health")[0] == 200  # still serving


def test_unreadable_images_get_no_prediction_and_none_readable_is_422(serve_backend):
    be, url, root = serve_backend
    missing = {"id": 4, "data": {"image": str(root / "nope.png")}}
    code, ans = call(f"{url}/predict", {"tasks": [_task(root, "a"), missing]})
    assert code == 200 and len(ans["results"]) == 2
    assert ans["results"][1] == []  # no prediction, not an empty one with score 0
    assert ans["results"][0]["model_version"] == be.model_version
    code, ans = call(f"{url}/predict", {"tasks": [missing]})
    assert code == 422 and ans["error"].startswith("no task image could be read: task 4: ")


CONFIG = """<View>
  <Image name="img" value="$picture"/>
  <{tag} name="tag" toName="img">
    <Label value="oil"/><Label value="ship"/>
  </{tag}>
</View>"""


def test_answers_use_the_projects_labelling_config(tmp_path: Path):
    from review_helpers import make_run

    make_run(tmp_path, {"a": 0.5})
    be = MLBackend(
        BackendConfig(
            model=micro_model_file(tmp_path / "m.pt", bands=3),
            workdir=tmp_path / "w",
            threshold=1e-6,  # every valid pixel: a non-empty mask from an untrained model
            category="ship",
        )
    )
    task = _task(tmp_path, "a", key="picture")
    be.setup({"schema": CONFIG.format(tag="BrushLabels")})
    assert be.target == LabelTarget("tag", "img", "picture", "ship", False)
    (res,) = be.predict({"tasks": [task]})["results"]
    (region,) = res["result"]
    assert (region["from_name"], region["to_name"], region["type"]) == ("tag", "img", "brushlabels")
    assert region["value"]["brushlabels"] == ["ship"]
    assert brush_decode(region["value"]["rle"], 40, 48).all()
    # polygons when the project has only PolygonLabels; a label it lacks -> its first label
    res = be.predict({"tasks": [task], "label_config": CONFIG.format(tag="PolygonLabels")})
    (region,) = res["results"][0]["result"]
    assert region["type"] == "polygonlabels" and region["value"]["polygonlabels"] == ["ship"]
    t = label_target(CONFIG.format(tag="BrushLabels"), "foreground", LabelTarget())
    assert t == LabelTarget("tag", "img", "picture", "oil", False)
    assert label_target("<View", "x", t) is t and label_target("<View/>", "x", t) is t


def test_the_exports_two_tool_config_is_answered_with_the_pre_annotation_tool():
    """elnet export's config offers both tools, the pre-annotation's first: serve answers a
    --polygons project with polygons and a brush project with brush masks (was: BrushLabels
    always won, so a --polygons project got brush predictions)."""
    from sam2elnet.export.labelstudio import FROM_NAME, POLYGON_NAME, label_config

    poly = label_target(label_config("oil spill", polygons=True), "oil spill", LabelTarget())
    brush = label_target(label_config("oil spill", polygons=False), "oil spill", LabelTarget())
    assert (poly.from_name, poly.polygons, poly.label) == (POLYGON_NAME, True, "oil spill")
    assert (brush.from_name, brush.polygons, brush.label) == (FROM_NAME, False, "oil spill")


def test_token_goes_only_to_the_label_studio_host(tmp_path: Path):
    from review_helpers import make_run

    make_run(tmp_path, {"a": 0.5})
    png = (tmp_path / "images" / "a.tif").read_bytes()
    seen: list = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.server.server_address[1], self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *a):
            pass

    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), H) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ls, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    try:
        be = MLBackend(
            BackendConfig(
                model=micro_model_file(tmp_path / "m.pt", bands=3), workdir=tmp_path / "w"
            )
        )
        be.setup({"hostname": ls, "access_token": "secret"})
        be.image_path({"id": 1, "data": {"image": "/data/upload/1/abcd1234-a.tif"}})
        be.image_path({"id": 2, "data": {"image": f"{ls}/data/upload/1/x.tif"}})
        be.image_path({"id": 3, "data": {"image": f"{other}/bucket/a.tif"}})
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    ports = [s.server_address[1] for s in servers]
    assert seen == [(ports[0], "Token secret"), (ports[0], "Token secret"), (ports[1], None)]


def test_a_review_named_like_a_path_stays_in_the_work_folder(tmp_path: Path):
    from review_helpers import make_run

    from sam2elnet.export.labelstudio import mask_result

    make_run(tmp_path, {"a": 0.5})
    be = MLBackend(
        BackendConfig(
            model=micro_model_file(tmp_path / "m.pt", bands=3), workdir=tmp_path / "w", train=False
        )
    )
    task = {"id": 1, "data": {"image": str(tmp_path / "images" / "a.tif"), "name": "../../evil"}}
    edit = np.zeros((40, 48), bool)
    edit[2:9, 3:7] = True
    assert be.store(task, {"result": mask_result(edit, "foreground")}) == 1
    assert (tmp_path / "w" / "data" / "masks" / "evil.tif").is_file()
    assert not list(tmp_path.glob("evil.*"))
    state = json.loads((tmp_path / "w" / "state.json").read_text())
    assert state["pending"] == 1 and state["jobs"] == []


def test_restart_serves_the_fine_tuned_model(tmp_path: Path):
    """A fine-tuned model and the job list survive a restart (state.json); an interrupted run is
    marked so and run again; another --model starts afresh."""
    from review_helpers import make_run

    make_run(tmp_path, {"a": 0.5})
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    work = tmp_path / "w"
    tuned = micro_model_file(tmp_path / "tuned.pt", bands=3)  # stands in for a finished run's model
    first = MLBackend(BackendConfig(model=model, workdir=work, train=False))
    v_tuned = MLBackend._version(tuned)
    state = {
        "base_version": first.base_version,
        "model": str(tuned),
        "pending": 0,
        "jobs": [{"job": "ft-1", "state": "done", "model": str(tuned), "model_version": v_tuned}],
    }
    (work / "state.json").write_text(json.dumps(state))
    again = MLBackend(BackendConfig(model=model, workdir=work, train=False))
    assert again.model_version == v_tuned and again.jobs == state["jobs"]
    assert again.health()["model_version"] == v_tuned
    # a run killed with the backend: marked interrupted (and run again when training is on)
    state["jobs"].append({"job": "ft-2", "state": "running", "samples": 1})
    (work / "state.json").write_text(json.dumps(state))
    killed = MLBackend(BackendConfig(model=model, workdir=work, train=False))
    assert [j["state"] for j in killed.jobs] == ["done", "interrupted"]
    # another --model: its own start, not the old state's model
    other = micro_model_file(tmp_path / "other.pt", bands=3)
    fresh = MLBackend(BackendConfig(model=other, workdir=work, train=False))
    assert fresh.model_version == MLBackend._version(other) and fresh.jobs == []


@pytest.mark.timeout(300)
def test_an_interrupted_fine_tuning_runs_again(serve_backend):
    be, url, root = serve_backend
    from sam2elnet.export.labelstudio import mask_result

    edit = np.zeros((40, 48), bool)
    edit[5:25, 10:30] = True
    be.cfg.train = False  # store the review without training, as if killed before the run ended
    assert be.store(_task(root, "a"), {"result": mask_result(edit, "foreground")}) == 1
    state = json.loads((root / "serve" / "state.json").read_text())
    state["jobs"] = [{"job": "ft-1", "state": "running", "samples": 1}]
    (root / "serve" / "state.json").write_text(json.dumps(state))
    again = MLBackend(be.cfg.model_copy(update={"train": True}))
    assert again.training is not None
    again.training.join(timeout=240)
    assert [j["state"] for j in again.jobs] == ["interrupted", "done"]
    assert again.model_version != be.model_version
    saved = json.loads((root / "serve" / "state.json").read_text())
    assert saved["model_version"] == again.model_version and saved["jobs"] == again.jobs
