"""Road centre lines of large labels, thinned in row strips with a halo (export.centreline_layer,
data.skeleton.strip_centre_lines): the same lines as one whole thinning."""

from __future__ import annotations

import cv2
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin
from scipy import ndimage

from sam2elnet.cli import main
from sam2elnet.data import windowed
from sam2elnet.data.skeleton import THIN_BYTES_PER_PX
from sam2elnet.export import centreline_layer
from sam2elnet.export.centrelines import mask_lines
from sam2elnet.export.labels import LabelRaster


def _roads(rng: np.random.Generator, h: int, w: int, wide: bool) -> np.ndarray:
    """Bool mask of 1-5 polyline roads 1-12 px wide (some closed into loops), plus a few wide
    blobs (squares, junction plazas) when ``wide``."""
    m = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        pts = np.stack([rng.integers(0, w, 3), rng.integers(0, h, 3)], axis=1).astype(np.int32)
        closed = bool(rng.random() < 0.2)
        cv2.polylines(m, [pts.reshape(-1, 1, 2)], closed, 255, int(rng.integers(1, 13)))
    out = m > 0
    if wide:
        seeds = rng.random((h, w)) < 0.001
        out |= ndimage.binary_dilation(seeds, iterations=int(rng.integers(3, 16)))
    return out


def _key(lines: list) -> list[str]:
    return sorted(g.wkt for g in lines)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(64, 160),
    st.integers(64, 160),
    st.booleans(),
    st.integers(1, 48),
    st.sampled_from([4, 6, 10, 64]),
)
def test_strip_lines_equal_whole_lines(seed, h, w, wide, strip_rows, halo):
    mask = _roads(np.random.default_rng(seed), h, w, wide)
    whole = mask_lines(mask)
    strips = mask_lines(mask, strip_rows=strip_rows, halo_rows=halo)
    borders = (h - 1) // strip_rows
    # the same total length (within 1 px per strip border; in fact exactly the same lines)
    total = sum(g.length for g in whole)
    assert sum(g.length for g in strips) == pytest.approx(total, abs=max(borders, 1e-9))
    assert _key(strips) == _key(whole)
    # every vertex on a road pixel centre
    for g in strips:
        xy = shapely.get_coordinates(g) - 0.5
        assert np.all(xy == np.floor(xy))
        assert mask[xy[:, 1].astype(int), xy[:, 0].astype(int)].all()
    # no line ends on a strip border where the whole label's line runs on
    ends = lambda lines: {tuple(p) for g in lines for p in shapely.get_coordinates(g)[[0, -1]]}  # noqa: E731
    assert ends(strips) == ends(whole)


def test_a_road_crossing_strip_borders_stays_one_line():
    # a 5 px road running diagonally down 96 rows: 12 strips of 8 rows, halo 4 (doubled where
    # needed): one line, as the whole label
    mask = np.zeros((96, 80), bool)
    for r in range(96):
        mask[r, 4 + r // 2 : 9 + r // 2] = True
    whole = mask_lines(mask)
    strips = mask_lines(mask, strip_rows=8, halo_rows=4)
    assert len(whole) == len(strips) == 1
    assert _key(strips) == _key(whole)
    assert strips[0].length > 90


@pytest.mark.parametrize("strip_rows", range(54, 68))
def test_a_junction_on_a_strip_border_stays_a_junction(strip_rows):
    # a T: horizontal road (rows 60..64), a vertical one up from it (cols 38..42); some strip
    # border lands on the junction's row, where the strip below sees only two of its three
    # branches (left and right) and must not join them into one line
    mask = np.zeros((100, 80), bool)
    mask[60:65, 4:76] = True
    mask[4:65, 38:43] = True
    whole = mask_lines(mask)
    assert len(whole) == 3
    assert _key(mask_lines(mask, strip_rows=strip_rows, halo_rows=8)) == _key(whole)


def _scene_label(path, size: int = 256) -> np.ndarray:
    """A tiled 0/1 GeoTIFF like an ``elnet scene`` label (10 m, EPSG:32633, SOURCE tag) of a
    road network: a grid of 4-7 px wide roads and a loop."""
    m = np.zeros((size, size), np.uint8)
    for k, c in enumerate(range(20, size, 70)):
        cv2.line(m, (c, 0), (c + 30, size - 1), 1, 4 + k % 4)
        cv2.line(m, (0, c + 10), (size - 1, c - 5), 1, 5)
    cv2.circle(m, (size // 2, size // 2), size // 5, 1, 6)
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8",
        crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10),
        tiled=True, blockxsize=64, blockysize=64,
    ) as ds:  # fmt: skip
        ds.write(m, 1)
        ds.update_tags(SOURCE="scene.tif")
    return m.astype(bool)


def test_cli_export_of_a_large_scene_label_thins_in_strips(tmp_path, capsys, monkeypatch):
    label = tmp_path / "scene_label.tif"
    _scene_label(label)
    args = ["export", "--labels", str(label), "--category", "road", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "whole.gpkg")]) == 0
    whole = gpd.read_file(tmp_path / "whole.gpkg", layer="centre_lines")

    # a budget for 64-row strips (+ 2 x 64 halo rows) of the 256 px label: 4 strips; the
    # polygons in 32-row strips too, so no read of the label is whole
    monkeypatch.setattr(
        centreline_layer, "MEMORY_BUDGET_BYTES", THIN_BYTES_PER_PX * 256 * (64 + 128)
    )
    monkeypatch.setattr(windowed, "STRIP_PIXELS", 32 * 256)
    reads: list[int] = []
    real = LabelRaster.read_mask

    def spy(self, row0=0, rows=None, col0=0, cols=None):
        reads.append(self.height - row0 if rows is None else rows)
        return real(self, row0, rows, col0, cols)

    monkeypatch.setattr(LabelRaster, "read_mask", spy)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "strips.gpkg")]) == 0
    out = capsys.readouterr()
    strips = gpd.read_file(tmp_path / "strips.gpkg", layer="centre_lines")
    assert reads and max(reads) < 256
    assert "centre lines scene_label.tif: 4/4 strips in" in out.out + out.err
    assert len(whole) > 5
    assert _key(strips.geometry) == _key(whole.geometry)
    cols = ["source", "quality", "length_px", "length_m"]
    a = whole.sort_values("length_px").reset_index(drop=True)[cols]
    b = strips.sort_values("length_px").reset_index(drop=True)[cols]
    assert a.equals(b)
    assert set(strips["source"]) == {"scene.tif"}
