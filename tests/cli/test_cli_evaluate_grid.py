"""``elnet evaluate`` with a ground truth on another map grid, and with single files.

Tiny generated GeoTIFFs: a 64x64 px prediction at 10 m in EPSG:32633 (UTM 33N), ground truths
at 20 m, in EPSG:4326, or covering half of the prediction; the counts are checked exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import write_tif
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.engine.eval_readback import iter_pairs
from sam2elnet.engine.evaluate import evaluate_folders

UTM = "EPSG:32633"
X0, Y0 = 500000.0, 4000000.0  # UTM 33N, on the central meridian (15 E), about 36.1 N
N = 64  # prediction size, px


def _tif(path: Path, arr: np.ndarray, crs: str | None, transform: Affine | None) -> Path:
    """``arr`` as a one-band uint8 GeoTIFF on ``crs`` / ``transform`` (None: no georeference)."""
    return write_tif(path, arr.astype(np.uint8)[None], crs=crs, transform=transform)


def _pred() -> np.ndarray:
    p = np.zeros((N, N), np.uint8)
    p[10:42, 10:42] = 255
    return p


def _truth() -> np.ndarray:
    """Object at rows 12..43, cols 8..39: even edges, so a 2x coarser copy is exact."""
    t = np.zeros((N, N), np.uint8)
    t[12:44, 8:40] = 255
    return t


def _counts(res) -> tuple[int, int, int, int]:  # noqa: ANN001
    c = res.total
    return c.tp, c.fp, c.fn, c.tn


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """The prediction and its truth on the prediction's own grid (the reference counts)."""
    grid = Affine(10, 0, X0, 0, -10, Y0)
    pred = _tif(tmp_path / "scene_pred.tif", _pred(), UTM, grid)
    truth = _tif(tmp_path / "scene_gt.tif", _truth(), UTM, grid)
    return pred, truth


def _expected(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[int, ...]:
    p, t = pred > 0, truth > 0
    return (
        int((p & t & valid).sum()),
        int((p & ~t & valid).sum()),
        int((~p & t & valid).sum()),
        int((~p & ~t & valid).sum()),
    )


def test_truth_at_twice_the_pixel_size_gives_the_on_grid_counts(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, on_grid = pair
    coarse = _tif(
        tmp_path / "coarse_gt.tif", _truth()[::2, ::2], UTM, Affine(20, 0, X0, 0, -20, Y0)
    )
    ref = evaluate_folders(pred, on_grid, progress=False)
    assert ref.resampled == []
    assert _counts(ref) == _expected(_pred(), _truth(), np.ones((N, N), bool))
    out = tmp_path / "e.json"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(coarse), "--json", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    cap = capsys.readouterr()
    notes = [ln for ln in cap.err.splitlines() if "resampled onto the grid" in ln]
    assert notes == [
        f"warning: {coarse}: ground truth resampled onto the grid of its prediction "
        f"{pred.name} by map position (nearest; 32x32 px of 20 x 20 map units in {UTM} -> "
        f"64x64 px of 10 x 10 map units in {UTM}); 0 prediction pixels outside its "
        "footprint not counted"
    ]
    assert "ground truth resampled onto the prediction's grid: 1 file; 0 prediction" in cap.out
    data = json.loads(out.read_text())
    assert data["n_truth_resampled"] == 1 and data["truth_outside_pixels"] == 0
    assert data["truth_resampled"][0]["file"] == str(coarse)
    row = data["images"][0]
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == _counts(ref)
    assert row["iou"] == pytest.approx(ref.aggregate["iou"])
    assert row["outside_truth_pixels"] == 0 and row["truth_resampled"].startswith("32x32 px")


def test_valid_mask_on_the_truths_grid_is_resampled_too(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """A --valid mask on the coarse truth's grid (left half valid) follows the truth."""
    pred, _ = pair
    (tmp_path / "gt").mkdir(), (tmp_path / "valid").mkdir(), (tmp_path / "pred").mkdir()
    pred = pred.rename(tmp_path / "pred" / pred.name)
    coarse = Affine(20, 0, X0, 0, -20, Y0)
    _tif(tmp_path / "gt" / "scene_gt.tif", _truth()[::2, ::2], UTM, coarse)
    half = np.zeros((N // 2, N // 2), np.uint8)
    half[:, : N // 4] = 255
    _tif(tmp_path / "valid" / "scene_mask.tif", half, UTM, coarse)
    res = evaluate_folders(
        tmp_path / "pred", tmp_path / "gt", valid_dir=tmp_path / "valid", progress=False
    )
    valid = np.zeros((N, N), bool)
    valid[:, : N // 2] = True
    assert _counts(res) == _expected(_pred(), _truth(), valid) == (660, 44, 108, 1236)


def test_truth_covering_half_the_prediction_leaves_the_rest_out(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """A crop of the truth (the prediction's top 32 rows): the bottom half is not counted, not
    taken as background; the report re-reads the truth on the prediction's grid."""
    pred, _ = pair
    half = _tif(tmp_path / "half_gt.tif", _truth()[:32], UTM, Affine(10, 0, X0, 0, -10, Y0))
    res = evaluate_folders(pred, half, progress=False)
    valid = np.zeros((N, N), bool)
    valid[:32] = True
    # rows 12..31 x cols 10..39 found; pred rows 10..11 and cols 40..41 (rows 10..31) wrong;
    # truth cols 8..9 (rows 12..31) missed
    assert _counts(res) == (600, 104, 40, 1304) == _expected(_pred(), _truth(), valid)
    assert res.resampled[0]["outside_pixels"] == 32 * N
    assert res.to_dict()["truth_outside_pixels"] == 32 * N
    (row, p, t) = next(iter(iter_pairs(res)))
    assert p.shape == t.shape == (N, N) and not t[32:].any()
    np.testing.assert_array_equal(t[:32], _truth()[:32] > 0)


def test_truth_in_another_crs_is_placed_by_map_position(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """Truth in EPSG:4326 (0.0001 degree pixels) around the UTM prediction: every prediction
    pixel takes the truth pixel under its centre (checked against pyproj's own transform)."""
    from pyproj import Transformer

    pred, _ = pair
    lon0, lat0, step = 14.995, 36.15, 0.0001
    # the UTM prediction (lon 15.000..15.008, lat 36.138..36.145) lies inside lon 14.995..15.015,
    # lat 36.130..36.150
    tr = Affine(step, 0, lon0, 0, -step, lat0)
    lon_px, lat_px = np.meshgrid(
        lon0 + (np.arange(200) + 0.5) * step, lat0 - (np.arange(200) + 0.5) * step
    )
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    ux, uy = to_utm.transform(lon_px, lat_px)
    obj = (ux >= X0 + 80) & (ux < X0 + 400) & (uy <= Y0 - 120) & (uy > Y0 - 440)
    truth = _tif(tmp_path / "geo_gt.tif", obj * 255, "EPSG:4326", tr)
    res = evaluate_folders(pred, truth, progress=False)
    # expected: the truth pixel under each prediction pixel centre
    cx, cy = np.meshgrid(X0 + (np.arange(N) + 0.5) * 10, Y0 - (np.arange(N) + 0.5) * 10)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(cx, cy)
    col = np.floor((lon - lon0) / step).astype(int)
    row = np.floor((lat0 - lat) / step).astype(int)
    want = _expected(_pred(), obj[row, col] * 255, np.ones((N, N), bool))
    got = _counts(res)
    # GDAL's approximate transformer (error <= 0.125 px) may pick a neighbour at an edge
    assert sum(abs(a - b) for a, b in zip(got, want, strict=True)) <= 4, (got, want)  # 0 here
    assert res.resampled[0]["outside_pixels"] == 0
    assert "EPSG:4326 -> 64x64 px of 10 x 10 map units in EPSG:32633" in res.resampled[0]["grid"]
    assert res.aggregate["iou"] > 0.75


def test_a_truth_that_does_not_overlap_its_prediction_is_refused(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found in a docs walk: a truth of another place was resampled onto nothing, every metric
    read '-' and the command exited 0. One pair: exit 2; in a folder the pair is skipped."""
    pred, on_grid = pair
    away = _tif(tmp_path / "away_gt.tif", _truth(), UTM, Affine(10, 0, X0 + 5000, 0, -10, Y0))
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(away)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(
        f"error: {pred}: does not overlap its ground truth {away} at all (no prediction pixel "
        "inside the truth's footprint; truth 64x64 px of 10 x 10 map units in EPSG:32633 -> "
    )
    assert err[0].endswith(
        "check which truth goes with this prediction, or the georeference of either"
    )
    # a folder: that pair skipped, the other scored
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()
    _tif(tmp_path / "p" / "a.tif", _pred(), UTM, Affine(10, 0, X0, 0, -10, Y0))
    _tif(tmp_path / "t" / "a.tif", _truth(), UTM, Affine(10, 0, X0, 0, -10, Y0))
    _tif(tmp_path / "p" / "b.tif", _pred(), UTM, Affine(10, 0, X0, 0, -10, Y0))
    _tif(tmp_path / "t" / "b.tif", _truth(), UTM, Affine(10, 0, X0 + 5000, 0, -10, Y0))
    res = evaluate_folders(tmp_path / "p", tmp_path / "t", progress=False)
    assert [r.name for r in res.images] == ["a"]
    assert len(res.skipped) == 1 and "does not overlap" in res.skipped[0]["reason"]
    assert _counts(res) == _expected(_pred(), _truth(), np.ones((N, N), bool))


def test_no_resample_skips_a_truth_on_another_grid(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, _ = pair
    coarse = _tif(
        tmp_path / "coarse_gt.tif", _truth()[::2, ::2], UTM, Affine(20, 0, X0, 0, -20, Y0)
    )
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(coarse), "--no-resample"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(
        f"error: {pred}: lies on another map grid than its ground truth {coarse}"
    )
    assert err[0].endswith(
        "drop --no-resample to resample the truth onto the prediction's grid by map position"
    )


def test_size_mismatch_without_georeference_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PNG prediction and a georeferenced truth of another size share no georeference."""
    pred = tmp_path / "a_pred.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(pred)
    truth = _tif(tmp_path / "a_gt.tif", _truth(), UTM, Affine(10, 0, X0, 0, -10, Y0))
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(truth)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0] == (
        f"error: {pred}: is 32x32 (WxH) but its ground truth {truth} is 64x64; predictions need "
        "their mask's size, or both files a georeference (GeoTIFF with CRS + transform, or GCPs) "
        "so the truth is resampled onto the prediction's grid"
    )


def test_single_files_equal_a_folder_of_one_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--pred FILE --truth FILE: one pair whatever the names, the same JSON numbers as folders
    of that one pair; a file with a folder is one error line."""
    pdir, tdir = tmp_path / "p", tmp_path / "t"
    pdir.mkdir(), tdir.mkdir()
    p, t = _pred() > 0, _truth() > 0
    Image.fromarray(p.astype(np.uint8) * 255).save(pdir / "7_pred.png")
    Image.fromarray(t.astype(np.uint8) * 255).save(tdir / "7_mask.png")
    js_dir, js_file = tmp_path / "dir.json", tmp_path / "file.json"
    assert main(["evaluate", "--pred", str(pdir), "--truth", str(tdir), "--json", str(js_dir)]) == 0
    other = tmp_path / "reference.png"  # another name: single files pair anyway
    (tdir / "7_mask.png").rename(other)
    argv = ["evaluate", "--pred", str(pdir / "7_pred.png"), "--truth", str(other)]
    assert main([*argv, "--json", str(js_file), "--report"]) == 0
    a, b = json.loads(js_dir.read_text()), json.loads(js_file.read_text())
    assert a["aggregate"] == b["aggregate"]
    assert a["aggregate"]["total_tp"] == int((p & t).sum()) == 30 * 30
    assert b["images"][0]["image"] == "7" and b["images"][0]["truth"] == str(other)
    assert (tmp_path / "report.html").is_file()  # next to --json
    capsys.readouterr()
    rc = main(["evaluate", "--pred", str(pdir / "7_pred.png"), "--truth", str(tdir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0] == (
        f"error: --pred and --truth must both be files (one pair) or both folders, but "
        f"{pdir / '7_pred.png'} is a file and {tdir} a folder; give the matching file, or the "
        "folder holding it"
    )


def test_a_one_pixel_shift_in_degrees_is_another_grid(tmp_path: Path):
    """A grid in degrees with ~1 m pixels (9e-6 degrees) shifted by one pixel is another grid: the
    grid tolerance follows the pixel size (a fixed 1e-5 took the shifted truth for the same grid
    and paired it pixel by pixel, one pixel off). Shifted by 1/10,000 of a pixel it is the same."""
    from sam2elnet.data.masks import other_grid

    px = 9e-6
    grid = Affine(px, 0, 15.0, 0, -px, 36.0)
    pred = _tif(tmp_path / "p.tif", _pred(), "EPSG:4326", grid)
    shifted = _tif(tmp_path / "t1.tif", _truth(), "EPSG:4326", grid * Affine.translation(1, 0))
    nudged = _tif(tmp_path / "t2.tif", _truth(), "EPSG:4326", grid * Affine.translation(1e-4, 0))
    assert other_grid(shifted, pred) is not None
    assert other_grid(nudged, pred) is None
    res = evaluate_folders(pred, shifted)
    on_grid = np.zeros((N, N), np.uint8)
    on_grid[12:44, 9:41] = 255  # the truth one pixel east, placed on the prediction's grid
    ref = evaluate_folders(pred, _tif(tmp_path / "t3.tif", on_grid, "EPSG:4326", grid))
    assert _counts(res)[:3] == _counts(ref)[:3]
