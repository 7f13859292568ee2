"""Road centre lines: mask -> LineStrings (export.centrelines) and the export's centre_lines
layer (export.centreline_layer)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from helpers_logs import run_main as _cli
from helpers_roads import one_road_label, road_mask
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasterio.transform import from_origin

from sam2elnet.export.api import export_labels
from sam2elnet.export.centreline_layer import lengths_m, place_lines
from sam2elnet.export.centrelines import MIN_LENGTH_PX, mask_lines, skeleton_segments


def _band(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


def test_a_straight_road_is_one_line_of_its_length() -> None:
    # 3 px wide, pixel columns 10..89: centre line from x = 10.5 to 89.5 (79 px); thinning
    # shortens each free end by half the width (1 px, 77 px as thinned), and the free ends are
    # carried back out to the road's end pixels (export.line_ends, mask_lines' default)
    lines = mask_lines(_band(40, 100, slice(19, 22), slice(10, 90)))
    assert len(lines) == 1
    (g,) = lines
    assert g.length == 79
    xy = shapely.get_coordinates(g)
    assert np.all(xy[:, 1] == 20.5)  # the middle row's pixel centres (+0.5, as the polygons)
    assert xy[:, 0].tolist() == [10.5, 89.5]  # a straight road simplifies to its two ends


def test_a_cross_gives_four_lines_meeting_at_the_junction() -> None:
    m = _band(101, 101, slice(48, 53), slice(None)) | _band(101, 101, slice(None), slice(48, 53))
    lines = mask_lines(m)
    assert len(lines) == 4
    ends = [tuple(shapely.get_coordinates(g)[k]) for g in lines for k in (0, -1)]
    assert sum(e == (50.5, 50.5) for e in ends) == 4  # every arm ends at the junction pixel
    # two roads 100 px (pixel centres 0.5 .. 100.5): each of the 4 free ends, 2 px short as
    # thinned (half the 5 px width), is carried back out to the label's edge
    total = sum(g.length for g in lines)
    assert total == 200


def test_spurs_and_specks_shorter_than_the_minimum_are_dropped() -> None:
    m = _band(60, 100, slice(28, 33), slice(5, 95))
    m |= _band(60, 100, slice(33, 38), slice(50, 53))  # a 5 px stub under the road
    m |= _band(60, 100, slice(5, 8), slice(10, 16))  # a 6 px speck
    lines = mask_lines(m)
    assert len(lines) == 1 and lines[0].length > 80  # one road, stub and speck gone
    kept = mask_lines(m, min_length_px=0)
    assert len(kept) > 1  # without the minimum both are lines
    assert MIN_LENGTH_PX == 10


def test_empty_mask_gives_no_lines_and_bad_input_raises() -> None:
    assert mask_lines(np.zeros((30, 30), bool)) == []
    assert mask_lines(np.zeros((0, 0), bool)) == []
    assert skeleton_segments(np.zeros((5, 5), bool)).shape == (0, 2, 2)
    with pytest.raises(ValueError, match="2-D"):
        mask_lines(np.zeros((3, 4, 5), bool))
    with pytest.raises(ValueError, match=">= 0"):
        mask_lines(np.ones((4, 4), bool), simplify_px=-1)


def test_skeleton_corners_give_no_triangles() -> None:
    s = np.zeros((5, 5), bool)
    s[1, 1:3] = True
    s[2, 2] = True  # L corner: (1,1)-(1,2)-(2,2); the diagonal (1,1)-(2,2) is not a segment
    segs = skeleton_segments(s)
    assert len(segs) == 2


def test_georeferenced_lengths_in_metres() -> None:
    lines = mask_lines(_band(40, 100, slice(19, 22), slice(10, 90)))
    placed = place_lines(lines, from_origin(500000, 4000000, 10, 10))  # 10 m pixels
    assert placed[0].length == pytest.approx(10 * lines[0].length)
    # ground length: UTM's central meridian has scale factor 0.9996 (within 0.1 % of the grid)
    assert lengths_m(placed, "EPSG:32633") == pytest.approx([10 * lines[0].length / 0.9996])
    assert lengths_m(placed, "EPSG:32633")[0] == pytest.approx(10 * lines[0].length, rel=1e-3)
    assert math.isnan(lengths_m(lines, None)[0])  # no CRS: no metres
    # geographic CRS: geodesic metres; 1e-4 deg of longitude on the equator = 11.1319 m (WGS84)
    geo = place_lines(lines, from_origin(0, 0.002, 1e-4, 1e-4))
    assert lengths_m(geo, "EPSG:4326")[0] == pytest.approx(11.1319 * lines[0].length, rel=1e-4)
    # projected CRSs in US survey feet: metres = feet * 0.3048006 / the zone's scale factor
    from pyproj import Proj

    for epsg, x, y in ((2263, 988_000, 210_000), (2229, 6_400_000, 1_900_000)):
        feet = place_lines(lines, from_origin(x, y, 10, 10))
        proj = Proj(f"EPSG:{epsg}")
        k = proj.get_factors(*proj(x + 500, y - 200, inverse=True)).parallel_scale
        assert lengths_m(feet, f"EPSG:{epsg}")[0] == pytest.approx(
            10 * lines[0].length * 1200 / 3937 / k, rel=1e-6
        )


def test_lengths_in_web_mercator_are_ground_lengths() -> None:
    """A road at 60 deg N in EPSG:3857: length_m is the geodesic length of the same line on
    WGS 84 (its vertices taken to latitude / longitude with pyproj, measured with pyproj.Geod),
    about half its length in CRS metres (Mercator's scale sec(60 deg) = 2)."""
    from pyproj import Geod, Transformer

    y60 = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(60) / 2))  # 60 deg N
    road = shapely.LineString([(1000, y60), (1800, y60 + 300), (1900, y60 + 1200)])
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(*np.asarray(road.coords).T)
    geodesic = Geod(ellps="WGS84").line_length(lon, lat)
    (got,) = lengths_m([road], "EPSG:3857")
    assert got == pytest.approx(geodesic, rel=5e-3)
    assert got == pytest.approx(road.length / 2, rel=5e-3)


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))), st.floats(0, 3))
def test_every_vertex_is_the_centre_of_a_road_pixel(mask: np.ndarray, tol: float) -> None:
    for g in mask_lines(mask, simplify_px=tol):
        assert g.geom_type == "LineString" and g.length > 0
        xy = shapely.get_coordinates(g)
        cols, rows = xy[:, 0] - 0.5, xy[:, 1] - 0.5
        assert np.all(cols == np.floor(cols)) and np.all(rows == np.floor(rows))
        assert mask[rows.astype(int), cols.astype(int)].all()


# ---------------------------------------------------------------------------------- export


def _road_run(root: Path, n: int = 2, size: int = 48) -> Path:
    """An annotate-like road run: georeferenced 10 m/px labels of 2-3 straight roads,
    quality.csv and a summary.json naming the roads domain."""
    run = root / "run"
    (run / "labels").mkdir(parents=True)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        m = road_mask(size, rng)
        name = f"r{i:02d}.tif"
        with rasterio.open(
            run / "labels" / name,
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=1,
            dtype="uint8",
            crs="EPSG:32633",
            transform=from_origin(500000 + 1000 * i, 4000000, 10, 10),
        ) as ds:
            ds.write(m, 1)
        rows.append({"label": f"labels/{name}", "predicted_iou": 0.8 - 0.1 * i, "kept": True})
    with open(run / "quality.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    (run / "summary.json").write_text(
        json.dumps({"task": "annotate", "domain": {"domain": "roads", "category": "road"}})
    )
    return run


def test_cli_export_of_a_road_run_writes_centre_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _road_run(tmp_path)
    out = tmp_path / "roads.gpkg"
    rc, so, err = _cli(capsys, "export", "--labels", run, "--out", out, "--no-progress")
    assert rc == 0, err
    assert "centre lines written too, layer centre_lines" in err
    assert "road centre lines" in so and "km of road" in so
    layers = dict(pyogrio.list_layers(out))
    assert layers["labels"] == "Polygon" and layers["centre_lines"] == "LineString"
    lines = gpd.read_file(out, layer="centre_lines")
    assert str(lines.crs) == "EPSG:32633"
    assert set(lines["source"]) == {"r00.tif", "r01.tif"}
    assert set(lines["category"]) == {"road"} and set(lines["status"]) == {"kept"}
    ground = 10 * lines["length_px"] / 0.9996  # UTM's central meridian: scale factor 0.9996
    assert lines["length_m"].to_numpy() == pytest.approx(ground, rel=1e-4, abs=0.01)
    assert lines.geometry.length.to_numpy() == pytest.approx(lines["length_m"].to_numpy(), 1e-3)
    q = dict(zip(lines["source"], lines["quality"], strict=False))
    assert q == {"r00.tif": pytest.approx(0.8), "r01.tif": pytest.approx(0.7)}
    # each line inside its image's road polygons (pixel centres of road pixels)
    polys = gpd.read_file(out, layer="labels")
    for src in ("r00.tif", "r01.tif"):
        area = polys[polys["source"] == src].union_all()
        assert lines[lines["source"] == src].within(area.buffer(1e-6)).all()
    # per-image road length in the review record: the sum of the image's lines
    record = json.loads((tmp_path / "roads_review.json").read_text())
    for e in record["images"]:
        mine = lines[lines["source"] == e["source"]]
        assert e["centre_lines"] == len(mine) > 0
        assert e["road_length_m"] == pytest.approx(mine["length_m"].sum(), abs=0.01)
        assert e["road_length_m"] > 300  # roads cross the 480 m tile
    # GeoJSON: a sibling file in the same CRS; --no-centre-lines: polygons only
    rc, _so, err = _cli(
        capsys, "export", "--labels", run, "--out", tmp_path / "r.geojson", "--no-progress"
    )
    assert rc == 0, err
    side = gpd.read_file(tmp_path / "r_centre_lines.geojson")
    assert str(side.crs) == "EPSG:32633" and len(side) == len(lines)
    rc, _so, err = _cli(
        capsys, "export", "--labels", run, "--out", tmp_path / "p.gpkg", "--no-centre-lines"
    )
    assert rc == 0, err
    assert "centre_lines" not in dict(pyogrio.list_layers(tmp_path / "p.gpkg"))
    assert "centre_lines" not in (tmp_path / "p_review.json").read_text()


def test_centre_lines_of_plain_and_empty_labels(tmp_path: Path) -> None:
    import cv2

    labs = tmp_path / "labs"
    labs.mkdir()
    m = one_road_label()
    cv2.imwrite(str(labs / "a.png"), m)
    cv2.imwrite(str(labs / "empty.png"), np.zeros((40, 60), np.uint8))
    # not a road run: off unless asked for; asked: pixel coordinates, lengths in px only
    assert export_labels(labs, tmp_path / "n.gpkg", progress=False).lines_out is None
    res = export_labels(labs, tmp_path / "x.shp", centre_lines=True, progress=False)
    assert res.lines_out == tmp_path / "x_centre_lines.shp" and res.n_lines == 1
    assert res.road_length_m is None and "px (no CRS)" in res.summary()
    lines = gpd.read_file(res.lines_out)
    assert lines.crs is None and lines["length_m"].isna().all()
    assert lines["length_px"].iloc[0] == pytest.approx(lines.geometry.length.iloc[0])
    assert 47 <= lines["length_px"].iloc[0] <= 49  # columns 5..54: 49 px between centres
    assert shapely.get_coordinates(lines.geometry.iloc[0])[:, 1].tolist() == [19.5, 19.5]
    # no road at all: an empty LineString layer, no error
    only_empty = tmp_path / "e"
    only_empty.mkdir()
    (labs / "empty.png").rename(only_empty / "empty.png")
    res = export_labels(only_empty, tmp_path / "e.gpkg", category="road", progress=False)
    assert res.n_lines == 0 and res.road_length_px == 0
    assert dict(pyogrio.list_layers(tmp_path / "e.gpkg"))["centre_lines"] == "LineString"
    assert len(gpd.read_file(tmp_path / "e.gpkg", layer="centre_lines")) == 0


def test_lines_of_a_scene_take_the_quality_of_the_windows_under_them(tmp_path: Path) -> None:
    from shapely.geometry import box

    m = np.zeros((40, 80), np.uint8)
    m[18:21, :] = 255  # across both windows
    m[:, 10:13] = 255  # in the left window only
    with rasterio.open(
        tmp_path / "lab.tif", "w", driver="GTiff", width=80, height=40, count=1, dtype="uint8",
        crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10),
    ) as ds:  # fmt: skip
        ds.write(m, 1)
    x0, y1 = 500000, 4000000
    tiles = gpd.GeoDataFrame(
        {"predicted_iou": [0.2, 0.8]},
        geometry=[box(x0, y1 - 400, x0 + 400, y1), box(x0 + 400, y1 - 400, x0 + 800, y1)],
        crs="EPSG:32633",
    )
    tiles.to_file(tmp_path / "lab_tiles.gpkg", layer="tiles")
    res = export_labels(tmp_path / "lab.tif", tmp_path / "o.gpkg", category="road", progress=False)
    assert res.n_lines > 1
    lines = gpd.read_file(tmp_path / "o.gpkg", layer="centre_lines")
    for g, q in zip(lines.geometry, lines["quality"], strict=True):
        left = g.intersection(tiles.geometry[0]).length / g.length
        assert q == pytest.approx(0.2 * left + 0.8 * (1 - left), abs=0.02)
    assert lines["quality"].min() == pytest.approx(0.2) and lines["quality"].max() > 0.3


def test_polygons_and_centre_lines_share_their_attribute_columns(tmp_path: Path) -> None:
    """One list of the shared columns (export.layer_files.COMMON_COLUMNS), in the same order in
    both layers, whatever order a row's attributes came in; an empty layer has them too."""
    import cv2

    from sam2elnet.export.layer_files import COMMON_COLUMNS, layer_columns, layer_frame

    assert COMMON_COLUMNS == ("source", "label", "category", "quality", "status", "model_id")
    labs = tmp_path / "labs"
    labs.mkdir()
    cv2.imwrite(str(labs / "a.png"), one_road_label())
    out = tmp_path / "r.gpkg"
    export_labels(labs, out, category="road", model_id="m1", progress=False)
    polys = gpd.read_file(out, layer="labels")
    lines = gpd.read_file(out, layer="centre_lines")
    shared = ["source", "label", "category", "quality", "status"]
    assert list(polys.columns) == [
        "poly_id",
        *shared,
        "area_px",
        "area_map",
        "model_id",
        "geometry",
    ]
    assert list(lines.columns) == [
        *["line_id", *shared, "length_px", "length_m", "model_id", "geometry"]
    ]
    assert set(lines["model_id"]) == set(polys["model_id"]) == {"m1"}
    # a row whose keys come in another order is written in the layer's column order
    cols = layer_columns("length_px")
    row = {"model_id": None, "length_px": 2.0, **dict.fromkeys(shared, "x"), "quality": 0.5}
    frame = layer_frame([row], [shapely.LineString([(0, 0), (2, 0)])], None, cols, "line_id")
    empty = layer_frame([], [], None, cols, "line_id")
    assert list(frame.columns) == list(empty.columns) == ["line_id", *cols, "geometry"]
