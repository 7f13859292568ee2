"""`elnet import` of reviewers' edits as CVAT and QGIS write them (H5's new-user pass).

Faults found by exporting weak SOS labels for CVAT, editing the file as CVAT's export looks
(1-based ids, ``attributes``, uncompressed RLE with ``iscrowd`` 1, image names with the task's
folders, rectangles as a bbox without segmentation) and importing it back:

* a self-intersecting polygon (a reviewer's "bow tie") lost one lobe (``buffer(0)``), in the
  Label Studio import too; pycocotools, the COCO reference, fills both;
* a rectangle (bbox, empty segmentation) was dropped without a word;
* images named ``folder/name`` were not found under ``--images`` (a GeoTIFF's mask lost its
  georeference), and an ``--images`` folder holding none of the images was not noticed;
* two images with one name in different folders gave one mask, silently overwritten;
* CVAT's download (a zip holding ``annotations/instances_default.json``) and its XML format got
  "not a JSON file (utf-8 codec ...)";
* a file with several categories (oil spill, look-alike) was unioned into one mask silently;
* QGIS: a layer with a self-intersecting polygon in each of two images said "repaired 1 invalid
  geometries" (the reader's note per image, shown once).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_logs import run_main_err as _cli
from review_helpers import make_run

from sam2elnet.export.api import export_labels
from sam2elnet.export.coco_import import annotation_mask, import_coco
from sam2elnet.export.labelstudio_import import result_mask
from sam2elnet.export.vector_import import import_vector

# pycocotools 2.0.x on numpy 2 warns about its own np.array(copy=False) call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# x, y: crosses itself at (30, 25); no pixel centre on an edge, so the fill rules cannot differ
BOW_TIE = [10.0, 10.0, 50.0, 40.0, 50.0, 10.0, 10.0, 40.0]
ATTRS = {"occluded": False, "rotation": 0.0}


def _cvat_file(path: Path, images: list[dict], annotations: list[dict], cats=("oil spill",)):
    """A COCO file with the fields CVAT's "COCO 1.0" export writes."""
    coco = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },  # fmt: skip
        "categories": [{"id": i + 1, "name": c, "supercategory": ""} for i, c in enumerate(cats)],
        "images": [
            dict(im, license=0, flickr_url="", coco_url="", date_captured=0) for im in images
        ],
        "annotations": [
            dict({"category_id": 1, "iscrowd": 0, "attributes": ATTRS, "area": 0.0}, id=i + 1, **a)
            for i, a in enumerate(annotations)
        ],
    }
    path.write_text(json.dumps(coco))
    return path


def test_self_intersecting_polygon_is_filled_as_pycocotools_fills_it(tmp_path: Path):
    mask_utils = pytest.importorskip("pycocotools.mask")
    ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([BOW_TIE], 64, 64))) > 0
    assert ref.sum() == 600  # both triangles (one is 300)
    got = annotation_mask([BOW_TIE], 64, 64)
    assert np.array_equal(got, ref)
    # Label Studio polygons (points in percent of the image) take the same rule
    pts = [[x * 100 / 64, y * 100 / 64] for x, y in zip(BOW_TIE[::2], BOW_TIE[1::2], strict=True)]
    region = {"type": "polygonlabels", "value": {"points": pts, "polygonlabels": ["oil spill"]}}
    assert np.array_equal(result_mask([region], 64, 64), ref)


def test_cvat_rectangle_is_filled_and_counted(tmp_path: Path, capsys):
    p = _cvat_file(
        tmp_path / "instances_default.json",
        [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
        [{"image_id": 1, "segmentation": [], "bbox": [5.0, 4.0, 10.0, 6.0], "area": 60.0}],
    )
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--out", tmp_path / "m", "--no-progress")
    assert rc == 0, err
    from PIL import Image

    got = np.array(Image.open(tmp_path / "m" / "a.png")) > 0
    want = np.zeros((30, 40), bool)
    want[4:10, 5:15] = True
    assert np.array_equal(got, want)
    assert "1 rectangle" in err


def test_image_names_with_folders_are_found_and_keep_georeference(tmp_path: Path, capsys):
    run = make_run(tmp_path, {"a": 0.3, "b": 0.8})
    # the images as a CVAT task made from a folder tree holds them: palsar/a.tif, sentinel/b.tif
    root = tmp_path / "tree"
    for name, sub in (("a", "palsar"), ("b", "sentinel")):
        (root / sub).mkdir(parents=True)
        shutil.copy(tmp_path / "images" / f"{name}.tif", root / sub / f"{name}.tif")
    seg = {"counts": [0, 40 * 48], "size": [40, 48]}  # uncompressed RLE, all foreground
    p = _cvat_file(
        tmp_path / "instances_default.json",
        [
            {"id": 1, "file_name": "palsar/a.tif", "width": 48, "height": 40},
            {"id": 2, "file_name": "sentinel/b.tif", "width": 48, "height": 40},
        ],
        [{"image_id": 1, "segmentation": seg, "bbox": [0, 0, 48, 40], "iscrowd": 1}],
    )
    res = import_coco(p, tmp_path / "m", images=root, progress=False)
    assert sorted(q.name for q in res.written) == ["a.tif", "b.tif"]
    with rasterio.open(tmp_path / "m" / "a.tif") as d:
        assert d.crs is not None and d.transform.a == 10 and (d.read(1) == 255).all()
    assert run.is_dir()
    # --images that holds none of the images: one error line, nothing written
    (tmp_path / "other").mkdir()
    shutil.copy(tmp_path / "images" / "a.tif", tmp_path / "other" / "zz.tif")
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--images", tmp_path / "other",
                   "--out", tmp_path / "m2", "--no-progress")  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "palsar/a.tif" in err and "--images" in err
    assert "CVAT" not in err  # a COCO file from any tool (it said "the CVAT task's images")
    assert "give the folder the annotated images came from" in err
    assert not (tmp_path / "m2").exists()
    # some found: the others get a PNG from the COCO size, and a note says so
    (root / "sentinel" / "b.tif").unlink()
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--images", root,
                   "--out", tmp_path / "m3", "--no-progress")  # fmt: skip
    assert rc == 0 and "1 of 2 images" in err and "sentinel/b.tif" in err, err
    assert sorted(q.name for q in (tmp_path / "m3").glob("*.*") if q.name[0] != ".") == [
        "a.tif",
        "b.png",
    ]


def test_two_images_with_one_name_are_an_error(tmp_path: Path, capsys):
    p = _cvat_file(
        tmp_path / "c.json",
        [
            {"id": 1, "file_name": "palsar/00001.jpg", "width": 8, "height": 8},
            {"id": 2, "file_name": "sentinel/00001.jpg", "width": 8, "height": 8},
        ],
        [],
    )
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--out", tmp_path / "m", "--no-progress")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "palsar/00001.jpg" in err and "sentinel/00001.jpg" in err
    assert not (tmp_path / "m").exists()


def test_cvat_zip_is_read_and_xml_is_refused_with_the_remedy(tmp_path: Path, capsys):
    seg = [[2.0, 2.0, 6.0, 2.0, 6.0, 5.0, 2.0, 5.0]]
    p = _cvat_file(
        tmp_path / "instances_default.json",
        [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
        [{"image_id": 1, "segmentation": seg, "bbox": [2, 2, 4, 3]}],
    )
    z = tmp_path / "task_1_coco 1.0.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(p, "annotations/instances_default.json")
    rc, err = _cli(capsys, "import", z, "--from", "cvat", "--out", tmp_path / "m", "--no-progress")
    assert rc == 0, err
    from PIL import Image

    assert (np.array(Image.open(tmp_path / "m" / "a.png")) > 0).sum() == 12
    # a zip without a COCO file (e.g. "CVAT for images 1.1"), and the XML itself: --from cvat
    bad = tmp_path / "cvat_xml.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("annotations.xml", "<annotations><version>1.1</version></annotations>")
    xml = tmp_path / "annotations.xml"
    xml.write_text('<?xml version="1.0"?>\n<annotations><version>1.1</version></annotations>')
    broken = tmp_path / "broken.zip"
    broken.write_bytes(z.read_bytes()[:-30])  # a download cut short: no central directory end
    cut = tmp_path / "cut.zip"
    data = bytearray(z.read_bytes())
    data[60:70] = b"\0" * 10  # compressed bytes damaged, the directory intact
    cut.write_bytes(bytes(data))
    nosize = _cvat_file(tmp_path / "nosize.json", [{"id": 1, "file_name": "a.jpg"}], [])
    for f, what in ((broken, "download the export again"), (cut, "unreadable zip (BadZipFile"),
                    (nosize, "width and height")):  # fmt: skip
        rc, err = _cli(capsys, "import", f, "--from", "coco", "--out", tmp_path / "x")
        assert rc == 2 and len(err.strip().splitlines()) == 1 and what in err, err
    for f in (bad, xml):
        rc, err = _cli(capsys, "import", f, "--from", "coco", "--out", tmp_path / "x")
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert "--from cvat" in err and "utf-8" not in err, err
    assert not (tmp_path / "x").exists()


def test_several_categories_are_named_in_a_note(tmp_path: Path, capsys):
    seg = [[2.0, 2.0, 6.0, 2.0, 6.0, 5.0, 2.0, 5.0]]
    p = _cvat_file(
        tmp_path / "c.json",
        [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
        [
            {"image_id": 1, "segmentation": seg, "bbox": [2, 2, 4, 3]},
            {"image_id": 1, "segmentation": seg, "bbox": [2, 2, 4, 3], "category_id": 2},
        ],
        cats=("oil spill", "look-alike"),
    )
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--out", tmp_path / "m", "--no-progress")
    assert rc == 0 and "look-alike" in err and "--category" in err, err
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--out", tmp_path / "m2",
                   "--category", "oil spill", "--no-progress")  # fmt: skip
    assert rc == 0 and "look-alike" not in err, err


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_qgis_self_intersections_are_repaired_and_counted_over_the_layer(tmp_path: Path):
    import geopandas as gpd
    from helpers_data import write_png
    from PIL import Image
    from shapely.geometry import Polygon

    for name in ("a", "b", "c"):
        write_png(tmp_path / "images" / f"{name}.png", np.zeros((64, 64), np.uint8))
    # QGIS pixel frame of an image without CRS: x = column, y = -row
    tie = Polygon([(x, -y) for x, y in zip(BOW_TIE[::2], BOW_TIE[1::2], strict=True)])
    square = Polygon([(2, -2), (6, -2), (6, -5), (2, -5)])
    # c's name as a Windows path pasted into the attribute table
    names = ["a.png", "b.png", "C:\\review\\images\\c.png"]
    gdf = gpd.GeoDataFrame({"source": names}, geometry=[tie, tie, square], crs=None)
    gp = tmp_path / "labels.gpkg"
    gdf.to_file(gp, layer="labels")
    res = import_vector(gp, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert len(res.written) == 3
    assert any("repaired 2 invalid polygons (images a, b)" in n for n in res.notes), res.notes
    assert not any("repaired 1" in n for n in res.notes), res.notes
    for name in ("a", "b"):
        assert (np.array(Image.open(tmp_path / "m" / f"{name}.png")) > 0).sum() == 600
    assert (np.array(Image.open(tmp_path / "m" / "c.png")) > 0).sum() == 12


def test_coco_export_without_a_domain_names_its_category_for_the_cvat_task(tmp_path: Path):
    run = make_run(tmp_path, {"a": 0.3})  # summary.json names no domain, model.pt is no model
    res = export_labels(run, tmp_path / "coco.json", "coco", progress=False)
    assert json.loads((tmp_path / "coco.json").read_text())["categories"][0]["name"] == (
        "foreground"
    )
    assert any("'foreground'" in n and "CVAT task" in n for n in res.notes), res.notes


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_qgis_layer_with_every_polygon_deleted_gives_empty_masks_for_the_review_set(
    tmp_path: Path, capsys
):
    """All weak labels were false alarms (SAR look-alikes): the reviewer deletes every polygon."""
    import geopandas as gpd

    run = make_run(tmp_path, {"a": 0.3, "b": 0.4})
    gp = tmp_path / "weak.gpkg"
    export_labels(run / "rejected", gp, progress=False)
    g = gpd.read_file(gp, layer="labels")
    assert len(g) > 0
    g.iloc[0:0].to_file(gp, layer="labels", driver="GPKG")
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0, err
    for name in ("a", "b"):
        with rasterio.open(tmp_path / "m" / f"{name}.tif") as d:
            assert d.crs is not None and not (d.read(1) == 255).any()
    assert "2 of 2 masks are all background" in err
    # without the export's record an empty layer names no image: one error line with the remedy
    (tmp_path / "weak_review.json").unlink()
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m2", "--no-progress")  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "no features" in err and "--review-set" in err and "--all-images" in err
    assert not (tmp_path / "m2").exists()
    res = import_vector(gp, tmp_path / "m3", images=tmp_path / "images", all_images=True,
                        progress=False)  # fmt: skip
    assert len(res.written) == 2
    for q in res.written:
        with rasterio.open(q) as d:
            assert not (d.read(1) == 255).any()


def test_cvat_zip_of_a_task_with_subsets_reads_every_subset(tmp_path: Path):
    seg = [[2.0, 2.0, 6.0, 2.0, 6.0, 5.0, 2.0, 5.0]]  # 4 x 3 px
    z = tmp_path / "task.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for sub, name, cats in (("Train", "a.jpg", ("oil spill",)),
                                ("Validation", "b.jpg", ("look-alike", "oil spill"))):  # fmt: skip
            p = _cvat_file(
                tmp_path / f"{sub}.json",
                [{"id": 1, "file_name": name, "width": 8, "height": 8}],
                [
                    {
                        "image_id": 1,
                        "segmentation": seg,
                        "bbox": [2, 2, 4, 3],
                        "category_id": cats.index("oil spill") + 1,
                    }
                ],  # fmt: skip
                cats=cats,
            )
            zf.write(p, f"annotations/instances_{sub}.json")
    res = import_coco(z, tmp_path / "m", category="oil spill", progress=False)
    assert sorted(q.name for q in res.written) == ["a.png", "b.png"]
    from PIL import Image

    for q in res.written:
        assert (np.array(Image.open(q)) > 0).sum() == 12


def test_report_next_steps_give_working_cvat_and_qgis_commands():
    from sam2elnet.pipeline.report import _next_steps

    steps = " ".join(_next_steps(Path("out/auto"), True))
    # the QGIS export of labels without a CRS lay mirrored above the images without this flag
    assert "--format gpkg" not in steps
    assert "--out out/auto/qgis/labels.gpkg --pixel-coords qgis" in steps
    assert "--from vector --images IMAGES --out MASKS" in steps
    assert "--format coco --coco-rle" in steps and "--from cvat --images IMAGES" in steps


def test_coco_export_has_the_sections_cvats_reader_requires(tmp_path: Path):
    # CVAT's streaming COCO reader (datumaro's page mapper) stops with "Cannot find the licenses
    # section" unless all five sections are there, and refuses any other top-level key
    run = make_run(tmp_path, {"a": 0.3, "b": 0.8})
    export_labels(run, tmp_path / "coco.json", "coco", progress=False)
    coco = json.loads((tmp_path / "coco.json").read_text())
    assert set(coco) == {"licenses", "info", "images", "annotations", "categories"}
    assert coco["licenses"] == [] and isinstance(coco["info"], dict)


def test_malformed_rle_skips_its_image_and_bad_annotations_are_one_line(tmp_path: Path, capsys):
    ims = [
        {"id": i, "file_name": f"{n}.jpg", "width": 4, "height": 3} for i, n in ((1, "a"), (2, "b"))
    ]
    good = {"counts": [2, 3, 7], "size": [3, 4]}  # 12 px
    for seg, why in (({"counts": [2, 3, 9], "size": [3, 4]}, "cover 14 pixels"),
                     ({"counts": "0P8", "size": [3, 4]}, "unreadable RLE"),
                     ({"size": [3, 4]}, "unreadable RLE (KeyError")):  # fmt: skip
        p = _cvat_file(
            tmp_path / "c.json",
            ims,
            [{"image_id": 1, "segmentation": good, "iscrowd": 1, "bbox": [0, 0, 4, 3]},
             {"image_id": 2, "segmentation": seg, "iscrowd": 1, "bbox": [0, 0, 4, 3]}],
        )  # fmt: skip
        res = import_coco(p, tmp_path / "m", progress=False)
        assert [q.name for q in res.written] == ["a.png"], why
        assert res.skipped and res.skipped[0][0] == "b" and why in res.skipped[0][1], res.skipped
    p.write_text(json.dumps({"images": ims, "annotations": [1, 2], "categories": []}))
    rc, err = _cli(capsys, "import", p, "--from", "coco", "--out", tmp_path / "x")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "'annotations'" in err, err


def test_the_review_record_given_as_the_layer_names_the_layer(tmp_path: Path, capsys):
    """`elnet import weak_review.json --from vector` (the record beside the layer, an easy
    mix-up: both come out of one export) said only what pyogrio says of a JSON that is not
    GeoJSON ('not recognized as being in a supported file format ... prefixing the file path
    with <DRIVER>:'). It names the file for what it is and the layer to give."""
    run = make_run(tmp_path, {"a": 0.3})
    gp = tmp_path / "weak.gpkg"
    export_labels(run / "rejected", gp, progress=False)
    record = tmp_path / "weak_review.json"
    rc, err = _cli(capsys, "import", record, "--from", "vector", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 2 and err.strip() == (
        f"error: {record}: this is the review record `elnet export` writes next to the layer, not "
        "the layer: give the layer (weak.gpkg) instead; the record is read from beside it, or "
        "from --review-set FILE"
    )
    assert not (tmp_path / "m").exists()
    bad = tmp_path / "other.json"  # any other unreadable file keeps the reader's message
    bad.write_text('{"kind": "something"}')
    rc, err = _cli(capsys, "import", bad, "--from", "vector", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 2 and err.startswith(f"error: {bad}: not a readable vector file")
