"""A partly reviewed CVAT task: the frames nobody edited are told apart from the reviewed ones.

The weak labels go to CVAT as `elnet export --format coco` (RLE masks, or polygons); the reviewer
draws on one frame, clears another and does not get to the third. CVAT's download holds every
frame, the untouched one with the uploaded label as it went out. `elnet import --from cvat
--reviewed-only` must give masks for the first two only (compared with the export's record,
`<stem>_coco_review.json`); without it all three come back, with a note naming the untouched one.
Before, the untouched frame was imported as a reviewed mask without a word and `--reviewed-only`
was refused for CVAT / COCO.

Also: two exports of one stem into one folder (`weak.gpkg`, then `weak.geojson`) shared
`weak_review.json`, and the second silently replaced the first one's record.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_logs import one_error_line as _one_error
from helpers_logs import run_main as _cli
from review_helpers import make_run

from sam2elnet.export.api import export_labels
from sam2elnet.export.coco_import import annotation_mask


def _fg(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1) == 255


def _cvat_rle(mask: np.ndarray) -> tuple[str, int, int, int, int]:
    """CVAT's ``<mask>`` of a bool mask: runs over its box, row by row, background first."""
    rr, cc = np.nonzero(mask)
    top, left = int(rr.min()), int(cc.min())
    crop = mask[top : rr.max() + 1, left : cc.max() + 1].ravel()
    edges = np.flatnonzero(np.diff(crop.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [crop.size]]))
    if crop[0]:
        runs = np.concatenate([[0], runs])
    h, w = mask[top : rr.max() + 1, left : cc.max() + 1].shape
    return ", ".join(str(int(r)) for r in runs), left, top, w, h


def _as_cvat_xml(coco: dict, edit: dict[str, str]) -> str:
    """annotations.xml as CVAT exports a task the COCO file was uploaded to: each annotation a
    ``<mask>`` (the uploaded pixels), then the reviewer's ``edit`` per image: ``draw`` adds a
    polygon, ``clear`` deletes every shape."""
    images = []
    for im in coco["images"]:
        h, w, name = im["height"], im["width"], im["file_name"]
        shapes = []
        if edit.get(name) != "clear":
            for a in coco["annotations"]:
                if a["image_id"] == im["id"]:
                    rle, left, top, mw, mh = _cvat_rle(
                        annotation_mask(a["segmentation"], h, w, a["bbox"])
                    )
                    shapes.append(
                        f'<mask label="oil spill" source="file" occluded="0" rle="{rle}" '
                        f'left="{left}" top="{top}" width="{mw}" height="{mh}" z_order="0"></mask>'
                    )
        if edit.get(name) == "draw":
            shapes.append(
                '<polygon label="oil spill" source="manual" occluded="0" '
                'points="1.00,1.00;6.00,1.00;6.00,5.00;1.00,5.00" z_order="0"></polygon>'
            )
        images.append(
            f'<image id="{im["id"] - 1}" name="{name}" width="{w}" height="{h}">'
            + "".join(shapes)
            + "</image>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task>'
        "<id>1</id><name>weak</name><labels><label><name>oil spill</name></label></labels>"
        "</task></meta>" + "".join(images) + "</annotations>\n"
    )


def _exported(tmp_path: Path, rle: bool) -> tuple[Path, Path, dict]:
    """The project's COCO export of three rejected labels: (coco file, images, its JSON)."""
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2, "c": 0.3})
    images = tmp_path / "images"
    coco = tmp_path / "cvat" / "weak.json"
    export_labels(run / "rejected", coco, images=images, coco_rle=rle, progress=False)
    assert (tmp_path / "cvat" / "weak_coco_review.json").is_file()
    return coco, images, json.loads(coco.read_text())


def test_partial_cvat_review_leaves_out_the_untouched_frames(tmp_path: Path, capsys) -> None:
    coco, images, data = _exported(tmp_path, rle=True)
    z = tmp_path / "cvat" / "task_1_annotations.zip"  # the download, saved beside the export
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", _as_cvat_xml(data, {"a.tif": "draw", "b.tif": "clear"}))

    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "m").glob("*.tif")) == ["a.tif", "b.tif"]
    assert "1 image comes back as exported" in err and "c.tif" in err, err
    assert "weak_coco_review.json" in err, err  # which record it compared with
    lab = _fg(tmp_path / "run" / "rejected" / "a.tif")
    drawn = lab.copy()
    drawn[1:5, 1:6] = True
    assert (_fg(tmp_path / "m" / "a.tif") == drawn).all()  # the correction, on its pixels
    assert not _fg(tmp_path / "m" / "b.tif").any()

    # without the option every frame comes back; the note names the untouched one
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m2", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert len(list((tmp_path / "m2").glob("*.tif"))) == 3
    assert "1 of 3 masks is the exported label unchanged (c.tif)" in err, err
    assert "--reviewed-only" in err


def test_partial_review_in_cvat_coco_export_of_polygons(tmp_path: Path, capsys) -> None:
    """Polygons out (the default), CVAT's "COCO 1.0" back: the untouched image is recognised
    (its polygons decode to the label's pixels), the record given with --review-set."""
    coco, images, data = _exported(tmp_path, rle=False)
    assert any(isinstance(a["segmentation"], list) for a in data["annotations"])
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 2]  # b cleared
    z = tmp_path / "dl" / "task.zip"  # saved elsewhere: the record is given
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations/instances_default.json", json.dumps(data))
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m", "--reviewed-only", "--review-set",
                      tmp_path / "cvat" / "weak_coco_review.json", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "m").glob("*.tif")] == ["b.tif"]
    assert "2 images come back as exported" in err and "a.tif, c.tif" in err, err

    # --from coco: the same rule
    rc, _, err = _cli(capsys, "import", z, "--from", "coco", "--images", images,
                      "--out", tmp_path / "m2", "--review-set",
                      tmp_path / "cvat" / "weak_coco_review.json", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "2 of 3 masks are the exported labels unchanged (a.tif, c.tif)" in err, err


def test_reviewed_only_without_a_record_is_one_error_line(tmp_path: Path, capsys) -> None:
    coco, images, data = _exported(tmp_path, rle=True)
    z = tmp_path / "dl" / "task.zip"
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", _as_cvat_xml(data, {}))
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert "--review-set" in _one_error(rc, err)
    assert not (tmp_path / "m").exists()
    # without the option: imported, and a note says the record was not found
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0 and "no review record" in err, err
    # every frame untouched: --reviewed-only leaves nothing, one error line says why
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m3", "--reviewed-only", "--review-set",
                      tmp_path / "cvat" / "weak_coco_review.json", "--no-progress")  # fmt: skip
    assert "every image comes back as exported" in _one_error(rc, err)
    assert not (tmp_path / "m3").exists()


def test_two_exports_of_one_stem_keep_their_records(tmp_path: Path, capsys) -> None:
    """weak.gpkg, weak.geojson and weak.json (COCO) in one folder: a record each (before, the
    GeoJSON's replaced the GeoPackage's weak_review.json). A record an older version wrote for
    weak.geojson as weak_review.json is still found by its import, and an export that would
    replace it (weak.gpkg) is one error line, nothing written."""
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2})
    out = tmp_path / "exp"

    def export(name: str) -> tuple[int, str]:
        rc, _, err = _cli(capsys, "export", "--labels", run / "rejected", "--out", out / name,
                          "--no-progress")  # fmt: skip
        return rc, err

    for name in ("weak.gpkg", "weak.geojson", "weak.json"):
        assert export(name)[0] == 0
    layers = {f.name: json.loads(f.read_text())["layer"] for f in sorted(out.glob("*_review.json"))}
    assert layers == {
        "weak_review.json": "weak.gpkg",
        "weak_geojson_review.json": "weak.geojson",
        "weak_coco_review.json": "weak.json",
    }
    assert export("weak.gpkg")[0] == 0  # the same export again

    # an older version's record of weak.geojson, under the GeoPackage's name
    (out / "weak.gpkg").unlink()
    (out / "weak_review.json").unlink()
    (out / "weak_geojson_review.json").rename(out / "weak_review.json")
    rc, _, err = _cli(capsys, "import", out / "weak.geojson", "--from", "vector", "--images",
                      tmp_path / "images", "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0 and "not in the review set" not in err and "no review set" not in err, err
    assert "2 of 2 masks are the exported labels unchanged" in err, err  # the record was read
    before = (out / "weak_review.json").read_bytes()
    rc, err = export("weak.gpkg")
    line = _one_error(rc, err)
    assert "weak_review.json" in line and "weak.geojson" in line and "another name" in line, line
    assert not (out / "weak.gpkg").exists()
    assert (out / "weak_review.json").read_bytes() == before


def test_vector_reviewed_only_without_a_record_is_one_error_line(tmp_path: Path, capsys):
    """Before, --reviewed-only without the layer's record imported every image without a word."""
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2})
    gp = tmp_path / "weak.gpkg"
    export_labels(run / "rejected", gp, progress=False)
    (tmp_path / "weak_review.json").unlink()
    rc, _, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                      "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert "--review-set" in _one_error(rc, err)
    assert not (tmp_path / "m").exists()


def test_frames_never_sent_for_review_get_no_mask(tmp_path: Path, capsys) -> None:
    """The CVAT task made from the whole images folder (docs/review.md, section 2) after a
    `--review-count` export: its download holds the frames never sent too. One nobody drew on
    gets no mask, so its kept auto-label stays in the next training set; one the reviewer drew
    on is imported. Before, every such frame came back as an all-background reviewed mask and
    replaced its auto-label in the training set."""
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.9, "e": 0.8})
    images = tmp_path / "images"
    coco = tmp_path / "cvat" / "weak.json"
    export_labels(run, coco, images=images, review_count=3, progress=False)
    data = json.loads(coco.read_text())
    assert sorted(im["file_name"] for im in data["images"]) == ["a.tif", "b.tif", "c.tif"]
    for i, name in ((4, "d.tif"), (5, "e.tif")):  # the task's other frames, nothing uploaded
        data["images"].append({"id": i, "file_name": name, "height": 40, "width": 48})
    z = tmp_path / "cvat" / "task_1_annotations.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", _as_cvat_xml(data, {"a.tif": "clear", "e.tif": "draw"}))

    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m", "--with-labels", run,
                      "--train-set", tmp_path / "train1", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "m").glob("*.tif")) == [
        "a.tif", "b.tif", "c.tif", "e.tif",
    ]  # fmt: skip
    drawn = np.zeros((40, 48), bool)
    drawn[1:5, 1:6] = True
    assert (_fg(tmp_path / "m" / "e.tif") == drawn).all()  # drawn on a frame not sent: kept
    assert not _fg(tmp_path / "m" / "a.tif").any()  # cleared: reviewed as empty
    assert "1 image of the download is not in the review record" in err and "d.tif" in err, err
    # d trains on its kept auto-label, not on an empty mask
    assert (_fg(tmp_path / "train1" / "masks" / "d.tif") == _fg(run / "labels" / "d.tif")).all()
    assert _fg(run / "labels" / "d.tif").any()


@pytest.mark.parametrize("gone", ["", "c"], ids=["all-found", "c-not-found"])
def test_segmentation_mask_notes_name_the_images_not_the_mask_files(
    tmp_path: Path, capsys, gone: str
):
    """CVAT's "Segmentation mask 1.1" names each image's mask ``<image stem>.png``: the notes
    named ``a.png`` for the image ``a.tif`` the user exported and knows (before). An image not
    under --images (``gone``) is named by its stem (``c.*``: its suffix is unknown) in every
    note, the not-found one too (it named the mask, ``c.png``, before)."""
    import io

    from PIL import Image

    coco, images, data = _exported(tmp_path, rle=True)
    oil = (250, 50, 83)

    def png(mask: np.ndarray) -> bytes:
        rgb = np.zeros((*mask.shape, 3), np.uint8)
        rgb[mask] = oil
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format="PNG")
        return buf.getvalue()

    drawn = _fg(tmp_path / "run" / "rejected" / "b.tif").copy()
    drawn[1:5, 1:6] = True
    z = tmp_path / "cvat" / "task_1_segmentation mask 1.1.zip"  # beside the export's record
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("labelmap.txt", "background:0,0,0::\noil spill:250,50,83::\n")
        zf.writestr("ImageSets/Segmentation/default.txt", "a\nb\nc\n")
        for name in ("a", "c"):  # as uploaded: untouched
            zf.writestr(f"SegmentationClass/{name}.png",
                        png(_fg(tmp_path / "run" / "rejected" / f"{name}.tif")))  # fmt: skip
        zf.writestr("SegmentationClass/b.png", png(drawn))

    c = "c.tif"
    if gone:
        (images / f"{gone}.tif").unlink()
        c = f"{gone}.*"
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0, err
    masks = sorted(p.name for p in (tmp_path / "m").glob("[abc].*"))
    assert masks == ["a.tif", "b.tif", "c.png" if gone else "c.tif"]
    # before: "(a.png, c.png)"
    assert f"2 of 3 masks are the exported labels unchanged (a.tif, {c})" in err, err
    if gone:  # before: "(c.png)"
        assert f"1 of 3 images of the Segmentation mask export is not in {images} (c.*)" in err
    rc, _, err = _cli(capsys, "import", z, "--from", "cvat", "--images", images,
                      "--out", tmp_path / "m2", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "2 images come back as exported" in err and f": a.tif, {c}" in err, err
    assert ".png" not in err.replace("mask 1.1.zip", ""), err
