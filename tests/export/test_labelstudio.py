"""Label Studio export/import without a server: brush RLE, task layout, order, masks back.

The round trip through a real Label Studio server is in test_labelstudio_server.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from review_helpers import label_mask, make_run

from sam2elnet.cli import main
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.brush import brush_decode, brush_encode
from sam2elnet.export.export_result import skipped_list_path
from sam2elnet.export.labelstudio import export_label_studio, label_config
from sam2elnet.export.labelstudio_import import import_label_studio, result_mask

SCORES = {"b_mid": 0.71, "a_bad": 0.12, "c_good": 0.93}


def test_brush_rle_round_trip_and_header():
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (3, 7), (33, 17), (64, 64)]:
        for p in (0.0, 0.02, 0.5, 1.0):
            m = rng.random((h, w)) < p
            assert np.array_equal(brush_decode(brush_encode(m), h, w), m)
    # header: 32-bit value count (H*W*4), word size 8 -> 7 in 5 bits, run widths 3,4,8,16 -> 2,3,7,15
    rle = brush_encode(np.zeros((2, 3), bool))
    bits = "".join(f"{b:08b}" for b in rle)
    assert int(bits[:32], 2) == 24
    assert int(bits[32:37], 2) == 7
    assert [int(bits[37 + 4 * i : 41 + 4 * i], 2) for i in range(4)] == [2, 3, 7, 15]
    # then one repeat chunk: flag 1, width class 1 (4 bits: 24-1=23 does not fit) -> class 2 (8 bits)
    assert bits[53] == "1" and int(bits[54:56], 2) == 2 and int(bits[56:64], 2) == 23
    assert int(bits[64:72], 2) == 0


def test_brush_decode_refuses_wrong_size_and_truncation():
    rle = brush_encode(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="needs"):
        brush_decode(rle, 4, 5)
    with pytest.raises(ValueError, match="truncated"):
        brush_decode(rle[:8], 4, 4)


def test_export_orders_least_trusted_first_with_scores_and_views(tmp_path: Path):
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "ls" / "tasks.json"
    res = export_label_studio(run, out, progress=False)
    tasks = json.loads(out.read_text())
    assert [t["data"]["name"] for t in tasks] == ["a_bad", "b_mid", "c_good"]
    assert [t["predictions"][0]["score"] for t in tasks] == [0.12, 0.71, 0.93]
    mv = {t["predictions"][0]["model_version"] for t in tasks}
    assert len(mv) == 1 and next(iter(mv)).startswith("model.pt@")
    assert res.n_tasks == 3 and res.document_root == out.parent.resolve()
    for t in tasks:
        url = t["data"]["image"]
        assert url.startswith("/data/local-files/?d=tasks-images/")
        view = out.parent / url.split("?d=")[1]
        import cv2

        png = cv2.imread(str(view), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and png.shape == (40, 48, 3)
        (r,) = t["predictions"][0]["result"]
        assert r["type"] == "brushlabels" and r["from_name"] == "label" and r["to_name"] == "image"
        lab = rasterio.open(t["data"]["label"]).read(1) > 127
        assert np.array_equal(brush_decode(r["value"]["rle"], 40, 48), lab)
    assert "<BrushLabels" in res.config.read_text()
    assert "<PolygonLabels" in label_config("oil", polygons=True)


def test_the_labelling_config_offers_brush_and_polygon_whatever_the_pre_annotations():
    """A reviewer can draw a polygon on brush pre-annotations and paint on polygon ones: both
    controls, the same one label, both bound to the image; the pre-annotations' tool first and
    each pre-annotation names the control of its type (was: only the --polygons tool)."""
    from xml.etree import ElementTree

    from sam2elnet.export.labelstudio import mask_result

    for polygons in (False, True):
        root = ElementTree.fromstring(label_config("oil spill", polygons=polygons))
        img = root.find("Image")
        ctrls = [c for c in root if c.tag in ("BrushLabels", "PolygonLabels")]
        assert [c.tag for c in ctrls] == (
            ["PolygonLabels", "BrushLabels"] if polygons else ["BrushLabels", "PolygonLabels"]
        )
        names = {c.tag: c.get("name") for c in ctrls}
        assert names == {"BrushLabels": "label", "PolygonLabels": "polygon"}
        for c in ctrls:
            assert c.get("toName") == img.get("name") == "image"
            assert [lab.get("value") for lab in c.iter("Label")] == ["oil spill"]
        mask = np.zeros((8, 8), bool)
        mask[2:5, 2:5] = True
        (r,) = mask_result(mask, "oil spill", polygons)
        tag = "PolygonLabels" if polygons else "BrushLabels"
        assert r["type"] == tag.lower() and r["from_name"] == names[tag]


def test_the_export_api_writes_label_studio_tasks_as_the_cli_does(tmp_path: Path):
    """``export_labels(fmt="label-studio")``, the API behind ``elnet export``, writes the same
    tasks as ``export_label_studio`` (it was refused as an unknown format: only the CLI chose
    Label Studio), with the CLI's ``--warp-to`` refusal and notes."""
    from sam2elnet.export.api import export_labels

    run = make_run(tmp_path, SCORES)
    res = export_labels(
        run, tmp_path / "api" / "tasks.json", "Label-Studio", polygons=True, progress=False,
        pixel_coords="qgis", centre_lines=True, simplify=2.0,
    )  # fmt: skip
    export_label_studio(run, tmp_path / "direct" / "tasks.json", polygons=True, progress=False)
    api, direct = (json.loads((tmp_path / d / "tasks.json").read_text()) for d in ("api", "direct"))
    assert [t["predictions"] for t in api] == [t["predictions"] for t in direct]
    assert res.n_tasks == 3 and [n.split(" applies")[0] for n in res.notes[-3:]] == [
        "--simplify",
        "--pixel-coords",
        "--centre-lines",
    ]
    with pytest.raises(UserError, match="--warp-to applies to polygon exports"):
        export_labels(run, tmp_path / "w" / "tasks.json", "label-studio", warp_to="utm")
    assert not (tmp_path / "w").exists()


def test_export_polygons_in_percent_fill_holes(tmp_path: Path):
    run = make_run(tmp_path, {"a": 0.3})
    out = tmp_path / "tasks.json"
    res = export_label_studio(run, out, polygons=True, model_id="m1", progress=False)
    (task,) = json.loads(out.read_text())
    regions = task["predictions"][0]["result"]
    assert {r["type"] for r in regions} == {"polygonlabels"}
    assert task["predictions"][0]["model_version"] == "m1"
    pts = np.array([p for r in regions for p in r["value"]["points"]])
    assert pts.min() >= 0 and pts.max() <= 100
    got = result_mask(regions, 40, 48)
    from scipy import ndimage

    want = ndimage.binary_fill_holes(label_mask(40, 48, 0))
    assert np.array_equal(got, want)
    assert any("holes" in n for n in res.notes)


def _annotated(tasks: list[dict], edits: dict[str, np.ndarray]) -> list[dict]:
    """What Label Studio exports after review: each task gets an annotation (edited or accepted)."""
    out = []
    for i, t in enumerate(tasks):
        t = json.loads(json.dumps(t))
        res = t["predictions"][0]["result"]
        name = t["data"]["name"]
        if name in edits:
            m = edits[name]
            res = [
                dict(
                    res[0],
                    value={"format": "rle", "rle": brush_encode(m), "brushlabels": ["foreground"]},
                )
            ]
        t["id"] = i + 1
        t["annotations"] = [
            {
                "id": 10 * i + 1,
                "result": [],
                "was_cancelled": True,
                "updated_at": "2026-01-02T00:00:00Z",
            },
            {
                "id": 10 * i + 2,
                "result": res,
                "was_cancelled": False,
                "updated_at": "2026-01-01T00:00:00Z",
            },
        ]
        out.append(t)
    return out


def test_import_writes_georeferenced_masks_named_like_images(tmp_path: Path):
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "tasks.json"
    export_label_studio(run, out, progress=False)
    edit = np.zeros((40, 48), bool)
    edit[5:15, 7:30] = True
    exported = tmp_path / "export.json"
    tasks = _annotated(json.loads(out.read_text()), {"b_mid": edit})
    tasks.append(
        {
            "id": 99,
            "data": {"image": "/data/local-files/?d=x/zz.png", "name": "zz"},
            "annotations": [],
        }
    )
    exported.write_text(json.dumps(tasks))
    res = import_label_studio(exported, tmp_path / "masks", progress=False)
    assert sorted(p.name for p in res.written) == ["a_bad.tif", "b_mid.tif", "c_good.tif"]
    assert res.skipped == [("zz", "not reviewed yet (no annotation)")]
    for name in SCORES:
        with (
            rasterio.open(tmp_path / "masks" / f"{name}.tif") as m,
            rasterio.open(tmp_path / "images" / f"{name}.tif") as img,
        ):
            assert m.crs == img.crs and m.transform == img.transform
            got = m.read(1)
        assert set(np.unique(got)) <= {0, 255}
        sub = "labels" if SCORES[name] >= 0.5 else "rejected"
        want = edit if name == "b_mid" else rasterio.open(run / sub / f"{name}.tif").read(1) > 127
        assert np.array_equal(got > 0, want), name


def test_import_errors(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        import_label_studio(tmp_path / "nope.json", tmp_path / "m")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON"):
        import_label_studio(bad, tmp_path / "m")
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps([{"data": {"image": "a.png"}, "annotations": []}]))
    with pytest.raises(DataError, match="no task has a usable annotation"):
        import_label_studio(empty, tmp_path / "m")
    with pytest.raises(UserError, match=r"\.json"):
        export_label_studio(tmp_path, tmp_path / "tasks.txt")


def test_cli_export_import_and_errors(tmp_path: Path, capsys):
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "tasks.json"
    rc = main(
        [
            "export",
            "--labels",
            str(run),
            "--out",
            str(out),
            "--format",
            "label-studio",
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "3 Label Studio tasks" in capsys.readouterr().out
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(_annotated(json.loads(out.read_text()), {})))
    rc = main(
        [
            "import",
            str(exported),
            "--from",
            "label-studio",
            "--out",
            str(tmp_path / "masks"),
            "--no-progress",
        ]
    )
    assert rc == 0 and len(list((tmp_path / "masks").glob("*.tif"))) == 3
    capsys.readouterr()
    rc = main(["import", str(exported), "--from", "xml", "--out", str(tmp_path / "m2")])
    err = capsys.readouterr().err
    assert (
        rc == 2 and err.startswith("error: unknown --from") and len(err.strip().splitlines()) == 1
    )
    rc = main(
        [
            "export",
            "--labels",
            str(run),
            "--out",
            str(out),
            "--format",
            "label-studio",
            "--document-root",
            str(tmp_path / "elsewhere"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "not inside the document root" in err


def test_import_of_uploaded_images_drops_the_upload_prefix(tmp_path: Path):
    """Images uploaded to Label Studio (not served as local files) come back as
    /data/upload/<project>/<uuid8>-<name>: the masks were named '8f2a1c3b-a_bad.png' and did
    not pair with a_bad.tif in --images (nor in `elnet train`)."""
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "tasks.json"
    export_label_studio(run, out, progress=False)
    tasks = _annotated(json.loads(out.read_text()), {})
    for t in tasks:
        t["data"] = {"image": f"/data/upload/3/8f2a1c3b-{t['data']['name']}.png"}
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(tasks))
    res = import_label_studio(exported, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert sorted(p.name for p in res.written) == ["a_bad.tif", "b_mid.tif", "c_good.tif"]
    with rasterio.open(tmp_path / "m" / "a_bad.tif") as m:
        with rasterio.open(tmp_path / "images" / "a_bad.tif") as img:
            assert m.crs == img.crs and m.transform == img.transform


def test_a_partly_reviewed_batch_says_in_one_line_per_reason_what_was_left_out(
    tmp_path: Path, capsys
):
    """12 tasks out, 2 reviewed, 1 skipped by the reviewer: 2 notes, not 10 lines."""
    from sam2elnet.cli import main

    names = [f"t{i:02d}" for i in range(12)]
    run = make_run(tmp_path, {n: 0.1 + 0.05 * i for i, n in enumerate(names)}, h=16, w=20)
    out = tmp_path / "tasks.json"
    export_label_studio(run, out, progress=False)
    tasks = json.loads(out.read_text())
    for i, t in enumerate(tasks):
        t["id"] = i + 1
        t["annotations"] = []
    for t in tasks[:2]:  # reviewed: the prediction accepted
        t["annotations"] = [{"id": t["id"], "result": t["predictions"][0]["result"]}]
    tasks[2]["annotations"] = [{"id": 50, "result": [], "was_cancelled": True}]
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(tasks))
    capsys.readouterr()
    rc = main(["import", str(exported), "--from", "label-studio", "--out", str(tmp_path / "m"),
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 2, err
    skipped = tasks[2]["data"]["name"]
    assert f"skipped {skipped}: the reviewer skipped it in Label Studio" in notes[0]
    assert notes[1].startswith("note: skipped 9 tasks, not reviewed yet (no annotation): "), err
    assert "(+4)" in notes[1]


def test_a_polygon_with_unreadable_points_skips_its_task_with_a_note(tmp_path: Path, capsys):
    """A polygon region whose points are not [x, y] pairs (an export edited by hand or cut
    short) skips that task with a note naming it, as an unreadable brush mask does; the other
    tasks are imported. Before, the import stopped with a traceback (exit 1)."""
    bad = [
        {"type": "polygonlabels", "value": {"points": [[1, 2], [3]]}},
        {"type": "polygonlabels", "value": {"points": [[1, 2], ["x", 4], [5, 6]]}},
        {"type": "polygonlabels", "value": {}},
    ]
    for region in bad:
        with pytest.raises(DataError, match="unreadable polygon points"):
            result_mask([region], 40, 48)
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "tasks.json"
    export_label_studio(run, out, progress=False)
    tasks = _annotated(json.loads(out.read_text()), {})
    tasks[0]["annotations"][1]["result"] = [bad[0]]  # [0] is a cancelled one
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(tasks))
    capsys.readouterr()
    rc = main(["import", str(exported), "--from", "label-studio", "--out",
               str(tmp_path / "masks"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    name = tasks[0]["data"]["name"]
    assert f"note: skipped {name}: unreadable polygon points" in err, err
    assert "Traceback" not in err
    assert len(list((tmp_path / "masks").glob("*.tif"))) == len(SCORES) - 1


def test_images_not_under_the_given_images_folder_are_named(tmp_path: Path, capsys):
    """--images a folder that holds none of the reviewed tasks' images (the wrong folder): the
    masks were made silently from each task's data.source instead; now a note names them, so
    a user who meant those images to give the size and georeference checks the folder."""
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "tasks.json"
    export_label_studio(run, out, progress=False)
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(_annotated(json.loads(out.read_text()), {})))
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "images" / "a_bad.tif").rename(other / "a_bad.tif")  # only this one there
    capsys.readouterr()
    rc = main(["import", str(exported), "--from", "label-studio", "--images", str(other),
               "--out", str(tmp_path / "masks"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert len(list((tmp_path / "masks").glob("*.tif"))) == len(SCORES)
    assert (
        f"note: 2 masks took their image from the task's data.source or the document root, "
        f"not from --images {other} (no image of that name there): b_mid.tif, c_good.tif" in err
    ), err


def test_an_unreadable_label_is_skipped_as_in_every_other_export(tmp_path: Path, capsys):
    """The batch rule (docs/reliability.md): an unreadable label of a folder is skipped and
    listed in `<out stem>_label-studio_skipped.csv`, the others exported, exit 0 with the
    `N of M skipped` last line. The polygon and COCO exports did so; the Label Studio export stopped with an
    error and wrote no task."""
    run = make_run(tmp_path, SCORES)
    (run / "rejected" / "a_bad.tif").write_bytes(b"not a raster")
    out = tmp_path / "ls" / "tasks.json"
    capsys.readouterr()
    rc = main(["export", "--labels", str(run), "--format", "label-studio", "--out", str(out),
               "--no-progress"])  # fmt: skip
    std, err = capsys.readouterr()
    assert rc == 0, err
    assert [t["data"]["name"] for t in json.loads(out.read_text())] == ["b_mid", "c_good"]
    skipped = tmp_path / "ls" / "tasks_label-studio_skipped.csv"
    assert std.strip().splitlines()[-1] == f"1 of 3 skipped, see {skipped}", std
    assert "a_bad.tif" in skipped.read_text()
    assert "warning: skipping" in err and "a_bad.tif" in err, err
    # exported again with nothing to skip: the old list goes
    (run / "rejected" / "a_bad.tif").unlink()
    rc = main(["export", "--labels", str(run), "--format", "label-studio", "--out", str(out),
               "--no-progress"])  # fmt: skip
    assert rc == 0 and not skipped.exists()


@pytest.mark.parametrize(
    "out_name", ["tasks.json", "labels.geojson"], ids=["label-studio", "geojson"]
)
def test_the_run_folder_note_counts_the_labels_exported_not_the_skipped(
    tmp_path: Path, capsys, out_name: str
):
    """A run folder with 2 kept and 2 rejected labels, one rejected unreadable (skipped, listed
    in the export's skipped list): the note counts the 1 rejected label exported; it counted 2,
    the labels before the unreadable one was skipped."""
    run = make_run(tmp_path, {**SCORES, "d_low": 0.3})
    (run / "rejected" / "a_bad.tif").write_bytes(b"not a raster")
    out = tmp_path / "out" / out_name
    fmt = "label-studio" if out_name.endswith(".json") else "geojson"
    capsys.readouterr()
    rc = main(["export", "--labels", str(run), "--format", fmt, "--out", str(out),
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "a_bad.tif" in skipped_list_path(out, fmt).read_text()
    # before: "... and 2 the quality filter rejected"
    assert (
        f"{run} is an annotate/enhance run folder: exported 2 kept labels (labels/) and 1 the "
        "quality filter rejected (rejected/)" in " ".join(err.split())
    ), err


def test_a_wrong_images_folder_is_named_for_tasks_found_nowhere(tmp_path: Path, capsys):
    """--images a folder without the tasks' images, and no data.source to fall back on (an
    export of images uploaded to Label Studio): a task whose regions give its size got a PNG
    mask without georeference silently, and an empty task was skipped with 'give --images'
    although --images was given; now both notes name the --images folder."""
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "tasks.json"
    export_label_studio(run, out, progress=False)
    tasks = _annotated(json.loads(out.read_text()), {})
    for t in tasks:
        del t["data"]["source"]
    tasks[0]["annotations"][-1]["result"] = []  # reviewed: nothing there
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(tasks))
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    capsys.readouterr()
    rc = main(["import", str(exported), "--from", "label-studio", "--images", str(wrong),
               "--out", str(tmp_path / "masks"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    first = tasks[0]["data"]["name"]
    rest = sorted(t["data"]["name"] for t in tasks[1:])
    assert sorted(p.name for p in (tmp_path / "masks").glob("*.png")) == [f"{n}.png" for n in rest]
    assert (
        f"note: skipped {first}: source image not under --images {wrong} and no size in the "
        "annotation; give --images the folder the annotated images came from" in err
    ), err
    assert "; give --images\n" not in err, err
    assert (
        f"note: 2 masks were made from the annotation's image size alone, as PNG without "
        f"georeference: no image of that name under --images {wrong}: "
        f"{rest[0]}.png, {rest[1]}.png" in err
    ), err
