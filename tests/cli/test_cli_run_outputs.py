"""The multi-output commands' outputs are distinct files and never inputs: ``elnet scene`` (one
scene: the label, ``_prob.tif`` and ``_tiles.gpkg``; a folder: every scene's outputs, the
``--labels`` folder or file), ``elnet cv`` and ``elnet experiment`` (the run folder and the
``--data`` / ``--weights`` they read).

Each refusal is one ``error:`` line naming the file and saying what to do, exit 2, before the
model loads and with nothing written (pipeline.scene_files.check_scene_outputs,
engine.folder_inputs.check_run_out; the mechanism of tests/cli/test_cli_job_outputs.py).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from helpers_data import make_generic, make_scene
from helpers_logs import refused_untouched

from sam2elnet.cli import main
from sam2elnet.engine.folder_inputs import check_run_out
from sam2elnet.pipeline.crossval_config import CV_PARTS

os.environ.setdefault("SAM2ELNET_THREADS", "1")

SMOOTH = ["--model", "builtin:smoothing", "--tile", "64", "--overlap", "16", "--no-progress"]


# ----------------------------------------------------------------------------- elnet scene


def _scene(path: Path, seed: int = 0) -> Path:
    """A 64 x 64 GeoTIFF scene at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_scene(path, h=64, w=64, seed=seed)


def test_scene_folder_two_scenes_onto_one_label_are_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``a.tif`` and ``a.tiff`` both write ``OUT/a.tif``: one would overwrite the other."""
    scenes = tmp_path / "scenes"
    _scene(scenes / "a.tif")
    _scene(scenes / "a.tiff", seed=1)
    out = tmp_path / "o"
    argv = ["scene", "--model", str(unread_model), "--image", str(scenes), "--out", str(out),
            "--no-progress"]  # fmt: skip
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: scene a.tiff's label {out / 'a.tif'}: is the same file as scene a.tif's label "
        f"{out / 'a.tif'}; one would overwrite the other. Rename one of the two scenes or move "
        "it elsewhere"
    )
    assert not out.exists()


@pytest.mark.parametrize("name", ["oil.tif", "oil.TIFF"])
def test_scene_folder_into_a_geotiff_name_is_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """``--image scenes/ --out oil.tif`` (the single-scene form kept for a folder) made a folder
    named ``oil.tif`` holding ``oil.tif/a.tif``, which GIS tools and scripts take for a raster.
    Now one error line before the model loads says that a folder of scenes writes into a
    folder and names one; nothing is written. An existing folder of that name (an earlier run
    resumed) is still taken."""
    scenes = tmp_path / "scenes"
    _scene(scenes / "a.tif")
    out = tmp_path / "o" / name
    argv = ["scene", "--model", str(unread_model), "--image", str(scenes), "--out", str(out),
            "--no-progress"]  # fmt: skip
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {out}: --image {scenes} is a folder of scenes, so --out is the folder "
        f"their labels go into (<scene>.tif each), not a GeoTIFF; give a folder path such as "
        f"{tmp_path / 'o' / 'oil'}"
    )
    assert not out.exists()


def test_scene_folder_label_onto_another_scenes_probability_map_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``--prob`` scene ``a.tif`` writes ``OUT/a_prob.tif``, the label of scene
    ``a_prob.tif``; without ``--prob`` the two scenes run."""
    scenes = tmp_path / "scenes"
    _scene(scenes / "a.tif")
    _scene(scenes / "a_prob.tif", seed=1)
    out = tmp_path / "o"
    argv = ["scene", "--image", str(scenes), "--out", str(out), *SMOOTH]
    err = refused_untouched(capsys, [*argv, "--prob"], tmp_path)
    assert err == (
        f"error: scene a_prob.tif's label {out / 'a_prob.tif'}: is the same file as scene "
        f"a.tif's probability map {out / 'a_prob.tif'}; one would overwrite the other. Rename "
        "one of the two scenes or move it elsewhere"
    )
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif", "a_prob.tif"]


def test_scene_folder_out_equal_to_the_labels_folder_is_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--labels L --out L``: the labels ``L/a.tif`` would replace the coarse label ``L/a.tif``."""
    scenes, labels = tmp_path / "scenes", tmp_path / "coarse"
    _scene(scenes / "a.tif")
    _scene(labels / "a.tif", seed=2)
    argv = ["scene", "--model", str(unread_model), "--image", str(scenes), "--labels", str(labels),
            "--out", str(labels), "--no-progress"]  # fmt: skip
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {labels}: scene writes its labels (<scene>.tif) into {labels}, which "
        f"holds the coarse labels read with --labels ({labels}); they would replace or mix with "
        "the inputs. Choose another --out folder"
    )


def test_scene_folder_output_onto_the_labels_file_is_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One ``--labels`` file for every scene, kept in ``--out`` under a scene's label name."""
    scenes, out = tmp_path / "scenes", tmp_path / "o"
    _scene(scenes / "a.tif")
    lab = out / "a_tiles.gpkg"
    out.mkdir()
    lab.write_bytes(b"a GeoPackage (not read: the output is refused first)")
    argv = ["scene", "--model", str(unread_model), "--image", str(scenes), "--labels", str(lab),
            "--out", str(out), "--quality-gpkg", "--no-progress"]  # fmt: skip
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {out}: scene a.tif's quality layer {lab}: is the input file {lab}; "
        "writing it would replace the input. Choose another --out path"
    )


def test_scene_probability_map_linked_to_the_label_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One scene: ``<out>_prob.tif`` a symlink to ``<out>`` (a label of an earlier run) is the
    same file; the label and the probabilities would overwrite each other."""
    image = _scene(tmp_path / "s.tif")
    out = tmp_path / "run" / "label.tif"
    out.parent.mkdir()
    out.write_bytes(b"an earlier label")
    prob = out.with_name("label_prob.tif")
    prob.symlink_to(out)
    argv = ["scene", "--image", str(image), "--out", str(out), "--prob", *SMOOTH]
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {out}: its probability map {prob}: is the same file as --out {out}; one "
        "would overwrite the other. Choose another --out path"
    )


def test_scene_out_equal_to_the_labels_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _scene(tmp_path / "s.tif")
    labels = _scene(tmp_path / "coarse.tif", seed=3)
    argv = ["scene", "--image", str(image), "--labels", str(labels), "--out", str(labels), *SMOOTH]
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {labels}: is the input file {labels}; writing it would replace the "
        "input. Choose another --out path"
    )


@pytest.mark.parametrize("extra", [[], ["--prob", "--quality-gpkg"]])
def test_scene_out_that_is_no_geotiff_is_refused_before_the_model_loads(
    tmp_path: Path,
    unread_model: Path,
    extra: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One scene, ``--out x.png``: the label is written as a GeoTIFF only. The name is refused
    before the model loads (which would fail: ``model`` is no model, and the loader is replaced
    by one that fails the test), so a real model's load time is not spent first."""
    import sam2elnet.pipeline.scenes as scenes

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model loaded before the --out name was checked")

    monkeypatch.setattr(scenes, "load_scene_predictor", no_load)
    image = _scene(tmp_path / "s.tif")
    out = tmp_path / "x.png"
    argv = ["scene", "--model", str(unread_model), "--image", str(image), "--out", str(out),
            "--no-progress", *extra]  # fmt: skip
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: scene output must be a GeoTIFF (.tif), got {out}; choose a name ending in .tif"
    )


def test_scene_output_names_are_checked_before_the_model_loads_in_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scene_job`` (what ``elnet scene`` runs) refuses the names ``predict_scene`` cannot
    write before loading the model; ``check_scene_paths`` also refuses a quality layer that is
    no ``.gpkg`` (``elnet scene`` always names it ``<out stem>_tiles.gpkg``)."""
    import sam2elnet.pipeline.scenes as scenes
    from sam2elnet.engine.scene_checks import check_scene_paths
    from sam2elnet.errors import UserError

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model loaded before the output names were checked")

    monkeypatch.setattr(scenes, "load_scene_predictor", no_load)
    image = _scene(tmp_path / "s.tif")
    with pytest.raises(UserError, match=r"must be a GeoTIFF \(\.tif\), got .*x\.png"):
        scenes.scene_job(image, tmp_path / "x.png", tmp_path / "missing.pt", quality=True)
    tiles = tmp_path / "label_tiles.shp"
    with pytest.raises(UserError) as err:
        check_scene_paths(image, tmp_path / "label.tif", quality_gpkg=tiles)
    assert str(err.value) == (
        f"per-tile quality output must be a GeoPackage (.gpkg), got {tiles}; "
        "choose a name ending in .gpkg"
    )
    check_scene_paths(image, tmp_path / "label.TIF", quality_gpkg=tmp_path / "label_tiles.gpkg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]  # nothing written


def test_scene_folder_summary_counts_skips_and_points_to_the_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each skip reason is printed once (the warning); the summary counts the skips and says
    where the reasons are; skipped.csv and the manifest keep every reason in full."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    good = make_scene(scenes / "good.tif", h=100, w=100)
    (scenes / "trunc.tif").write_bytes(good.read_bytes()[:300])
    (scenes / "z_zero.tif").write_bytes(b"")
    out = tmp_path / "o"
    assert main(["scene", "--image", str(scenes), "--out", str(out), *SMOOTH]) == 0
    cap = capsys.readouterr()
    reason = "scene file is empty (0 bytes); re-export it or remove it"
    assert cap.err.count(reason) == 1 and reason not in cap.out
    assert "trunc.tif" not in cap.out.replace(str(out), "")  # no per-scene lines in stdout
    lines = cap.out.splitlines()
    i = lines.index(
        "1 scene predicted, 0 already done, 2 skipped (reasons: the warnings above and the "
        "manifest)"
    )
    assert lines[i + 1 :] == [
        f"manifest: {out / 'manifest.jsonl'}",
        f"2 of 3 skipped, see {out / 'skipped.csv'}",
    ]
    rows = list(csv.DictReader((out / "skipped.csv").open(encoding="utf-8")))
    assert [r["scene"] for r in rows] == ["trunc.tif", "z_zero.tif"]
    assert rows[1]["reason"] == reason  # the scene column names the file
    assert rows[0]["reason"].startswith("cannot read scene (trunc.tif, ")
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    failed = {m["item"]: m["reason"] for m in manifest if m["status"] == "failed"}
    assert failed == {r["scene"]: r["reason"] for r in rows}


# ----------------------------------------------------------------------- cv and experiment


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Generic layout d/images + d/masks, 4 pairs of 32 px."""
    return make_generic(tmp_path / "d", n=4)


CV_TABLES = "its tables (cv.json, cv.md, cv_config.json)"
EXP_FILES = "its records and results (experiment.json, results.*, report.html)"


@pytest.mark.parametrize(
    ("command", "writes"), [("cv", CV_TABLES), ("experiment", EXP_FILES)]
)  # fmt: skip
def test_run_folder_equal_to_the_data_folder_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, writes: str
) -> None:
    """cv and experiment write (and a re-run stage clears) ``test/``, ``labels/``, ... in
    ``--out``: into the dataset folder they would replace or mix with the dataset."""
    argv = [command, "--data", str(data), "--out", str(data), "--no-progress"]
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {data}: {command} writes {writes} into {data}, which holds the dataset "
        f"read with --data ({data}); they would replace or mix with the inputs. Choose another "
        "--out folder"
    )


@pytest.mark.parametrize("command", ["cv", "experiment"])
def test_run_folder_in_the_images_folder_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    argv = [command, "--data", str(data), "--out", str(data / "images"), "--no-progress"]
    err = refused_untouched(capsys, argv, tmp_path)
    assert err.startswith(f"error: --out {data / 'images'}: {command} writes its ")
    assert err.endswith(
        f"into {data / 'images'}, which holds an image read with --data "
        f"({data / 'images' / 'img0.png'}); they would replace or mix with the inputs. Choose "
        "another --out folder"
    )


def test_experiment_data_in_a_stage_folder_of_the_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--data RUN/labelled --out RUN``: re-running the subsets stage clears RUN/labelled."""
    run = tmp_path / "run"
    lab = make_generic(run / "labelled", n=4)
    err = refused_untouched(capsys, ["experiment", "--data", str(lab), "--out", str(run)], tmp_path)
    assert err == (
        f"error: --out {run}: experiment writes the labelled subset into {lab}, which holds the "
        f"dataset read with --data ({lab}); they would replace or mix with the inputs. Choose "
        "another --out folder"
    )


@pytest.mark.parametrize(
    ("command", "sub", "writes"),
    [("cv", "folds", "its folds (image subsets, models, predictions)"),
     ("experiment", "elnet", "the SAM2-ELNet model")],
)  # fmt: skip
def test_weights_in_a_folder_the_run_writes_are_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, sub: str,
    writes: str,
) -> None:  # fmt: skip
    run = tmp_path / "run"
    weights = run / sub / "sam2.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"a checkpoint")
    argv = [command, "--data", str(data), "--out", str(run), "--weights", str(weights)]
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {run}: {command} writes {writes} into {run / sub}, which holds the "
        f"--weights file ({weights}); they would replace or mix with the inputs. Choose another "
        "--out folder"
    )


def test_run_folder_next_to_the_data_or_new_passes(data: Path, tmp_path: Path) -> None:
    """A new folder, one next to the dataset (holding a checkpoint), or inside the dataset folder
    but not one of its image/mask folders, is not refused (nothing is written by the check)."""
    beside = tmp_path / "cv"
    (beside / "folds").mkdir(parents=True)
    (beside / "sam2.pt").write_bytes(b"a checkpoint")  # files in OUT itself have fixed names
    for out in (tmp_path / "new", beside, data / "runs"):
        check_run_out(out, "cv", data, CV_PARTS, weights=beside / "sam2.pt")
    assert not (tmp_path / "new").exists() and not (data / "runs").exists()
