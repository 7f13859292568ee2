"""Roads drawn in a road export's own centre-line layer (new-user trial of the review loop).

A road export to QGIS holds the ``labels`` polygons and the ``centre_lines`` (a GeoPackage
layer, or ``<stem>_centre_lines.geojson`` / ``.shp`` beside the file). A reviewer who draws a
missing road as a line there (QGIS shows it over the polygons; docs/roads.md says reviewers draw
roads as lines) got masks without it and no word: the import reads the polygons only. Now a note
names the images whose lines differ from what the export sent and says where such roads go.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from helpers_logs import run_main_err as _cli
from review_helpers import make_run
from shapely.geometry import LineString

from sam2elnet.export.api import export_labels


def _draw_road(lines: Path, layer: str | None) -> None:
    """A line across image a (40 x 48 px of 10 m at x 500000, y 4000000: make_run's grid)."""
    g = gpd.read_file(lines, layer=layer)
    road = g.iloc[[0]].copy()
    road["source"] = "a.tif"
    road = road.set_geometry([LineString([(500050, 3999800), (500400, 3999800)])], crs=g.crs)
    g = gpd.GeoDataFrame(pd.concat([g, road], ignore_index=True), crs=g.crs)
    g.to_file(lines, layer=layer) if layer else g.to_file(lines)


def _import(capsys, layer_file: Path, tmp_path: Path, out: str, *opts: object) -> str:
    rc, err = _cli(capsys, "import", layer_file, "--from", "vector", "--images",
                   tmp_path / "images", "--out", tmp_path / out, "--no-progress", *opts)  # fmt: skip
    assert rc == 0, err
    return err


def test_a_road_drawn_in_the_centre_line_layer_is_named_not_lost_silently(tmp_path, capsys):
    run = make_run(tmp_path, {"a": 0.6, "b": 0.7})
    gp = tmp_path / "roads.gpkg"
    export_labels(run, gp, category="road", progress=False)
    assert "was edited" not in _import(capsys, gp, tmp_path, "m0")  # untouched: no note

    sent = int((gpd.read_file(gp, layer="centre_lines")["source"] == "a.tif").sum())
    _draw_road(gp, "centre_lines")
    err = _import(capsys, gp, tmp_path, "m1")
    assert (
        f"layer centre_lines of roads.gpkg was edited for 1 image (a.tif: {sent + 1} lines, "
        f"{sent} sent) but is not read"
    ) in err, err
    assert "draw missing roads as polygons in the labels layer" in err, err
    # the layer chosen by name: the user knows which layer is read
    assert "was edited" not in _import(capsys, gp, tmp_path, "m2", "--layer", "labels")


def test_the_geojson_sibling_line_file_is_compared_too(tmp_path, capsys):
    run = make_run(tmp_path, {"a": 0.6, "b": 0.7})
    gj = tmp_path / "roads.geojson"
    export_labels(run, gj, fmt="geojson", category="road", progress=False)
    lines = tmp_path / "roads_centre_lines.geojson"
    assert lines.is_file()
    _draw_road(lines, None)
    err = _import(capsys, gj, tmp_path, "m")
    assert "roads_centre_lines.geojson was edited for 1 image (a.tif: " in err, err
