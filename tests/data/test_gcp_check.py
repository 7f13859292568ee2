"""The GCP outlier check (data.gcp_check): a GCP far from the polynomial fitted to the others is
named in one warning per GCP set and run; correct GCPs (affine, smoothly curved, noisy) are not.

The GCPs here lie on a GRD-like grid in EPSG:4326 (a sheared map, about 10 m pixels) whose
pixel -> map relation is known, so a GCP moved by a known number of pixels has that residual.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from sam2elnet.data import gcp_check
from sam2elnet.data.gcp_check import (
    GCP_OUTLIER_KIND,
    OUTLIER_FLOOR_PX,
    check_gcps,
    gcp_residuals,
)
from sam2elnet.utils.run_warnings import RunWarnings

os.environ.setdefault("SAM2ELNET_THREADS", "1")

WGS84 = CRS.from_epsg(4326)


def lonlat(row: float, col: float) -> tuple[float, float]:
    """An affine GRD-like map: ~10 m pixels in degrees, sheared (a descending track)."""
    return 28.0 + 1e-4 * col + 2e-5 * row, 43.0 - 9e-5 * row - 1e-5 * col


def curved(row: float, col: float) -> tuple[float, float]:
    """A smooth quadratic + cubic map over 2000 x 2000 px: the track turning, the ground range
    pixel growing across the swath (up to ~30 px away from the best affine fit)."""
    u, v = col / 2000.0, row / 2000.0
    x, y = lonlat(row, col)
    return x + 2e-3 * u * u + 5e-4 * u * v + 3e-4 * v**3, y - 1.5e-3 * v * v + 4e-4 * u**3


def grid(mapping=lonlat, n_rows: int = 5, n_cols: int = 6, size: float = 2000.0):
    """GCPs at a regular lattice of pixel positions, ids "1", "2", ... as GDAL numbers them."""
    out = []
    for r in np.linspace(0, size, n_rows):
        for c in np.linspace(0, size, n_cols):
            x, y = mapping(r, c)
            out.append(GroundControlPoint(row=r, col=c, x=x, y=y, id=str(len(out) + 1)))
    return out


def moved(gcps, i: int, drow: float, dcol: float = 0.0):
    """``gcps`` with GCP ``i``'s pixel position moved (a mistyped row / column)."""
    g = gcps[i]
    out = list(gcps)
    out[i] = GroundControlPoint(row=g.row + drow, col=g.col + dcol, x=g.x, y=g.y, id=g.id)
    return out


def _texts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == gcp_check.log.name]


def test_a_gcp_moved_30_px_is_named_with_its_residual(caplog):
    gcps = moved(grid(), 14, 30.0)  # 30 rows off: GCP 15, row 1000, col 800
    with caplog.at_level(logging.WARNING), RunWarnings("scene") as run:
        res = check_gcps(gcps, "s1_grd.tif")
    assert res.order == 2 and res.outliers == (14,)
    assert res.residuals[14] == pytest.approx(30.0, abs=1e-6)  # the fit to the others is exact
    assert np.nanmax(np.delete(res.residuals, 14)) < 1e-6
    [text] = _texts(caplog)
    assert text.startswith("s1_grd.tif: 1 of its 30 ground control points lies far from")
    assert "GCP 15 (id 15, row 1030, col 800) 30.0 px" in text
    assert "fix or drop it" in text
    assert run.record() == [{"warning": GCP_OUTLIER_KIND, "count": 1, "first": text}]


def test_the_same_set_without_the_outlier_and_small_moves_do_not_warn(caplog):
    with caplog.at_level(logging.WARNING), RunWarnings():
        clean = check_gcps(grid(), "a.tif")
        small = check_gcps(moved(grid(), 14, 0.8 * OUTLIER_FLOOR_PX), "b.tif")
    assert clean.order == 2 and clean.outliers == () and np.nanmax(clean.residuals) < 1e-6
    assert small.outliers == ()  # under the floor in pixels: not called an outlier
    assert _texts(caplog) == []


def test_a_curved_grid_does_not_warn_but_an_outlier_on_it_does(caplog):
    gcps = grid(curved, 10, 21)  # a GRD's geolocation grid: 10 lines x 21 points
    aff = gcp_residuals(grid(curved, 3, 3))  # affine: residuals over the floor, all alike
    assert aff.order == 1 and np.nanmax(aff.residuals) > OUTLIER_FLOOR_PX and aff.outliers == ()
    with caplog.at_level(logging.WARNING), RunWarnings():
        res = check_gcps(gcps, "curved.tif")
        assert res.outliers == () and np.nanmax(res.residuals) > 0.1  # real curvature
        assert _texts(caplog) == []
        bad = check_gcps(moved(gcps, 95, 0.0, -40.0), "curved_bad.tif")
    assert bad.outliers == (95,) and bad.residuals[95] == pytest.approx(40.0, abs=1.0)
    assert len(_texts(caplog)) == 1 and "GCP 96 (id 96, " in _texts(caplog)[0]


def test_two_outliers_are_both_named(caplog):
    gcps = moved(moved(grid(), 7, -25.0, 10.0), 20, 0.0, 120.0)
    res = gcp_residuals(gcps)
    assert res.outliers == (20, 7)  # largest first
    assert res.residuals[20] == pytest.approx(120.0, abs=1e-6)
    assert res.residuals[7] == pytest.approx(np.hypot(25.0, 10.0), abs=1e-6)


def test_order_follows_the_gcp_count_and_degenerate_sets_are_not_checked():
    assert gcp_residuals(grid(n_rows=1, n_cols=5)).order == 0  # fewer than 6
    assert gcp_residuals(grid(n_rows=2, n_cols=3)).order == 1  # 6 .. 11: affine
    assert gcp_residuals(grid(n_rows=3, n_cols=3)).order == 1
    assert gcp_residuals(grid(n_rows=3, n_cols=4)).order == 2  # >= 12: order 2
    line = [GroundControlPoint(row=i, col=i, x=float(i), y=float(i)) for i in range(10)]
    res = gcp_residuals(line)  # all on one line: no polynomial to fit, no warning
    assert res.order == 0 and res.outliers == () and np.isnan(res.residuals).all()
    # an affine set with one moved GCP (9 GCPs: affine fit) is still found
    assert gcp_residuals(moved(grid(n_rows=3, n_cols=3), 4, 30.0)).outliers == (4,)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n_rows=st.integers(2, 8),
    n_cols=st.integers(3, 8),
    coef=st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4),
    log_scale=st.floats(-5.0, 2.0),
    size=st.floats(32.0, 30000.0),
    noise=st.floats(0.0, 0.25),
    seed=st.integers(0, 2**16),
)
def test_affine_gcps_with_small_noise_never_warn(
    n_rows, n_cols, coef, log_scale, size, noise, seed
):
    a, b, d, e = (v * 10**log_scale for v in coef)
    if abs(a * e - b * d) < 0.05 * 10 ** (2 * log_scale):  # (near) singular maps are no grid
        return
    rng = np.random.default_rng(seed)
    gcps = []
    for r in np.linspace(0, size, n_rows):
        for c in np.linspace(0, size, n_cols):
            x, y = 500000.0 + a * c + b * r, 4e6 + d * c + e * r
            rr, cc = r + rng.normal(0, noise), c + rng.normal(0, noise)
            gcps.append(GroundControlPoint(row=rr, col=cc, x=x, y=y))
    res = gcp_residuals(gcps)
    assert res.outliers == ()


def _gcp_tif(path: Path, gcps, h: int = 64, w: int = 64) -> Path:
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", height=h, width=w, count=1, dtype="uint16"
        ) as ds:
            ds.write(rng.gamma(4, 100, (1, h, w)).astype(np.uint16))
            ds.gcps = (gcps, WGS84)
    return path


def test_scene_warns_once_through_the_cli_and_never_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`elnet scene --warp-to` meets the scene's GCPs when it opens the scene and when it warps
    the label and the probabilities: one warning, naming the scene; the outputs are written."""
    from sam2elnet.cli import main

    gcps = moved(grid(size=64.0), 8, 0.0, 30.0)
    src = _gcp_tif(tmp_path / "grd.tif", gcps)
    out = tmp_path / "lab.tif"
    rc = main(["scene", "--model", "builtin:smoothing", "--image", str(src), "--out", str(out),
               "--tile", "32", "--overlap", "0", "--prob", "--warp-to", "utm", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and out.exists() and (tmp_path / "lab_prob.tif").exists()
    lines = [ln for ln in err.splitlines() if "ground control points lie" in ln or "lies far" in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"warning: {src}: 1 of its 30 ground control points lies far")
    assert "GCP 9 (id 9, row 16, col 55.6) 30.0 px" in lines[0]


def test_a_folder_job_lists_the_warning_once_per_gcp_set(tmp_path: Path):
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.pipeline.scenes import predict_scenes

    (tmp_path / "in").mkdir()
    for name, i in (("a.tif", 8), ("b.tif", 20), ("c.tif", 8)):  # c: the same GCPs as a
        _gcp_tif(tmp_path / "in" / name, moved(grid(size=64.0), i, 20.0))
    res = predict_scenes(
        tmp_path / "in", tmp_path / "out", SmoothingPredictor(), tile=32, overlap=0,
        progress=False,
    )  # fmt: skip
    assert len(res.done) == 3
    [rec] = [r for r in res.warnings if r["warning"] == GCP_OUTLIER_KIND]
    assert rec["count"] == 2 and "a.tif: 1 of its 30 ground control points" in rec["first"]
    assert res.notes() and any(GCP_OUTLIER_KIND in n and "2 scenes" in n for n in res.notes())


def test_annotate_lists_the_warning_in_summary_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """annotate reads each GRD image (in a chunk's collecting scope, replayed into the job):
    one warning line, the count of GCP sets in summary.json, all images labelled."""
    import json

    from sam2elnet.cli import main
    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.model.io import save_model

    model = save_model(build_model(ModelConfig(size="micro")), tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    for name, i in (("a.tif", 8), ("b.tif", 20), ("c.tif", None)):
        gcps = grid(size=64.0) if i is None else moved(grid(size=64.0), i, 0.0, -25.0)
        _gcp_tif(imgs / name, gcps)
    rc = main(["annotate", "--model", str(model), "--images", str(imgs), "--out",
               str(tmp_path / "out"), "--no-progress", "--precision", "32"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and len(list((tmp_path / "out" / "labels").glob("*.tif"))) == 3
    assert err.count("ground control points lies far") == 1, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    [rec] = [w for w in summary["warnings"] if w["warning"] == GCP_OUTLIER_KIND]
    assert rec["count"] == 2 and "a.tif: 1 of its 30 ground control points" in rec["first"]
