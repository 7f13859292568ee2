"""Export inputs refused: unknown formats (one format table), bad label inputs, georeferenced
and plain labels in one layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_export import label_array, write_label_tif, write_labels_folder

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.labels import read_quality_csv


@pytest.fixture
def label_tif(tmp_path: Path) -> Path:
    return write_labels_folder(tmp_path)


def test_export_format_comes_from_the_format_table(monkeypatch: pytest.MonkeyPatch):
    """One suffix rule (export.layer_files.format_of): FORMATS' suffixes, .json = COCO, any case;
    a polygon format added to FORMATS is known by its suffix with no second table to edit."""
    from sam2elnet.export import layer_files
    from sam2elnet.export.layer_files import format_of

    assert [format_of(f"x{s}") for s in (".GPKG", ".geojson", ".shp", ".Json")] == [
        "gpkg",
        "geojson",
        "shp",
        "coco",
    ]
    assert format_of("x.json", "GeoJSON") == "geojson"
    monkeypatch.setitem(layer_files.FORMATS, "fgb", ("FlatGeobuf", ".fgb"))
    assert format_of("x.fgb") == "fgb"


def test_an_unknown_format_is_refused_before_warping(
    tmp_path: Path, label_tif: Path, monkeypatch: pytest.MonkeyPatch
):
    """--warp-to with an output of no known format: refused before any label is warped (was
    warped into a temporary folder first, then refused)."""
    from sam2elnet.data import warp

    warped: list[Path] = []
    monkeypatch.setattr(warp, "warp_to_map_grid", lambda src, *a, **k: warped.append(src))
    with pytest.raises(UserError, match="cannot tell the export format from o.txt"):
        export_labels(label_tif, tmp_path / "o.txt", warp_to="EPSG:4326", progress=False)
    assert warped == []


def test_bad_export_inputs(tmp_path: Path, label_tif: Path):
    with pytest.raises(DataError, match="does not exist"):
        export_labels(tmp_path / "nope", tmp_path / "o.gpkg", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no label rasters"):
        export_labels(tmp_path / "empty", tmp_path / "o.gpkg", progress=False)
    with pytest.raises(UserError, match="unknown export format"):
        export_labels(label_tif, tmp_path / "o.gpkg", "kml", progress=False)
    with pytest.raises(UserError, match="cannot tell the export format"):
        export_labels(label_tif, tmp_path / "o.txt", progress=False)
    with pytest.raises(
        UserError, match="unknown export format 'kml'; use geojson, gpkg, shp, coco or label-studio"
    ):
        export_labels(label_tif, tmp_path / "o.gpkg", "KML", progress=False)
    (tmp_path / "q.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match=r"q\.csv.*name column"):
        read_quality_csv(tmp_path / "q.csv")
    bad = tmp_path / "labels" / "corrupt.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 50)
    with pytest.raises(DataError, match="corrupt.tif"):
        export_labels(bad, tmp_path / "o.gpkg", progress=False)


def test_mixed_georeferenced_and_plain_labels_cannot_share_one_layer(tmp_path: Path):
    """write_polygons refuses them (one layer, one kind of coordinates), nothing written;
    export_labels of their folder skips the plain ones (test_export_scope.py)."""
    from sam2elnet.export.vector import write_polygons

    d = tmp_path / "mix"
    d.mkdir()
    write_label_tif(d / "a.tif", label_array())
    write_label_tif(d / "b.tif", label_array(), georef=False)
    with pytest.raises(DataError, match="some labels are georeferenced"):
        files = [d / "a.tif", d / "b.tif"]
        write_polygons(files, tmp_path / "o.gpkg", "gpkg", quality={}, notes=[], progress=False)
    assert not (tmp_path / "o.gpkg").exists()
