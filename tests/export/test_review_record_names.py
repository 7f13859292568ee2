"""Review records are named by the export format and found by the format they record.

Before: `--format geojson --out x.json` wrote `x_coco_review.json` (the name followed the
suffix), and a CVAT / COCO import took that GeoJSON record for the COCO export's; with two COCO
records beside a download the note said no record was found; a QGIS import of the GeoJSON
`x.json` looked for `x_coco_review.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from review_helpers import make_run

from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.review_set import (
    ReviewCheck,
    download_check,
    mask_digest,
    review_set_path,
)
from sam2elnet.export.vector_import import import_vector


def test_record_name_follows_the_format_not_the_suffix(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2}, 32, 32)
    out = tmp_path / "x.json"
    export_labels(run / "rejected", out, fmt="geojson", progress=False)
    assert [f.name for f in tmp_path.glob("x_*review.json")] == ["x_geojson_review.json"]
    rec = json.loads((tmp_path / "x_geojson_review.json").read_text())
    assert rec["layer"] == "x.json" and rec["format"] == "geojson"
    assert review_set_path(out) == tmp_path / "x_coco_review.json"  # a .json alone: COCO
    assert review_set_path(out, "geojson") == tmp_path / "x_geojson_review.json"
    # the QGIS import of the GeoJSON x.json finds its record (b is listed, has no feature left)
    res = import_vector(out, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert sorted(p.name for p in res.written) == ["a.tif", "b.tif"]


def test_a_geojson_record_is_not_taken_for_a_coco_one(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2}, 32, 32)
    export_labels(run / "rejected", tmp_path / "x.json", fmt="geojson", progress=False)
    download = tmp_path / "task_1_annotations.zip"  # not read: only its folder is searched
    check, notes = download_check(download, None, False, ["a", "b"])
    assert check.digests == {} and "no review record" in notes[0], notes
    with pytest.raises(UserError, match="--reviewed-only needs"):
        download_check(download, None, True, ["a", "b"])


def test_several_coco_records_beside_a_download_are_named(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2}, 32, 32)
    for stem in ("one", "two"):
        export_labels(run / "rejected", tmp_path / f"{stem}.json", progress=False)
    download = tmp_path / "annotations.xml"
    check, notes = download_check(download, None, False, ["a", "b"])
    assert check.digests == {} and len(notes) == 1, notes
    assert "2 review records" in notes[0] and "--review-set" in notes[0], notes
    assert "one_coco_review.json" in notes[0] and "two_coco_review.json" in notes[0], notes
    with pytest.raises(UserError, match="one_coco_review.json, two_coco_review.json"):
        download_check(download, None, True, ["a", "b"])
    # the exported file itself, imported as it is: its own record, no ambiguity
    check, notes = download_check(tmp_path / "two.json", None, True, ["a", "b"])
    assert "two_coco_review.json" in notes[0] and check.digests, notes
    # only one of them lists the download's images: that one
    rec = json.loads((tmp_path / "one_coco_review.json").read_text())
    for e in rec["images"]:
        e["source"] = e["label"] = "other_" + e["label"]
    (tmp_path / "one_coco_review.json").write_text(json.dumps(rec))
    check, notes = download_check(download, None, False, ["a", "b"])
    assert "two_coco_review.json" in notes[0] and check.digests, notes


def test_review_check_tells_the_polygons_exported(tmp_path: Path) -> None:
    rec = tmp_path / "x_review.json"
    d = mask_digest(np.zeros((32, 32), bool))
    rec.write_text(json.dumps({"kind": "elnet review set", "version": 1, "layer": "x.gpkg",
                               "images": [{"source": "a.tif", "label": "a.tif",
                                           "polygons": 2, "mask_sha256": d}]}))  # fmt: skip
    check = ReviewCheck(rec, False, "")
    assert check.exported_count("a") == 2 and check.exported_count("z") is None
    assert ReviewCheck(None, False, "").exported_count("a") is None
