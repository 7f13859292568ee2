"""One polygon file shared by many predictions (``elnet evaluate --pred DIR --truth FILE.gpkg``):
reprojected and repaired once per prediction CRS, each tile given only the features near it, and
the masks exactly those of placing the whole file on every tile."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import LineString, Point, Polygon, box

from sam2elnet.engine.eval_vector import VectorTruth

X0, Y0 = 500_000.0, 4_000_000.0  # EPSG:32633; the EPSG:32634 tiles sit at the same numbers


def _tile(path: Path, col: int, row: int, epsg: int = 32633) -> Path:
    """A 16 x 16 px GeoTIFF of 10 m pixels, tile (col, row) of a grid starting at X0, Y0."""
    t = Affine(10, 0, X0 + 160 * col, 0, -10, Y0 - 160 * row)
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8",
                       crs=f"EPSG:{epsg}", transform=t) as ds:  # fmt: skip
        ds.write(np.zeros((1, 16, 16), np.uint8))
    return path


def _layer(tmp_path: Path) -> Path:
    """Polygons in EPSG:4326 over a 4 x 2 tile block: random squares, one bow-tie (invalid),
    one square across a tile corner, a road line just outside tile (0, 0) that a 60 m width
    brings into it, two more lines inside tiles and a point."""
    rng = np.random.default_rng(3)
    geoms = [
        box(x, y, x + 40, y + 40)
        for x, y in zip(X0 + rng.random(40) * 600, Y0 - 320 + rng.random(40) * 300, strict=True)
    ]
    geoms.append(Polygon([(X0 + 20, Y0 - 20), (X0 + 120, Y0 - 120), (X0 + 120, Y0 - 20),
                          (X0 + 20, Y0 - 120)]))  # fmt: skip
    geoms.append(box(X0 + 140, Y0 - 180, X0 + 180, Y0 - 140))  # over the corner of 4 tiles
    geoms.append(LineString([(X0 - 20, Y0 - 200), (X0 - 20, Y0 + 50)]))  # 20 m west of the block
    geoms.append(LineString([(X0 + 330, Y0 - 200), (X0 + 470, Y0 - 300)]))  # inside tile (2, 1)
    geoms.append(LineString([(X0 + 490, Y0 - 10), (X0 + 630, Y0 - 150)]))  # inside tile (3, 0)
    geoms.append(Point(X0 + 250, Y0 - 250))
    path = tmp_path / "truth.gpkg"
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_crs(4326).to_file(path)
    return path


@pytest.mark.parametrize("width", [None, (60.0, "map"), (6.0, "px")])
def test_shared_file_masks_equal_placing_the_whole_file(
    tmp_path: Path,
    width: tuple[float, str] | None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = _layer(tmp_path)
    tiles = [_tile(tmp_path / f"a{c}{r}.tif", c, r) for c in range(4) for r in range(2)]
    tiles += [_tile(tmp_path / f"b{c}.tif", c, 0, epsg=32634) for c in range(2)]
    calls = {"to_crs": 0}
    to_crs = gpd.GeoDataFrame.to_crs

    def counted(self: gpd.GeoDataFrame, *a: object, **k: object) -> gpd.GeoDataFrame:
        calls["to_crs"] += 1
        return to_crs(self, *a, **k)

    monkeypatch.setattr(gpd.GeoDataFrame, "to_crs", counted)
    masks = {}
    for reuse in (True, False):
        calls["to_crs"] = 0
        vt = VectorTruth.shared(layer)
        vt.reuse = reuse
        vt.line_width, vt.line_width_unit = width or (None, "map")
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            masks[reuse] = [vt.on_grid(layer, t) for t in tiles]
        # reprojected once per CRS (2), not once per tile (10)
        assert calls["to_crs"] == (2 if reuse else len(tiles))
        repaired = [n for n in vt.notes if "repaired 1 invalid geometry" in n]
        assert len(repaired) == 1, vt.notes
        assert sum("repaired" in r.getMessage() for r in caplog.records) == 1
        # notes count the whole file, once, however many tiles hold a part of it
        said = [r.getMessage() for r in caplog.records]
        if width is None:
            assert [m for m in said if "burnt 1 px wide" in m] == [
                f"{layer}: 3 line features burnt 1 px wide; give a line width (--line-width, "
                "map units or px) to buffer roads to their real width"
            ]
            assert [m for m in said if "point feature" in m] == [
                f"{layer}: 1 point feature skipped (give a line width to buffer them into discs)"
            ]
        else:
            assert not [m for m in said if "burnt" in m or "point feature" in m]
    for t, a, b in zip(tiles, masks[True], masks[False], strict=True):
        np.testing.assert_array_equal(a, b, err_msg=t.name)
    first = masks[True][0]  # tile (0, 0): the bow-tie, the corner square, the line when wide
    assert first[14:, 14:].all() and first.any()
    # the line 20 m west of tile (0, 0), 60 m wide, reaches 10 m (1 column) into it
    assert first[:, 0].all() == (width is not None)


def test_evaluate_folder_against_a_shared_file_counts_as_before(tmp_path: Path) -> None:
    """evaluate_folders over the tiles: the pixel counts with the per-CRS reuse equal those of
    placing the whole file on every tile (the code before the reuse)."""
    from sam2elnet.engine import evaluate as ev

    layer = _layer(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    for c in range(4):
        for r in range(2):
            _tile(pred / f"t{c}{r}.tif", c, r)
    totals = []
    for reuse in (True, False):
        real = ev.pair_inputs

        def patched(*a: object, _real=real, _reuse=reuse, **k: object):  # noqa: ANN202
            pairs = _real(*a, **k)
            pairs.layer.reuse = _reuse
            return pairs

        ev.pair_inputs = patched
        try:
            res = ev.evaluate_folders(pred, layer, progress=False)
        finally:
            ev.pair_inputs = real
        totals.append(res.total.as_dict())
    assert totals[0] == totals[1] and totals[0]["fn"] > 0


def test_one_georeference_rule_and_its_error(tmp_path: Path) -> None:
    """``georeferenced`` is export's rule (``GcpGrid.placeable``): a CRS, or >= 3 GCPs with a
    CRS; ``need_georeference`` is the one error of a shared polygon file on rasters without one
    (was: the same check and message written out three times in eval_inputs)."""
    from rasterio.control import GroundControlPoint

    from sam2elnet.data.georef import georeferenced
    from sam2elnet.engine.eval_vector import need_georeference
    from sam2elnet.errors import UserError

    def plain(path: Path, gcps: int = 0, crs: str | None = None) -> Path:
        with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1,
                           dtype="uint8") as ds:  # fmt: skip
            ds.write(np.zeros((1, 16, 16), np.uint8))
            if gcps:
                pts = [GroundControlPoint(r, c, X0 + 10 * c, Y0 - 10 * r)
                       for r, c in [(0, 0), (0, 16), (16, 0), (16, 16)][:gcps]]  # fmt: skip
                ds.gcps = (pts, crs)
        return path

    tile = _tile(tmp_path / "t.tif", 0, 0)
    png_like = plain(tmp_path / "p.tif")
    assert georeferenced(tile) and not georeferenced(png_like)
    assert georeferenced(plain(tmp_path / "g3.tif", 3, "EPSG:32633"))
    assert not georeferenced(plain(tmp_path / "g2.tif", 2, "EPSG:32633"))  # too few
    need_georeference([png_like, tile], "prediction", "do X", tmp_path / "l.gpkg")  # one has
    need_georeference([], "prediction", "do X", tmp_path / "l.gpkg")  # nothing to place on
    with pytest.raises(UserError) as err:
        need_georeference([png_like], "prediction", "do X", tmp_path / "l.gpkg", "in d")
    assert err.value.path == tmp_path / "l.gpkg"
    assert str(err.value).endswith(
        "the only prediction in d has no georeference (CRS + transform, or GCPs), so the "
        "polygons of one file cannot be placed on it; do X"
    )


def test_layer_check_of_a_valid_area(caplog: pytest.LogCaptureFixture) -> None:
    """Role ``"valid"``: no counted pixel in any pair is a DataError; some pairs without one
    are named in one warning; an unknown role is a KeyError."""
    from sam2elnet.engine.eval_vector import layer_check
    from sam2elnet.engine.metrics import Confusion
    from sam2elnet.errors import DataError

    with pytest.raises(DataError, match="none of its valid-area polygons covers a counted pixel"):
        layer_check(Path("aoi.gpkg"), [Confusion(), Confusion()], "valid", ["a", "b"])
    with caplog.at_level(logging.WARNING):
        layer_check(Path("aoi.gpkg"), [Confusion(tn=4), Confusion()], "valid", ["a", "b"])
    assert caplog.messages == [
        "aoi.gpkg: 1 of 2 predictions has no counted pixel inside its valid-area polygons, "
        "so it has no score: b"
    ]
    with pytest.raises(KeyError):
        layer_check(Path("aoi.gpkg"), [Confusion(tn=4)], "area")
