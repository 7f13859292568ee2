"""One place where a GCP grid is obtained from a raster (data.grids.GcpGrid): building it checks
the GCPs (data.gcp_check), so every reader of a GCP-only raster warns about a mistyped GCP, once
per GCP set and run, without calling the check itself; no other module builds a GCP transformer,
an affine fit to GCPs or runs the check.

The raster: 64 x 64 px, a 5 x 6 lattice of GCPs on a sheared EPSG:4326 map, one GCP moved 30
columns (as tests/data/test_gcp_check.py).
"""

from __future__ import annotations

import ast
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

import sam2elnet
from sam2elnet.data import gcp_check
from sam2elnet.utils.run_warnings import RunWarnings

os.environ.setdefault("SAM2ELNET_THREADS", "1")

WGS84 = CRS.from_epsg(4326)
SIZE = 64


def _lonlat(row: float, col: float) -> tuple[float, float]:
    return 28.0 + 1e-4 * col + 2e-5 * row, 43.0 - 9e-5 * row - 1e-5 * col


def _gcps(bad: int | None = 8) -> list[GroundControlPoint]:
    out = []
    for r in np.linspace(0, SIZE, 5):
        for c in np.linspace(0, SIZE, 6):
            x, y = _lonlat(r, c)
            out.append(GroundControlPoint(row=r, col=c, x=x, y=y, id=str(len(out) + 1)))
    if bad is not None:
        g = out[bad]
        out[bad] = GroundControlPoint(row=g.row, col=g.col + 30.0, x=g.x, y=g.y, id=g.id)
    return out


def _tif(path: Path, gcps: list[GroundControlPoint], value: int = 255) -> Path:
    a = np.zeros((1, SIZE, SIZE), np.uint8)
    a[0, 20:40, 20:40] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", height=SIZE, width=SIZE, count=1, dtype="uint8"
        ) as ds:
            ds.write(a)
            ds.gcps = (gcps, WGS84)
    return path


def _open(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path)


def _read_image(p: Path) -> None:
    from sam2elnet.data.images import read_image

    read_image(p)


def _vector_grid(p: Path) -> None:
    from sam2elnet.data.vector import image_grid

    with _open(p) as ds:
        image_grid(ds)


def _label_raster(p: Path) -> None:
    from sam2elnet.export.labels import LabelRaster

    LabelRaster(p).close()


def _warp(p: Path) -> None:
    from sam2elnet.data.warp import warp_to_map_grid

    warp_to_map_grid(p, p.with_name("warped.tif"), "utm")


def _pixels_to_map(p: Path) -> None:
    from sam2elnet.data.warp import pixels_to_map

    with _open(p) as ds:
        pixels_to_map(ds, np.array([0.0]), np.array([0.0]), WGS84)


def _footprints(p: Path) -> None:
    from sam2elnet.engine.scene_writer import windows_geo

    with _open(p) as ds:
        windows_geo(ds)(0, 0, 32, 32)


def _placed_on_other_grid(p: Path) -> None:
    from sam2elnet.data.grids import other_grid, resample_nearest

    other = _tif(p.with_name("other.tif"), _gcps(bad=None))  # correct GCPs: no warning of its own
    grid = other_grid(p, other)
    assert grid is not None
    with _open(p) as ds:
        resample_nearest(ds.read(1), grid, fill=0, path=p, like=other)


READERS = {
    "read_image": _read_image,
    "vector image_grid": _vector_grid,
    "export LabelRaster": _label_raster,
    "warp_to_map_grid": _warp,
    "pixels_to_map": _pixels_to_map,
    "quality-gpkg footprints": _footprints,
    "resample_nearest": _placed_on_other_grid,
}


def _gcp_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == gcp_check.log.name]


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_of_a_gcp_raster_warns_once_naming_it(tmp_path: Path, caplog, reader: str):
    p = _tif(tmp_path / "grd.tif", _gcps())
    with caplog.at_level(logging.WARNING), RunWarnings("file"):
        READERS[reader](p)
        READERS[reader](p)  # the same GCP set again in the run: not repeated
    [text] = _gcp_warnings(caplog)
    assert text.startswith(f"{p}: 1 of its 30 ground control points lies far from")
    assert "GCP 9 (id 9, row 16, col 55.6) 30.0 px" in text


def test_all_readers_in_one_run_warn_once(tmp_path: Path, caplog):
    p = _tif(tmp_path / "grd.tif", _gcps())
    with caplog.at_level(logging.WARNING), RunWarnings("file") as run:
        for read in READERS.values():
            read(p)
    assert len(_gcp_warnings(caplog)) == 1
    assert run.counts()[gcp_check.GCP_OUTLIER_KIND] == 1


def test_gcp_grid_of_a_dataset(tmp_path: Path, caplog):
    """GcpGrid.of: the GCPs and their CRS of a GCP-only raster (checked), None for a raster with
    a CRS; ``placeable`` needs >= 3 GCPs with a CRS; the affine fit maps pixel corners to the
    GCPs' map positions (the GCPs here are affine)."""
    from affine import Affine

    from sam2elnet.data.grids import GcpGrid

    good = _gcps(bad=None)
    with _open(_tif(tmp_path / "g.tif", good)) as ds:
        grid = GcpGrid.of(ds)
    assert grid is not None and grid.placeable and grid.crs == WGS84
    assert len(grid.gcps) == 30 and grid.residuals.outliers == ()
    x, y = grid.affine() * (64.0, 16.0)
    assert (x, y) == pytest.approx(_lonlat(16.0, 64.0), abs=1e-9)
    with grid.transformer() as tr:
        assert tr.xy(16.0, 64.0, offset="ul") == pytest.approx(_lonlat(16.0, 64.0), abs=1e-9)
    assert not GcpGrid(good[:2], WGS84).placeable and not GcpGrid(good, None).placeable
    with rasterio.open(
        tmp_path / "t.tif", "w", driver="GTiff", height=4, width=4, count=1, dtype="uint8",
        crs=WGS84, transform=Affine(1e-4, 0, 28, 0, -1e-4, 43),
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 4, 4), np.uint8))
    with rasterio.open(tmp_path / "t.tif") as ds:
        assert GcpGrid.of(ds) is None
    assert not _gcp_warnings(caplog)


def _calls(tree: ast.AST, names: set[str]) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name in names:
                out.append((name, node.lineno))
    return out


def test_gcp_grids_are_built_in_one_place():
    """The GCP check, GDAL's GCP transformer and the affine fit to GCPs are called in
    data/grids.py (GcpGrid) only, so a new reader cannot place anything through GCPs without
    the check."""
    root = Path(sam2elnet.__file__).parent
    allowed = {root / "data" / "grids.py", root / "data" / "gcp_check.py"}
    found = []
    for f in sorted(root.rglob("*.py")):
        if f in allowed:
            continue
        calls = _calls(ast.parse(f.read_text()), {"check_gcps", "GCPTransformer", "from_gcps"})
        found += [f"{f.relative_to(root)}:{line} {name}" for name, line in calls]
    assert found == []
