"""``--resume`` continues with the model that made an output folder's labels.

``elnet annotate --model run1/model.pt --resume`` into a folder that ``--model run0/model.pt``
filled kept run0's labels and scores ("16 done by the earlier run") under a summary naming run1,
and ``elnet export`` then tagged them with run1's version. A folder job now records its model
(``OUT/model_id.json``: path, ``NAME@HASH`` version, SHA-256) when it starts; ``--resume`` with
another model is one ``error: OUT: ...`` line, exit 2, nothing written. The same bytes resume as
before (wherever the file lies), and a folder made before the record resumes with a warning.
Exports take the model version from that record in every format (COCO, GeoPackage, Label Studio).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import pytest
import torch

from sam2elnet.cli import main
from sam2elnet.data.run_model import MODEL_ID_JSON, model_version


@pytest.fixture(scope="module")
def other_model(run: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model: the shared micro model with one decoder weight changed (save/load API)."""
    from sam2elnet.model.io import load_model, save_model

    model, extra = load_model(run["model"])
    name, param = next((n, p) for n, p in model.named_parameters() if not n.startswith("trunk."))
    with torch.no_grad():
        param.view(-1)[0] += 0.5
    out = tmp_path_factory.mktemp("run1") / "model.pt"
    save_model(model, out, extra)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _annotate(run: dict[str, Path], model: Path, out: Path, *more: str) -> list[str]:
    return ["annotate", "--model", str(model), "--images", str(run["data"] / "images"),
            "--out", str(out), "--no-progress", *more]  # fmt: skip


def test_resume_with_another_model_is_refused_with_nothing_written(
    run: dict[str, Path], other_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a"
    assert main(_annotate(run, run["model"], out)) == 0
    rec = json.loads((out / MODEL_ID_JSON).read_text())
    assert rec["model_version"] == model_version(run["model"])
    assert rec["model"] == str(run["model"].resolve()) and len(rec["sha256"]) == 64
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model_version"] == rec["model_version"]
    capsys.readouterr()
    before = _tree(out)
    assert main(_annotate(run, other_model, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {out}: "), err
    assert str(run["model"].resolve()) in err and model_version(run["model"]) in err
    assert str(other_model) in err and model_version(other_model) in err
    assert "new --out" in err and "drop --resume" in err
    assert _tree(out) == before  # no label, score, summary or record changed
    # enhance shares the check
    coarse = tmp_path / "coarse"
    shutil.copytree(run["data"] / "masks", coarse)
    enh = ["enhance", "--images", str(run["data"] / "images"), "--labels", str(coarse),
           "--out", str(tmp_path / "e"), "--no-progress"]  # fmt: skip
    assert main([*enh, "--model", str(run["model"])]) == 0
    capsys.readouterr()
    before = _tree(tmp_path / "e")
    assert main([*enh, "--model", str(other_model), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'e'}: ") and model_version(other_model) in err
    assert _tree(tmp_path / "e") == before
    # without --resume the other model starts over, and the folder records it
    assert main(_annotate(run, other_model, out)) == 0
    rec = json.loads((out / MODEL_ID_JSON).read_text())
    assert rec["model_version"] == model_version(other_model)
    assert json.loads((out / "summary.json").read_text())["n_resumed"] == 0


def test_same_model_resumes_and_an_old_folder_warns(
    run: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "a"
    assert main(_annotate(run, run["model"], out)) == 0
    n = json.loads((out / "summary.json").read_text())["n_images"]
    # the same bytes under another path are the same model: every image is reused
    moved = tmp_path / "elsewhere" / "model.pt"
    moved.parent.mkdir()
    shutil.copyfile(run["model"], moved)
    assert main(_annotate(run, moved, out, "--resume")) == 0
    assert json.loads((out / "summary.json").read_text())["n_resumed"] == n
    # a folder made before the record: resumed, with a warning that the model is not checked
    (out / MODEL_ID_JSON).unlink()
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main(_annotate(run, run["model"], out, "--resume")) == 0
    said = [r.getMessage() for r in caplog.records if "cannot check" in r.getMessage()]
    assert len(said) == 1 and str(out) in said[0] and str(run["model"]) in said[0], said
    assert json.loads((out / "summary.json").read_text())["n_resumed"] == n
    assert (out / MODEL_ID_JSON).is_file()  # recorded from now on


def test_exports_tag_the_run_model_in_every_format(
    run: dict[str, Path], other_model: Path, tmp_path: Path
) -> None:
    """COCO and GeoPackage carried no model_id without --model-id, while Label Studio took the
    run's; all now take the version of the model that made the labels (OUT/model_id.json), even
    after the model file was replaced."""
    import geopandas as gpd

    out = tmp_path / "a"
    model = tmp_path / "m" / "model.pt"
    model.parent.mkdir()
    shutil.copyfile(run["model"], model)
    assert main(_annotate(run, model, out)) == 0
    version = model_version(run["model"])
    shutil.copyfile(other_model, model)  # the file changed since: the labels are not its
    assert main(["export", "--labels", str(out), "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["info"]["model_id"] == version
    assert main(["export", "--labels", str(out), "--out", str(tmp_path / "p.gpkg")]) == 0
    assert set(gpd.read_file(tmp_path / "p.gpkg", layer="labels")["model_id"]) == {version}
    assert main(["export", "--labels", str(out), "--out", str(tmp_path / "c2.json"),
                 "--model-id", "mine"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "c2.json").read_text())["info"]["model_id"] == "mine"
    from sam2elnet.export.run_info import labels_model_version as ls_version

    assert ls_version(out) == version


def _scene_args(model: Path | str, scenes: Path, out: Path, *more: str) -> list[str]:
    return ["scene", "--model", str(model), "--image", str(scenes), "--out", str(out),
            "--tile", "64", "--overlap", "0", "--no-progress", *more]  # fmt: skip


def test_scene_folder_records_its_model_and_resume_with_another_is_refused(
    run: dict[str, Path],
    other_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``elnet scene --image FOLDER --resume`` skipped the scenes another model had predicted and
    left their labels under the new model, and the folder recorded no model, so ``elnet export``
    of it carried no model version. The folder now records its model as annotate does
    (``model_id.json``): ``--resume`` with another model is one ``error:`` line, exit 2, nothing
    written; the same bytes elsewhere resume; exports take its version."""
    import numpy as np
    from helpers_data import write_tif

    scenes = tmp_path / "scenes"
    rng = np.random.default_rng(0)
    for name in ("s1.tif", "s2.tif"):
        write_tif(scenes / name, rng.integers(0, 255, (3, 64, 64)).astype(np.uint8))
    out = tmp_path / "so"
    assert main(_scene_args(run["model"], scenes, out)) == 0
    rec = json.loads((out / MODEL_ID_JSON).read_text())
    assert rec["model_version"] == model_version(run["model"])
    assert rec["model"] == str(run["model"].resolve()) and len(rec["sha256"]) == 64
    capsys.readouterr()
    before = _tree(out)
    assert main(_scene_args(other_model, scenes, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {out}: "), err
    assert model_version(run["model"]) in err and model_version(other_model) in err
    assert "new --out" in err and "drop --resume" in err
    assert _tree(out) == before
    # the same bytes at another path: both scenes reused
    moved = tmp_path / "elsewhere" / "model.pt"
    moved.parent.mkdir()
    shutil.copyfile(run["model"], moved)
    assert main(_scene_args(moved, scenes, out, "--resume")) == 0
    assert "0 scenes predicted, 2 already done" in capsys.readouterr().out
    # exports of the folder and of one label in it carry the version
    version = model_version(run["model"])
    assert main(["export", "--labels", str(out), "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["info"]["model_id"] == version
    from sam2elnet.data.run_model import run_model_version
    from sam2elnet.export.run_info import label_tags

    assert run_model_version(out / "s1.tif", label_tags(out / "s1.tif")) == version
    # a folder made before the record: resumed with a warning; a dry run without --resume
    # (builtin:smoothing, no model file) removes the record, which no longer tells the labels'
    (out / MODEL_ID_JSON).unlink()
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main(_scene_args(run["model"], scenes, out, "--resume")) == 0
    said = [r.getMessage() for r in caplog.records if "cannot check" in r.getMessage()]
    assert len(said) == 1 and str(out) in said[0], said
    assert json.loads((out / MODEL_ID_JSON).read_text())["sha256"] == rec["sha256"]
    assert main(_scene_args("builtin:smoothing", scenes, out)) == 0
    assert json.loads((out / MODEL_ID_JSON).read_text())["model"] == "builtin:smoothing"


def test_resume_between_a_model_file_and_the_builtin_model_is_refused(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet scene --model builtin:smoothing --resume`` into a folder a model file filled (or
    the reverse) went on and mixed the two models' labels: builtin:smoothing, no file, was
    neither checked nor recorded. It is now recorded by name (``model_id.json``) and follows the
    rule of model files: another model is one ``error: OUT: ...`` line naming both, the recorded
    one and what to do, exit 2, nothing written; the same builtin model resumes."""
    import numpy as np
    from helpers_data import write_tif

    scenes = tmp_path / "scenes"
    rng = np.random.default_rng(0)
    for name in ("s1.tif", "s2.tif"):
        write_tif(scenes / name, rng.integers(0, 255, (3, 64, 64)).astype(np.uint8))
    real, dry = tmp_path / "real", tmp_path / "dry"
    assert main(_scene_args(run["model"], scenes, real)) == 0
    assert main(_scene_args("builtin:smoothing", scenes, dry)) == 0
    rec = json.loads((dry / MODEL_ID_JSON).read_text())
    assert rec == {"model": "builtin:smoothing", "model_version": "builtin:smoothing",
                   "sha256": None, "bands": None}  # fmt: skip
    capsys.readouterr()
    recorded = str(run["model"].resolve())
    for out, other, named in ((real, "builtin:smoothing", recorded),
                              (dry, str(run["model"]), "builtin:smoothing")):  # fmt: skip
        before = _tree(out)
        assert main(_scene_args(other, scenes, out, "--resume")) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {out}: "), err
        assert f"made by model {named}" in err and f"--model {other} is another model" in err
        assert f"resume with --model {named}" in err
        assert "new --out" in err and "drop --resume" in err
        assert _tree(out) == before
    assert main(_scene_args("builtin:smoothing", scenes, dry, "--resume")) == 0
    assert "0 scenes predicted, 2 already done" in capsys.readouterr().out


def test_resume_with_other_bands_is_refused_with_nothing_written(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--resume`` with another ``--bands`` was accepted without a word: the images it went on
    to label were read from other bands than the labels already written. The folder now records
    the bands (``model_id.json``) and a change is one ``error: OUT: ...`` line naming both, exit
    2, nothing written; the same bands resume (annotate / enhance / scene share the check)."""
    import numpy as np
    from helpers_data import write_tif

    out = tmp_path / "a"
    assert main(_annotate(run, run["model"], out, "--bands", "3,2,1")) == 0
    assert json.loads((out / MODEL_ID_JSON).read_text())["bands"] == [3, 2, 1]
    n = json.loads((out / "summary.json").read_text())["n_images"]
    capsys.readouterr()
    before = _tree(out)
    for other, said in ((["--bands", "1,2,3"], "1,2,3"), ([], "the model's default")):
        assert main(_annotate(run, run["model"], out, "--resume", *other)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {out}: "), err
        assert "3,2,1" in err and said in err and "--bands" in err and "new --out" in err
        assert _tree(out) == before
    assert main(_annotate(run, run["model"], out, "--resume", "--bands", "3,2,1")) == 0
    assert json.loads((out / "summary.json").read_text())["n_resumed"] == n
    # a scene folder shares the check
    scenes = tmp_path / "scenes"
    write_tif(
        scenes / "s1.tif", np.random.default_rng(0).integers(0, 255, (3, 64, 64)).astype(np.uint8)
    )
    so = tmp_path / "so"
    assert main(_scene_args(run["model"], scenes, so)) == 0
    assert json.loads((so / MODEL_ID_JSON).read_text())["bands"] is None
    capsys.readouterr()
    before = _tree(so)
    assert main(_scene_args(run["model"], scenes, so, "--resume", "--bands", "2,2,2")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {so}: ") and "2,2,2" in err and "the model's default" in err
    assert _tree(so) == before
