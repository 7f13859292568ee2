"""The summary line of ``elnet export`` says counts of one in the singular (a road user
exporting one scene label read '7136 polygons from 1 label files (gpkg)')."""

from __future__ import annotations

from pathlib import Path

from sam2elnet.export.export_result import ExportResult


def test_counts_of_one_are_singular_and_others_plural() -> None:
    one = ExportResult(Path("s.gpkg"), "gpkg", n_labels=1, n_features=1, n_chips=1,
                       lines_out=Path("s.gpkg"), n_lines=1, road_length_m=500.0)  # fmt: skip
    assert one.summary() == (
        "s.gpkg: 1 polygon from 1 label file (gpkg); 1 image/mask chip; 1 road centre line, "
        "0.500 km of road (layer centre_lines)"
    )
    many = ExportResult(Path("c.json"), "coco", n_labels=2, n_features=0, n_chips=3,
                        lines_out=None)  # fmt: skip
    assert many.summary() == "c.json: 0 annotations from 2 label files (coco); 3 image/mask chips"
