"""CVAT/COCO round trip checked with pycocotools, and the QGIS style inside the GeoPackage."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from review_helpers import make_run

from sam2elnet.cli import main
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.coco_import import annotation_mask, import_coco
from sam2elnet.export.qgis_style import QUALITY_CLASSES

SCORES = {"a": 0.3, "b": 0.75, "c": 0.9}
# pycocotools 2.0.x on numpy 2 warns about its own np.array(copy=False) call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _label(run: Path, name: str) -> np.ndarray:
    sub = "labels" if SCORES[name] >= 0.5 else "rejected"
    with rasterio.open(run / sub / f"{name}.tif") as d:
        return d.read(1) > 127


@pytest.mark.parametrize("rle", [True, False])
def test_coco_export_decodes_with_pycocotools_and_imports_back(tmp_path: Path, rle: bool):
    mask_utils = pytest.importorskip("pycocotools.mask", reason="pycocotools is in the dev extra")
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "coco.json"
    for sub in ("labels", "rejected"):
        export_labels(run / sub, tmp_path / f"coco-{sub}.json", "coco", images=tmp_path / "images",
                      coco_rle=rle, progress=False)  # fmt: skip
    # one COCO file for CVAT: merge the two exports (ids renumbered)
    merged = {"images": [], "annotations": [], "categories": None}
    for sub in ("labels", "rejected"):
        c = json.loads((tmp_path / f"coco-{sub}.json").read_text())
        merged["categories"] = c["categories"]
        off_i, off_a = len(merged["images"]), len(merged["annotations"])
        for im in c["images"]:
            merged["images"].append(dict(im, id=im["id"] + off_i))
        for a in c["annotations"]:
            merged["annotations"].append(
                dict(a, id=a["id"] + off_a, image_id=a["image_id"] + off_i)
            )
    out.write_text(json.dumps(merged))
    # pycocotools (the reference decoder) turns every annotation back into the label
    for im in merged["images"]:
        name = Path(im["file_name"]).stem
        h, w = im["height"], im["width"]
        union = np.zeros((h, w), bool)
        for a in merged["annotations"]:
            if a["image_id"] != im["id"]:
                continue
            seg = a["segmentation"]
            rles = mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) else [seg]
            m = mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles) > 0
            assert int(m.sum()) == a["area"]
            union |= m
        assert np.array_equal(union, _label(run, name)), name
    # and our import (what comes back from CVAT) gives the masks with the images' georeference
    res = import_coco(out, tmp_path / "masks", images=tmp_path / "images", progress=False)
    assert sorted(p.name for p in res.written) == ["a.tif", "b.tif", "c.tif"]
    for name in SCORES:
        with rasterio.open(tmp_path / "masks" / f"{name}.tif") as m:
            assert m.crs is not None and m.transform.a == 10
            assert np.array_equal(m.read(1) > 0, _label(run, name))


def test_coco_import_of_pycocotools_rle_and_errors(tmp_path: Path, capsys):
    mask_utils = pytest.importorskip("pycocotools.mask")
    m = np.zeros((9, 11), np.uint8, order="F")
    m[2:7, 3:9] = 1
    m[4, 5] = 0
    enc = mask_utils.encode(np.asfortranarray(m))
    enc["counts"] = enc["counts"].decode()
    coco = {
        "images": [
            {"id": 1, "file_name": "x.jpg", "height": 9, "width": 11},
            {"id": 2, "file_name": "empty.jpg", "height": 4, "width": 5},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": enc,
                "area": int(m.sum()),
                "iscrowd": 1,
            }
        ],
        "categories": [{"id": 1, "name": "oil"}],
    }
    p = tmp_path / "cvat.json"
    p.write_text(json.dumps(coco))
    rc = main(["import", str(p), "--from", "coco", "--out", str(tmp_path / "m"), "--no-progress"])
    assert rc == 0
    import cv2

    assert np.array_equal(cv2.imread(str(tmp_path / "m" / "x.png"), 0) > 0, m > 0)
    assert not cv2.imread(str(tmp_path / "m" / "empty.png"), 0).any()
    with pytest.raises(UserError, match="category 'road'"):
        import_coco(p, tmp_path / "m2", category="road")
    with pytest.raises(DataError, match="RLE size"):
        annotation_mask(enc, 10, 11)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": []}))
    capsys.readouterr()
    rc = main(["import", str(bad), "--from", "coco", "--out", str(tmp_path / "m3")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a COCO file" in err and len(err.strip().splitlines()) == 1


def test_geopackage_carries_default_qgis_style(tmp_path: Path):
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "labels.gpkg"
    export_labels(run / "labels", out, progress=False)
    export_labels(run / "labels", out, progress=False)  # re-export keeps one default style
    gdf = gpd.read_file(out, layer="labels")
    assert len(gdf) > 0 and gdf["quality"].notna().all()
    con = sqlite3.connect(out)
    rows = con.execute(
        "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML, styleSLD FROM layer_styles"
    ).fetchall()
    kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    con.close()
    assert kinds["layer_styles"] == "attributes"
    ((table, geom, default, qml, sld),) = rows
    assert (table, geom, default) == ("labels", "geom", 1)  # from gpkg_geometry_columns
    renderer = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("type") == "RuleRenderer"
    rules = renderer.find("rules").findall("rule")
    assert len(rules) == len(QUALITY_CLASSES) + 1
    assert (
        rules[0].get("filter") == '"quality" < 0.5'
        and rules[-1].get("filter") == '"quality" IS NULL'
    )
    assert len(renderer.find("symbols").findall("symbol")) == len(rules)
    # the classes cover [0, 1] without gaps or overlaps: every score falls in exactly one
    for q in np.linspace(0, 1, 101):
        hits = [
            c for c in QUALITY_CLASSES if (c[1] is None or q >= c[1]) and (c[2] is None or q < c[2])
        ]
        assert len(hits) == 1, q
    ns = {"se": "http://www.opengis.net/se"}
    assert len(ET.fromstring(sld).findall(".//se:Rule", ns)) == len(rules)
