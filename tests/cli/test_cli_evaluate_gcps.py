"""``elnet evaluate`` with GCP-only rasters (Sentinel-1 GRD: ground control points, no CRS or
affine transform): a truth on another grid is placed through the GCPs (GDAL's thin plate spline,
data.grids.GCP_METHOD, as vector and coarse labels are placed on such images), GCPs GDAL cannot use are one
``error:`` line, and each file's header is read once per pair.

The GCPs are exactly affine (pixel (row, col) -> x = X0 + 10 col, y = Y0 - 10 row in
EPSG:32633), so the spline through them is exactly that affine map and the resampled counts equal
the on-grid counts worked out by hand: prediction rows / columns 8..23, truth 12..27 ->
TP 144, FP = FN = 112, TN 656.
"""

from __future__ import annotations

import json
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

from sam2elnet.cli import main
from sam2elnet.engine.eval_readback import iter_pairs
from sam2elnet.engine.evaluate import evaluate_folders

X0, Y0 = 500_000.0, 4_000_000.0
UTM = CRS.from_epsg(32633)
HAND = {"tp": 144, "fp": 112, "fn": 112, "tn": 656}


def _gcps(step: float, n: int) -> list[GroundControlPoint]:
    """3 x 3 GCPs over an n x n px raster of ``step`` m pixels."""
    at = (0, n // 2, n)
    return [
        GroundControlPoint(row=r, col=c, x=X0 + step * c, y=Y0 - step * r) for r in at for c in at
    ]


def _tif(path: Path, a: np.ndarray, step: float, gcps: bool) -> Path:
    """``a`` (uint8) on a ``step`` m grid from (X0, Y0): GCPs only, or a CRS and transform."""
    if gcps:
        return write_tif(path, a[None], georef=False, gcps=(_gcps(step, a.shape[0]), UTM))
    return write_tif(path, a[None], crs=UTM, transform=Affine(step, 0, X0, 0, -step, Y0))


def _square(n: int, first: int, last: int) -> np.ndarray:
    a = np.zeros((n, n), np.uint8)
    a[first : last + 1, first : last + 1] = 255
    return a


def _pred(tmp_path: Path, gcps: bool) -> Path:
    return _tif(tmp_path / f"pred_{'gcp' if gcps else 'map'}.tif", _square(32, 8, 23), 10, gcps)


def _truth20(tmp_path: Path, gcps: bool) -> Path:
    """The truth square (10 m rows 12..27) on a 20 m grid: rows 6..13."""
    return _tif(tmp_path / f"truth20_{'gcp' if gcps else 'map'}.tif", _square(16, 6, 13), 20, gcps)


def _counts(res) -> dict:  # noqa: ANN001
    return {k: res.rows()[0][k] for k in HAND}


@pytest.mark.parametrize(
    ("pred_gcps", "truth_gcps"),
    [(True, False), (False, True), (True, True)],
    ids=["gcp-pred_map-truth", "map-pred_gcp-truth", "gcp-pred_gcp-truth-20m"],
)
def test_truth_on_another_grid_is_placed_through_the_gcps(
    tmp_path: Path, pred_gcps: bool, truth_gcps: bool
) -> None:
    pred, truth = _pred(tmp_path, pred_gcps), _truth20(tmp_path, truth_gcps)
    res = evaluate_folders(pred, truth, progress=False)
    assert _counts(res) == HAND
    assert res.resampled[0]["outside_pixels"] == 0
    assert "ground control points in EPSG:32633" in res.resampled[0]["grid"]
    _, p, t = next(iter(iter_pairs(res)))  # the report draws the resampled truth
    assert t.sum() == 256 and (p & t).sum() == 144


def test_same_gcps_and_size_pair_by_pixel_index(tmp_path: Path) -> None:
    pred = _pred(tmp_path, True)
    truth = _tif(tmp_path / "truth.tif", _square(32, 12, 27), 10, True)
    res = evaluate_folders(pred, truth, progress=False)
    assert _counts(res) == HAND and res.resampled == []


def test_polygons_on_a_gcp_only_prediction(tmp_path: Path) -> None:
    pred = _pred(tmp_path, True)
    truth = tmp_path / "slick.gpkg"
    sq = box(X0 + 120, Y0 - 280, X0 + 280, Y0 - 120)
    gpd.GeoDataFrame(geometry=[sq], crs=32633).to_file(truth)
    assert _counts(evaluate_folders(pred, truth, progress=False)) == HAND


def test_gcps_gdal_cannot_solve_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four GCPs on one row: no polynomial through them."""
    pred = tmp_path / "pred.tif"
    with rasterio.open(pred, "w", driver="GTiff", width=32, height=32, count=1,
                       dtype="uint8") as ds:  # fmt: skip
        ds.write(_square(32, 8, 23)[None])
        ds.gcps = ([GroundControlPoint(0, c, X0 + 10 * c, Y0) for c in (0, 8, 16, 24)], UTM)
    truth = _truth20(tmp_path, False)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("evaluate:")]
    assert len(err) == 1 and err[0].startswith(
        f"error: {truth}: cannot be placed on the grid of {pred} (16x16 px of 20 x 20 map units "
        "in EPSG:32633 -> 32x32 px placed by 4 ground control points in EPSG:32633; "
    ), err
    assert err[0].endswith("check the ground control points, or warp both files to one map "
                           "grid first (gdalwarp -t_srs EPSG:xxxx)")  # fmt: skip


def test_no_resample_refuses_a_gcp_truth_on_another_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = _pred(tmp_path, False), _truth20(tmp_path, True)
    js = tmp_path / "e.json"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-resample",
            "--no-progress", "--json", str(js)]  # fmt: skip
    assert main(argv) == 2 and not js.exists()
    assert "drop --no-resample" in capsys.readouterr().err


def test_each_header_is_read_once_per_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """other_grid and the streaming check share one header read per file (no use_windows)."""
    from sam2elnet.data import grids, windowed

    pred = _pred(tmp_path, False)
    truth = _tif(tmp_path / "truth.tif", _square(32, 12, 27), 10, False)
    seen: list[Path] = []
    real = grids.raster_header

    def counted(path):  # noqa: ANN001, ANN202
        seen.append(Path(path))
        return real(path)

    def no(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("header read again")

    monkeypatch.setattr(grids, "raster_header", counted)
    monkeypatch.setattr(windowed, "use_windows", no)
    # roads=False: the auto road decision (the default) reads the truth on its own
    assert _counts(evaluate_folders(pred, truth, roads=False, progress=False)) == HAND
    assert sorted(seen) == sorted([pred, truth])
    # a large pair still streams: the same decision from the headers already read
    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
    seen.clear()
    res = evaluate_folders(pred, truth, roads=False, progress=False)
    assert _counts(res) == HAND and sorted(seen) == sorted([pred, truth])
    js = json.dumps(res.to_dict())  # JSON-ready as before
    assert '"n_truth_resampled": 0' in js
