"""`elnet import --from label-studio`: the `next:` line names the model that made the labels.

Trial finding (sos-dev, a new user's session): after `elnet export --labels out/auto --format
label-studio` and a review, `elnet import` ended with `... --init-model MODEL.pt (MODEL.pt: the
model that made the labels ...)`, although every task names its label file (`data.label`) and
that run folder records its model; the vector import named the model already."""

from __future__ import annotations

import json
from pathlib import Path

from helpers_logs import run_main
from review_helpers import make_run

from sam2elnet.export.api import export_labels


def test_label_studio_import_names_the_model_of_the_tasks_labels(tmp_path: Path, capsys) -> None:
    run = make_run(tmp_path, {"a": 0.6, "b": 0.3})
    tasks_file = tmp_path / "ls" / "tasks.json"
    export_labels(run, tasks_file, fmt="label-studio", progress=False)
    tasks = json.loads(tasks_file.read_text())
    for i, t in enumerate(tasks):  # the reviewer accepts every pre-annotation
        t["id"] = i + 1
        t["annotations"] = [{"id": i + 1, "result": t["predictions"][0]["result"]}]
    export = tmp_path / "ls" / "export.json"
    export.write_text(json.dumps(tasks))
    masks = tmp_path / "reviewed" / "masks"
    args = ("import", export, "--from", "label-studio", "--images", tmp_path / "images",
            "--out", masks, "--no-progress")  # fmt: skip
    rc, out, err = run_main(capsys, *args)
    assert rc == 0, err
    last = out.strip().splitlines()[-1]
    assert last.endswith(
        f"--init-model {(tmp_path / 'model.pt').absolute()} (the model that made the labels, "
        "from the export's record of them)"
    ), last
    (tmp_path / "model.pt").unlink()  # gone since: the placeholder again
    rc, out, err = run_main(capsys, *args)
    assert rc == 0 and "--init-model MODEL.pt (MODEL.pt: the model" in out, out + err
