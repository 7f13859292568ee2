"""`elnet import` as a reviewer uses it twice: faults found in the review loop.

* ``--from vector`` wrote a mask for every image of ``--images``, also for images that were never
  exported for review (an all-background label made up for them); now the export's review set
  (``<layer>_review.json``) decides, and an image whose polygons were all deleted still gets its
  (empty) mask;
* re-importing into the same ``--out`` left the masks of tasks that are skipped now; a failed
  import could leave ``--out`` half written;
* Label Studio's JSON-MIN export was refused although it carries the regions and the task data;
* ``summary.json`` stored the model path as typed (relative): an export from another folder lost
  the model version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import write_png
from helpers_logs import run_main_err as _cli
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.data.naming import IMPORT_RECORD
from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.export.labelstudio_import import import_label_studio
from sam2elnet.export.vector_import import import_vector

H, W = 30, 40


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 0


def _block(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


def _qgis_review(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Labels a (a block), b (a block), c (empty) of PNG images a, b, c, plus an image `extra`
    that was never exported; exported to review.gpkg (QGIS pixel frame)."""
    labels = {"a": _block(2, 10, 3, 12), "b": _block(15, 25, 20, 30), "c": np.zeros((H, W), bool)}
    for name, m in labels.items():
        (tmp_path / "labels").mkdir(exist_ok=True)
        Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "labels" / f"{name}.png")
    for name in (*labels, "extra"):
        write_png(tmp_path / "images" / f"{name}.png", np.full((H, W), 80, np.uint8))
    gp = tmp_path / "review.gpkg"
    export_labels(tmp_path / "labels", gp, progress=False, pixel_coords="qgis")
    return gp, labels


def test_vector_import_makes_masks_for_the_review_set_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gp, labels = _qgis_review(tmp_path)
    record = json.loads((tmp_path / "review_review.json").read_text())
    assert [(e["source"], e["polygons"]) for e in record["images"]] == [
        ("a.png", 1),
        ("b.png", 1),
        ("c.png", 0),
    ]
    # the reviewer deletes b's polygon (no object there) and saves the layer in place
    g = gpd.read_file(gp, layer="labels")
    g[g["source"] != "b.png"].to_file(gp, layer="labels")
    out = tmp_path / "masks"
    rc, err = _cli(
        capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
        "--out", out, "--no-progress",
    )  # fmt: skip
    assert rc == 0, err
    assert sorted(f.name for f in out.iterdir() if f.name[0] != ".") == ["a.png", "b.png", "c.png"]
    assert np.array_equal(_png(out / "a.png"), labels["a"])
    assert not _png(out / "b.png").any() and not _png(out / "c.png").any()  # reviewed: no object
    assert "1 image of" in err and "is not in the review set (review_review.json)" in err
    # --all-images: every image gets a mask, the unreviewed one all background
    res = import_vector(gp, out, images=tmp_path / "images", all_images=True, progress=False)
    assert len(res.written) == 4 and not _png(out / "extra.png").any()
    # after QGIS "Save As" under another name the record is given with --review-set
    moved = tmp_path / "saved_as.gpkg"
    g[g["source"] != "b.png"].to_file(moved, layer="labels")
    res = import_vector(moved, tmp_path / "m2", images=tmp_path / "images", progress=False)
    assert sorted(p.name for p in res.written) == ["a.png"]  # the layer alone names only a
    assert any("have no feature in the layer" in n for n in res.notes)
    res = import_vector(
        moved,
        tmp_path / "m2",
        images=tmp_path / "images",
        review_set=tmp_path / "review_review.json",
        progress=False,
    )
    assert sorted(p.name for p in res.written) == ["a.png", "b.png", "c.png"]


def test_vector_import_review_set_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gp, _ = _qgis_review(tmp_path)
    (tmp_path / "other").mkdir()
    write_png(tmp_path / "other" / "z.png", np.zeros((H, W), np.uint8))
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    for args, want in (
        (["--images", tmp_path / "other"], "no image of"),
        (["--images", tmp_path / "images", "--review-set", bad], "not a review set"),
        (["--images", tmp_path / "images", "--out", tmp_path / "images"], "folder of the --images"),
    ):
        full = ["import", gp, "--from", "vector", "--out", tmp_path / "m", *args]
        rc, err = _cli(capsys, *full)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and want in err, (args, err)
    assert not (tmp_path / "m").exists()
    rc, err = _cli(
        capsys, "import", gp, "--from", "coco", "--all-images", "--out", tmp_path / "m"
    )  # fmt: skip
    assert rc == 2 and "applies to --from vector" in err


# --------------------------------------------------------------------------- re-import, --out


def _ls_export(tmp_path: Path, masks: dict[str, np.ndarray | None], name: str) -> Path:
    """A Label Studio JSON export: one task per image; None = not annotated (skipped)."""
    tasks = []
    for i, (stem, m) in enumerate(masks.items()):
        anns = [] if m is None else [{"id": i, "result": mask_result(m, "oil spill")}]
        tasks.append(
            {"id": i, "data": {"image": f"/x/{stem}.png", "name": stem}, "annotations": anns}
        )
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    return path


def test_reimport_leaves_exactly_the_current_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for stem in "abc":
        write_png(tmp_path / "images" / f"{stem}.png", np.full((H, W), 50, np.uint8))
    a, b, c = _block(1, 5, 1, 5), _block(10, 20, 10, 20), _block(0, 3, 30, 40)
    first = _ls_export(tmp_path, {"a": a, "b": b, "c": c}, "first.json")
    out = tmp_path / "masks"
    res = import_label_studio(first, out, images=tmp_path / "images", progress=False)
    assert sorted(p.name for p in res.written) == ["a.png", "b.png", "c.png"] and not res.removed
    # b was skipped in the second round: its old mask must not stay behind
    second = _ls_export(tmp_path, {"a": b, "b": None, "c": c}, "second.json")
    capsys.readouterr()
    rc = main(
        ["import", str(second), "--from", "label-studio", "--images", str(tmp_path / "images"),
         "--out", str(out), "--no-progress"]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert sorted(f.name for f in out.iterdir()) == [IMPORT_RECORD, "a.png", "c.png"]
    assert np.array_equal(_png(out / "a.png"), b)
    assert "removed 1 mask an earlier import wrote" in printed.err and "b.png" in printed.err
    assert "2 masks written; 1 skipped; 1 stale mask of the earlier import removed" in printed.out
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    # a mask no import wrote (hand label): refused, nothing changed
    write_png(out / "hand.png", np.zeros((H, W), np.uint8))
    with pytest.raises(UserError, match="no earlier elnet import wrote"):
        import_label_studio(first, out, images=tmp_path / "images", progress=False)
    (out / "hand.png").unlink()
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    # a failure half way (disk full on the second mask): --out as it was, no temporary folder
    import sam2elnet.data.writers as writers

    real, calls = writers.write_mask, []

    def failing(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise OSError("simulated: no space left on device")
        return real(*args, **kw)

    monkeypatch.setattr(writers, "write_mask", failing)
    with pytest.raises(OSError, match="simulated"):
        import_label_studio(first, out, images=tmp_path / "images", progress=False)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_failed_first_import_leaves_no_folder(tmp_path: Path) -> None:
    export = _ls_export(tmp_path, {"a": None}, "none.json")
    with pytest.raises(Exception, match="no task has a usable annotation"):
        import_label_studio(export, tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------ JSON-MIN


def _json_min(tasks: list[dict]) -> list[dict]:
    """Label Studio's JSON-MIN records of JSON-export tasks, built by the converter's rules
    (label_studio_sdk.converter: one record per non-cancelled annotation, newest first; the task's
    data at the top, ``id``; per from_name its regions' value + original size, the ``type`` its
    prettify step pops; a task without annotations: one record with annotation_id null)."""
    out = []
    for t in tasks:
        anns = sorted(t["annotations"], key=lambda a: a.get("created_at", ""), reverse=True)
        for ann in anns or [None]:
            rec = dict(t["data"])
            rec["id"] = t["id"]
            outputs: dict[str, list[dict]] = {}
            for r in (ann or {}).get("result", []):
                v = dict(r["value"])
                v.update(original_width=r["original_width"], original_height=r["original_height"])
                outputs.setdefault(r["from_name"], []).append(v)
            rec.update(outputs)  # replaces the data entry "label" (the control's name)
            rec.update(
                annotator=1,
                annotation_id=None if ann is None else ann["id"],
                created_at=None if ann is None else ann.get("created_at"),
                updated_at=None if ann is None else ann.get("updated_at"),
                lead_time=None,
            )
            out.append(rec)
    return out


def test_label_studio_json_min_export_gives_the_json_exports_masks(tmp_path: Path) -> None:
    brush, poly, old = _block(2, 9, 4, 15), _block(12, 24, 6, 30), _block(0, 4, 0, 4)
    t = "2026-12-0{}T10:00:00Z"

    def ann(i: int, m: np.ndarray, polygons: bool, day: int) -> dict:
        res = mask_result(m, "oil spill", polygons)
        return {"id": i, "result": res, "created_at": t.format(day), "updated_at": t.format(day)}

    tasks = [  # data as `elnet export --format label-studio` writes it ("label": the label file)
        {"id": 1, "data": {"image": "/d/a.png", "name": "a", "label": "/r/a.png"},
         "annotations": [ann(10, old, False, 1), ann(11, brush, False, 2)]},
        {"id": 2, "data": {"image": "/d/b.png", "name": "b", "label": "/r/b.png"},
         "annotations": [ann(12, poly, True, 1)]},
        {"id": 3, "data": {"image": "/d/c.png", "name": "c", "label": "/r/c.png"},
         "annotations": [{"id": 13, "result": [], "created_at": t.format(1)}]},
        {"id": 4, "data": {"image": "/d/d.png", "name": "d", "label": "/r/d.png"},
         "annotations": []},
    ]  # fmt: skip
    (tmp_path / "full.json").write_text(json.dumps(tasks))
    (tmp_path / "min.json").write_text(json.dumps(_json_min(tasks)))
    for stem in "abcd":
        write_png(tmp_path / "images" / f"{stem}.png", np.full((H, W), 50, np.uint8))
    kw = {"images": tmp_path / "images", "progress": False}
    full = import_label_studio(tmp_path / "full.json", tmp_path / "mf", **kw)
    mini = import_label_studio(tmp_path / "min.json", tmp_path / "mm", **kw)
    # c: submitted without any region (no oil) -> an empty mask; d: not reviewed -> skipped
    want = ["a.png", "b.png", "c.png"]
    assert [p.name for p in mini.written] == [p.name for p in full.written] == want
    assert [s for s, _ in mini.skipped] == [s for s, _ in full.skipped] == ["d"]
    assert np.array_equal(_png(tmp_path / "mm" / "a.png"), brush)  # the newer annotation
    for name in want:
        assert np.array_equal(_png(tmp_path / "mm" / name), _png(tmp_path / "mf" / name))
    assert _png(tmp_path / "mm" / "b.png").sum() == poly.sum()
    assert not _png(tmp_path / "mm" / "c.png").any()


# ------------------------------------------------------------------------ summary.json model


def test_summary_records_the_model_absolute_and_old_relative_ones_still_read(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers_data import trained_run

    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.export.run_info import labels_model_version

    run = trained_run(tmp_path_factory)
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    (work / "models" / "m.pt").write_bytes(Path(run["model"]).read_bytes())
    rng = np.random.default_rng(0)  # content: a constant image is unusable (exit 2)
    write_png(work / "imgs" / "x.png", rng.integers(40, 200, (32, 32), dtype=np.uint8))
    monkeypatch.chdir(work)
    annotate_folder("models/m.pt", "imgs", "loop/auto", progress=False, precision="32")
    summary = json.loads((work / "loop" / "auto" / "summary.json").read_text())
    assert summary["model"] == str(work / "models" / "m.pt")
    monkeypatch.chdir(tmp_path)  # an export started from elsewhere still names the model
    assert labels_model_version(work / "loop" / "auto").startswith("m.pt@")
    # a summary written before: "models/m.pt" as typed; found from a folder above the run
    summary["model"] = "models/m.pt"
    (work / "loop" / "auto" / "summary.json").write_text(json.dumps(summary))
    assert labels_model_version(work / "loop" / "auto").startswith("m.pt@")
    assert os.getcwd() == str(tmp_path)


@pytest.mark.parametrize(
    ("source", "kw", "words"),
    [
        ("coco", {"line_width": 3.0}, "--line-width applies to --from vector (line layers"),
        ("cvat", {"line_width_unit": "px"}, "--line-width-px applies to --from vector"),
        ("label-studio", {"all_images": True}, "--all-images applies to --from vector (QGIS"),
        ("label-studio", {"reviewed_only": True}, "--reviewed-only applies to --from vector, cvat"),
        ("label-studio", {"review_set": "r.json"}, "--review-set applies to --from vector, cvat"),
        (
            "vector",
            {"all_images": True, "reviewed_only": True},
            "--all-images (a mask for every image) and",
        ),
    ],
)
def test_import_labels_refuses_options_its_source_does_not_take(tmp_path, source, kw, words):
    """The rules `elnet import` applies to --from hold for Python callers too (ImportOptions):
    the same one-line message, raised before anything is read or written."""
    from sam2elnet.export.review_import import import_labels

    export = tmp_path / "export.json"
    export.write_text("{}")
    with pytest.raises(UserError) as err:
        import_labels(source, export, tmp_path / "m", images=tmp_path, progress=False, **kw)
    assert str(err.value).startswith(words), str(err.value)
    assert not (tmp_path / "m").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]


def test_import_options_allow_what_the_source_takes():
    """The same options pass with a source that takes them (or a source not known yet)."""
    from sam2elnet.option_checks import check_options
    from sam2elnet.options import ImportOptions

    got = check_options(ImportOptions, source="vector", line_width=3.0, all_images=True)
    assert (got.line_width, got.all_images, got.reviewed_only) == (3.0, True, False)
    got = check_options(ImportOptions, source="coco", reviewed_only=True, review_set="r.json")
    assert (got.reviewed_only, got.review_set) == (True, Path("r.json"))
    assert check_options(ImportOptions, all_images=True, line_width_unit="px").all_images is True
