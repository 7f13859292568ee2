"""One grid rule for raster labels (data.grids): GCP-only labels and images placed through the GCPs.

Every raster label reader puts a label on its image's grid the same way: ``read_mask_on_grid``
(whole images: ``elnet enhance``), ``CoarseSource`` (``elnet scene --labels``, large ``enhance``
images, window by window) and ``elnet evaluate`` (tests/cli/test_cli_evaluate_gcps.py). The
GCP maps here are affine (a sheared 10 m grid in EPSG:32633), so the true position of every
pixel is known exactly; a label pixel must land on the image pixel its map position falls in.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers_data import write_tif
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from shapely.geometry import box

from sam2elnet.data.grids import GCP_METHOD, GcpGrid
from sam2elnet.data.images import read_image
from sam2elnet.data.masks import read_mask_on_grid
from sam2elnet.data.tiling import plan_windows
from sam2elnet.engine.scene_coarse import CoarseSource
from sam2elnet.errors import DataError

UTM = CRS.from_epsg(32633)
LAB_MAP = Affine(10, 2, 500000, 1, -10, 4000000)  # label pixel (col, row) -> map (x, y), sheared
IMG_T = Affine(5, 0, 500023, 0, -5, 3999969)  # the image: 5 m pixels, north-up
IMG_GCP_MAP = Affine(6, -1, 500011, 0.5, -6, 3999987)  # another GCP-only image grid


def _gcps(m: Affine, h: int, w: int, n: int = 4) -> list[GroundControlPoint]:
    """n x n GCPs at pixel corners (0 .. h, 0 .. w) following the affine map ``m``."""
    out = []
    for r in np.linspace(0, h, n):
        for c in np.linspace(0, w, n):
            x, y = m * (c, r)
            out.append(GroundControlPoint(row=float(r), col=float(c), x=x, y=y))
    return out


def _tif(path: Path, a: np.ndarray, *, transform: Affine | None = None, gcps=None) -> Path:
    """``a`` (H, W) in EPSG:32633 by ``transform`` and / or ``gcps`` (neither: no georeference)."""
    geo = {} if transform is None else {"crs": UTM, "transform": transform}
    return write_tif(path, a[None], georef=False, gcps=None if gcps is None else (gcps, UTM), **geo)


def _label() -> np.ndarray:
    lab = np.zeros((48, 48), np.uint8)
    lab[10:30, 12:36] = 255
    return lab


def _expected(lab: np.ndarray, img_map: Affine, shape: tuple[int, int], lab_map: Affine):
    """The label value under each image pixel centre (exact), the fractional label pixel
    position's distance to the nearest label pixel edge, and whether it lies inside the label."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x, y = img_map * (cols + 0.5, rows + 0.5)
    lc, lr = ~lab_map * (x, y)
    inside = (lr >= 0) & (lr < lab.shape[0]) & (lc >= 0) & (lc < lab.shape[1])
    ri = np.clip(np.floor(lr).astype(int), 0, lab.shape[0] - 1)
    ci = np.clip(np.floor(lc).astype(int), 0, lab.shape[1] - 1)
    obj = (lab[ri, ci] > 0) & inside
    edge = np.minimum(np.abs(lr - np.round(lr)), np.abs(lc - np.round(lc)))
    return obj, edge, inside


def _check(got, valid, lab, img_map, shape, lab_map) -> None:
    obj, edge, inside = _expected(lab, img_map, shape, lab_map)
    # GDAL's warper approximates the transformer to 0.125 px: only pixels whose centre falls
    # within that of a label pixel edge may take the neighbour's value
    wrong = got != obj
    assert not (wrong & (edge > 0.13)).any(), np.argwhere(wrong & (edge > 0.13))[:5]
    assert wrong.mean() < 0.02
    # the object lands where it belongs: centroids agree within 0.5 image px
    np.testing.assert_allclose(
        np.argwhere(got).mean(axis=0), np.argwhere(obj).mean(axis=0), atol=0.5
    )
    assert valid is not None and not valid[~inside].any()


def test_gcp_only_label_on_a_georeferenced_image(tmp_path: Path) -> None:
    lab = _label()
    f = _tif(tmp_path / "l.tif", lab, gcps=_gcps(LAB_MAP, 48, 48))
    img = read_image(_tif(tmp_path / "i.tif", np.zeros((96, 96), np.uint8), transform=IMG_T))
    got, valid = read_mask_on_grid(f, img)
    _check(got, valid, lab, IMG_T, (96, 96), LAB_MAP)


def test_georeferenced_label_on_a_gcp_only_image(tmp_path: Path) -> None:
    lab = _label()
    lab_t = Affine(10, 0, 500000, 0, -10, 4000000)
    f = _tif(tmp_path / "l.tif", lab, transform=lab_t)
    g = _gcps(IMG_GCP_MAP, 80, 80)
    img = read_image(_tif(tmp_path / "i.tif", np.zeros((80, 80), np.uint8), gcps=g))
    got, valid = read_mask_on_grid(f, img)
    _check(got, valid, lab, IMG_GCP_MAP, (80, 80), lab_t)


def test_two_gcp_only_rasters_with_different_gcps(tmp_path: Path) -> None:
    lab = _label()
    f = _tif(tmp_path / "l.tif", lab, gcps=_gcps(LAB_MAP, 48, 48))
    g = _gcps(IMG_GCP_MAP, 80, 80)
    img = read_image(_tif(tmp_path / "i.tif", np.zeros((80, 80), np.uint8), gcps=g))
    got, valid = read_mask_on_grid(f, img)
    _check(got, valid, lab, IMG_GCP_MAP, (80, 80), LAB_MAP)


def test_same_gcp_grid_is_used_by_pixel_index(tmp_path: Path) -> None:
    lab = _label()
    g = _gcps(LAB_MAP, 48, 48)
    f = _tif(tmp_path / "l.tif", lab, gcps=g)
    img = read_image(_tif(tmp_path / "i.tif", np.zeros((48, 48), np.uint8), gcps=g))
    got, valid = read_mask_on_grid(f, img)
    np.testing.assert_array_equal(got, lab > 0)
    assert valid is None


def _coarse_by_windows(label: Path, scene: Path, tile: int, overlap: int) -> np.ndarray:
    """The scene path's coarse label, read window by window; its placed copy (a label on
    another grid) is removed on close."""
    with rasterio.open(scene) as ds:
        cs = CoarseSource(label, ds)
        placed = None if cs._placed is None else Path(cs._placed.name)
        out = np.zeros((ds.height, ds.width), np.uint8)
        try:
            for w in plan_windows(ds.height, ds.width, tile, overlap):
                out[w.slices] = cs.read(w)
        finally:
            cs.close()
    assert placed is None or not placed.parent.exists()
    return out


@pytest.mark.parametrize("case", ["gcp_label", "gcp_scene", "both_gcps"])
def test_scene_windows_place_the_label_as_the_whole_image_reader(tmp_path: Path, case: str):
    """``elnet scene --labels`` (window by window) puts the label where ``read_mask_on_grid``
    (whole image) does: same pixels, for every window offset, GCP label or GCP scene."""
    lab = _label()
    lab_gcp = case in ("gcp_label", "both_gcps")
    lab_t = Affine(10, 0, 500000, 0, -10, 4000000)
    f = _tif(
        tmp_path / "l.tif",
        lab,
        gcps=_gcps(LAB_MAP, 48, 48) if lab_gcp else None,
        transform=None if lab_gcp else lab_t,
    )
    if case == "gcp_label":
        scene = _tif(tmp_path / "s.tif", np.ones((96, 96), np.uint8), transform=IMG_T)
        img_map, shape = IMG_T, (96, 96)
    else:
        g = _gcps(IMG_GCP_MAP, 80, 80)
        scene = _tif(tmp_path / "s.tif", np.ones((80, 80), np.uint8), gcps=g)
        img_map, shape = IMG_GCP_MAP, (80, 80)
    whole, valid = read_mask_on_grid(f, read_image(scene))
    tiled = _coarse_by_windows(f, scene, tile=32, overlap=8)
    np.testing.assert_array_equal(tiled.astype(bool), whole)
    _check(tiled.astype(bool), valid, lab, img_map, shape, LAB_MAP if lab_gcp else lab_t)


def _noisy_gcps() -> tuple[list[GroundControlPoint], int]:
    """5 x 5 GCPs on the label's affine map, the centre one moved to the centre of label pixel
    (24, 24) and its map position 30 m east of the map's: returns them and that GCP's index. A
    least-squares polynomial cannot pass through it; the thin plate spline does."""
    g = _gcps(LAB_MAP, 48, 48, n=5)
    k = 12
    x, y = LAB_MAP * (24.5, 24.5)
    g[k] = GroundControlPoint(row=24.5, col=24.5, x=x + 30.0, y=y)
    return g, k


def test_gcp_labels_follow_the_thin_plate_spline_through_every_gcp(tmp_path: Path) -> None:
    """The label pixel of a GCP lands on the image pixel whose centre is that GCP's map
    position, as ``--warp-to`` (gdalwarp -tps) puts it; the GCP polynomial misses that pixel."""
    g, k = _noisy_gcps()
    lab = np.zeros((48, 48), np.uint8)
    lab[24, 24] = 255  # the GCP's label pixel (its centre is the GCP)
    f = _tif(tmp_path / "l.tif", lab, gcps=g)
    img_t = Affine(5, 0, g[k].x - 57.5 * 5, 0, -5, g[k].y + 37.5 * 5)  # pixel (37, 57) centred
    img = read_image(_tif(tmp_path / "i.tif", np.zeros((96, 96), np.uint8), transform=img_t))
    got, _ = read_mask_on_grid(f, img)
    assert got[37, 57]
    assert 2 <= got.sum() <= 8  # one 10 m label pixel: about 2 x 2 image pixels of 5 m
    from rasterio.transform import GCPTransformer

    with GCPTransformer(g) as poly, GcpGrid(g, None).transformer() as tps:
        pr, pc = poly.rowcol(g[k].x, g[k].y, op=lambda v: v)
        tr, tc = tps.rowcol(g[k].x, g[k].y, op=lambda v: v)
    assert abs(tr - 24.5) < 0.01 and abs(tc - 24.5) < 0.01  # the spline passes through it
    assert not (24 <= pr < 25 and 24 <= pc < 25)  # the polynomial: another label pixel
    assert GCP_METHOD == "GCP_TPS"
    from sam2elnet.data.warp import _GDAL_METHOD

    assert _GDAL_METHOD["tps"] == GCP_METHOD  # the warp default is the same transformer


def test_vector_labels_follow_the_same_spline(tmp_path: Path) -> None:
    """A polygon drawn at a (noisy) GCP's map position lands on that GCP's pixel of a GCP-only
    image, within 0.5 px: the vector reader uses the raster readers' transformer."""
    from sam2elnet.data.vector import VectorLabels

    g, k = _noisy_gcps()
    x, y = g[k].x, g[k].y
    gdf = gpd.GeoDataFrame(geometry=[box(x - 15, y - 15, x + 15, y + 15)], crs=UTM)
    gdf.to_file(tmp_path / "v.gpkg")
    vec = VectorLabels.from_file(
        tmp_path / "v.gpkg", crs=UTM, transform=Affine.identity(), gcps=g, height=48, width=48
    )
    got = vec.rasterize().astype(bool)
    cy, cx = np.argwhere(got).mean(axis=0) + 0.5
    assert got.sum() >= 3
    assert abs(cx - g[k].col) <= 0.5 and abs(cy - g[k].row) <= 0.5, (cx, cy)


def test_unplaceable_gcps_are_one_error_naming_the_label(tmp_path: Path) -> None:
    """GCPs GDAL cannot fit (all on one line): a DataError naming the label and what to do."""
    line = [GroundControlPoint(row=0, col=c, x=500000 + 10 * c, y=4000000) for c in (0, 16, 32)]
    f = _tif(tmp_path / "l.tif", _label(), gcps=line)
    scene = _tif(tmp_path / "s.tif", np.ones((96, 96), np.uint8), transform=IMG_T)
    with pytest.raises(DataError) as err:
        read_mask_on_grid(f, read_image(scene))
    assert str(f) in str(err.value) and "warp both files to one map grid" in str(err.value)
    with pytest.raises(DataError) as err:
        _coarse_by_windows(f, scene, 32, 8)
    assert str(f) in str(err.value) and "warp both files to one map grid" in str(err.value)


def test_cli_scene_labels_a_gcp_only_coarse_raster_on_its_map_position(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``elnet scene --labels`` with a GCP-only coarse raster on a georeferenced scene runs (it
    used to stop: "one of them has no CRS"), says where the label was placed, and the dry-run
    model's label (the smoothed coarse label on an image flat around it, thresholded: a shrunk copy) lies
    inside the label's true footprint, centred on it."""
    from sam2elnet.cli import main

    lab = _label()
    f = _tif(tmp_path / "l.tif", lab, gcps=_gcps(LAB_MAP, 48, 48))
    img = np.full((96, 96), 100, np.uint8)
    # content 15 px below the label's footprint (rows 7..50; a constant scene is refused as
    # unusable): brighter than the flat 100, its smoothed half stays below the threshold
    img[66:] = np.random.default_rng(0).integers(101, 256, (30, 96))
    scene = _tif(tmp_path / "s.tif", img, transform=IMG_T)
    out = tmp_path / "o.tif"
    args = ["scene", "--model", "builtin:smoothing", "--image", str(scene), "--labels", str(f)]
    assert main([*args, "--out", str(out), "--tile", "64", "--overlap", "16", "--no-progress"]) == 0
    assert "l.tif: placed on the scene grid by map position" in capsys.readouterr().err
    with rasterio.open(out) as ds:
        got = ds.read(1) == 255
    obj = _expected(lab, IMG_T, (96, 96), LAB_MAP)[0]
    assert got.sum() > 0.25 * obj.sum() and not (got & ~obj).any()  # smoothing shrinks it, inside
    np.testing.assert_allclose(np.argwhere(got).mean(0), np.argwhere(obj).mean(0), atol=0.5)


def test_cli_scene_label_without_shared_georeference_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A coarse raster of another size next to a GCP-only scene, the label without any
    georeference: one ``error:`` line naming the label, exit 2, no output written."""
    from sam2elnet.cli import main

    f = _tif(tmp_path / "l.tif", _label())  # 48 x 48, no georeference
    g = _gcps(IMG_GCP_MAP, 80, 80)
    # not constant: a constant scene is refused (before the model loads) ahead of its label
    content = (np.arange(80 * 80) % 7 + 1).astype(np.uint8).reshape(80, 80)
    scene = _tif(tmp_path / "s.tif", content, gcps=g)
    out = tmp_path / "o.tif"
    args = ["scene", "--model", "builtin:smoothing", "--image", str(scene), "--labels", str(f)]
    assert main([*args, "--out", str(out), "--no-progress"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and str(f) in err[0] and "cannot be aligned" in err[0], err
    assert list(tmp_path.iterdir()) == [f, scene] or sorted(tmp_path.iterdir()) == sorted(
        [f, scene]
    )
