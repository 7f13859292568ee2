"""Drives a running Label Studio server with its SDK; runs in the Label Studio venv, not ours.

Called by test_labelstudio_server.py as ``<ls venv>/bin/python ls_driver.py STEP ARGS.json``;
each step reads its arguments from the JSON file and prints a JSON report on stdout.

Steps:
* ``roundtrip``: create a project with the given labelling config and a local-files storage,
  import the tasks, read the predictions back, fetch one served image, submit one annotation
  per task (its own result when the test gave an edit, else the prediction accepted as is) and
  download the JSON export.
* ``backend``: create a project, connect the ML backend URL, import tasks without predictions,
  ask for predictions through the data manager action, read them back, then submit one
  annotation (Label Studio then calls the backend's /webhook).
"""

from __future__ import annotations

import json
import sys
import time

import requests
from label_studio_sdk import LabelStudio


def _client(a: dict) -> LabelStudio:
    return LabelStudio(base_url=a["url"], api_key=a["token"], timeout=120)


def _tasks(ls: LabelStudio, pid: int) -> list[dict]:
    return [
        t.dict() if hasattr(t, "dict") else dict(t)
        for t in ls.tasks.list(project=pid, fields="all")
    ]


def _preds(tasks: list[dict]) -> dict[str, list[dict]]:
    out = {}
    for t in tasks:
        out[t["data"]["name"]] = [
            {
                "model_version": p.get("model_version"),
                "score": p.get("score"),
                "result": p.get("result"),
            }
            for p in t.get("predictions") or []
        ]
    return out


def roundtrip(a: dict) -> dict:
    ls = _client(a)
    project = ls.projects.create(title="elnet review", label_config=a["config"])
    ls.import_storage.local.create(
        project=project.id, path=a["views"], use_blob_urls=True, title="elnet images"
    )
    ls.projects.import_tasks(project.id, request=a["tasks"])
    tasks = _tasks(ls, project.id)
    report = {"project": project.id, "n_tasks": len(tasks), "predictions": _preds(tasks)}
    first = tasks[0]["data"]["image"]
    r = requests.get(a["url"] + first, headers={"Authorization": f"Token {a['token']}"}, timeout=30)
    report["image_status"] = r.status_code
    report["image_png"] = r.content[:8] == b"\x89PNG\r\n\x1a\n"
    report["order"] = [t["data"]["name"] for t in sorted(tasks, key=lambda t: t["id"])]
    for t in tasks:
        name = t["data"]["name"]
        result = a["edits"].get(name) or t["predictions"][0]["result"]
        ls.annotations.create(id=t["id"], result=result, was_cancelled=False)
    body = b"".join(
        ls.projects.exports.download_sync(project.id, export_type="JSON", download_all_tasks=True)
    )
    with open(a["export"], "wb") as fh:
        fh.write(body)
    if a.get("export_min"):  # the same project as JSON-MIN (flat records)
        body = b"".join(
            ls.projects.exports.download_sync(
                project.id, export_type="JSON_MIN", download_all_tasks=True
            )
        )
        with open(a["export_min"], "wb") as fh:
            fh.write(body)
    return report


def backend(a: dict) -> dict:
    ls = _client(a)
    project = ls.projects.create(title="elnet backend", label_config=a["config"])
    ls.import_storage.local.create(
        project=project.id, path=a["views"], use_blob_urls=True, title="elnet images"
    )
    ml = ls.ml.create(project=project.id, url=a["backend"], title="sam2elnet", is_interactive=False)
    report = {"ml_state": ls.ml.get(ml.id).state}
    ls.projects.import_tasks(project.id, request=a["tasks"])
    ids = [t["id"] for t in _tasks(ls, project.id)]
    r = requests.post(
        f"{a['url']}/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": project.id},
        json={"selectedItems": {"all": False, "included": ids}},
        headers={"Authorization": f"Token {a['token']}"},
        timeout=300,
    )
    report["action_status"] = r.status_code
    deadline = time.time() + 120
    while True:
        tasks = _tasks(ls, project.id)
        if all(t.get("predictions") for t in tasks) or time.time() > deadline:
            break
        time.sleep(1)
    report["predictions"] = _preds(tasks)
    t = tasks[0]
    ls.annotations.create(id=t["id"], result=a["annotation"], was_cancelled=False)
    report["annotated"] = t["data"]["name"]
    return report


if __name__ == "__main__":
    step, path = sys.argv[1], sys.argv[2]
    with open(path) as fh:
        args = json.load(fh)
    print(json.dumps({"roundtrip": roundtrip, "backend": backend}[step](args)))
