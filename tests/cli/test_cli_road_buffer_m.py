"""``elnet evaluate --road-buffer-m``: the road buffer in metres, converted with the
predictions' ground pixel size (projected CRS + transform + the projection's scale factor), and
the buffer recorded next to the road measures (JSON options and image rows, --csv). Masks as in
test_cli_evaluate_roads.py: a 3 px road along rows 15-17 of a 32 x 32 truth; ``a`` predicts it 5
rows lower (matched at a 5 px buffer, not at 3 px). The UTM tiles lie on the zone's central
meridian: a 0.5 m CRS pixel is 0.5 / 0.9996 = 0.50020 m on the ground."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif

from sam2elnet.cli import main


def _tif(
    path: Path, mask: np.ndarray, crs: str | None, pixel: float,
    origin: tuple[float, float] = (500_000.0, 4_000_000.0),
) -> None:  # fmt: skip
    from affine import Affine

    x, y = origin
    geo = {"crs": crs, "transform": Affine(pixel, 0, x, 0, -pixel, y)} if crs else {}
    write_tif(path, mask.astype(np.uint8)[None] * 255, georef=False, **geo)


def _pair(root: Path, crs: str | None = "EPSG:32633", pixel: float = 0.5) -> tuple[Path, Path]:
    t = np.zeros((32, 32), bool)
    t[15:18, :] = True
    p = np.zeros_like(t)
    p[20:23, :] = True
    _tif(root / "truth" / "a_mask.tif", t, crs, pixel)
    _tif(root / "pred" / "a_pred.tif", p, crs, pixel)
    return root / "pred", root / "truth"


def _run(pred: Path, truth: Path, out: Path, *flags: str) -> tuple[dict, dict]:
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress",
            "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), *flags]  # fmt: skip
    assert main(argv) == 0
    with open(out / "e.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    return json.loads((out / "e.json").read_text()), row


def test_a_buffer_in_metres_is_the_buffer_in_pixels_of_the_pixel_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2.6 m at 0.5002 m ground pixels (0.5 m UTM pixels) = 5.198 px scores as --road-buffer
    5.2 (the road 5 rows lower all matched); the JSON, each row and the terminal say both
    units, and the JSON the ground pixel size and scale factor used."""
    pred, truth = _pair(tmp_path)
    js, row = _run(pred, truth, tmp_path / "m", "--road-buffer-m", "2.6")
    assert js["aggregate"]["road_quality"] == 1.0
    px, _ = _run(pred, truth, tmp_path / "px", "--road-buffer", "5.2")
    assert {k: v for k, v in js["aggregate"].items()} == px["aggregate"]
    o = js["options"]
    assert (o["road_buffer_m"], o["road_buffer_unit"]) == (2.6, "m")
    assert o["road_buffer_px"] == pytest.approx(2.6 * 0.9996 / 0.5, rel=1e-6)
    assert o["pixel_size_m"] == pytest.approx(0.5 / 0.9996, rel=1e-6)
    assert o["pixel_scale_factor"] == pytest.approx(0.9996, rel=1e-6)
    assert float(row["road_buffer_px"]) == pytest.approx(o["road_buffer_px"])
    assert float(row["road_buffer_m"]) == pytest.approx(2.6)
    said = " ".join(capsys.readouterr().out.split())
    assert "centre lines matched within 2.6 m = 5.2 px (--road-buffer-m)" in said


def test_the_buffer_is_recorded_next_to_the_road_measures(tmp_path: Path) -> None:
    """--road-buffer 3 (px) on 0.5 m UTM pixels: rows and options say 3 px = 1.5006 ground
    metres; on a PNG pair (no pixel size) the rows say 3 px and no metres."""
    pred, truth = _pair(tmp_path)
    js, row = _run(pred, truth, tmp_path / "o")
    assert js["aggregate"]["road_quality"] == 0.0  # 5 rows apart, 3 px buffer
    assert js["options"]["road_buffer_unit"] == "px"
    assert js["options"]["road_buffer_m"] == pytest.approx(1.5 / 0.9996, rel=1e-6)
    keys = list(row)
    at = keys.index("road_buffer_px")  # the buffer and the ground pixel, then the measures
    assert keys[at : at + 5] == ["road_buffer_px", "road_buffer_m", "pixel_size_m",
                                 "pixel_scale_factor", "road_correctness"]  # fmt: skip
    assert row["road_buffer_px"] == "3.0"
    assert float(row["road_buffer_m"]) == pytest.approx(1.5 / 0.9996, rel=1e-6)
    assert js["images"][0]["road_buffer_m"] == pytest.approx(1.5 / 0.9996, rel=1e-6)
    plain, _ = _pair(tmp_path / "plain", crs=None)
    js, row = _run(plain, plain.parent / "truth", tmp_path / "p")
    assert row["road_buffer_px"] == "3.0" and "road_buffer_m" not in row
    assert js["options"]["road_buffer_m"] is None


@pytest.mark.parametrize(
    ("crs", "flags", "said"),
    [
        (None, ["--road-buffer-m", "2"], "a_pred.tif: has no CRS: --road-buffer-m needs"),
        ("EPSG:4326", ["--road-buffer-m", "2"], "has a geographic CRS (EPSG:4326, degrees)"),
        ("EPSG:32633", ["--road-buffer-m", "2", "--road-buffer", "4"], "both given"),
        ("EPSG:32633", ["--road-buffer-m", "0"], "invalid value for --road-buffer-m: 0.0"),
        ("EPSG:32633", ["--road-buffer-m", "60"], "is 120 px at 0.5002 m ground pixels"),
    ],
    ids=["no-crs", "degrees", "both", "zero", "too-many-px"],
)
def test_a_buffer_in_metres_that_cannot_be_used_is_one_error_line(
    tmp_path: Path, crs: str | None, flags: list[str], said: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    pixel = 1e-5 if crs == "EPSG:4326" else 0.5
    pred, truth = _pair(tmp_path, crs=crs, pixel=pixel)
    out = tmp_path / "o" / "e.json"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--json", str(out)]
    assert main([*argv, "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and said in err[0], err
    assert not out.exists()


def _mercator_tiles(root: Path, shifts: dict[str, tuple[float, int]]) -> tuple[Path, Path]:
    """64 x 64 px EPSG:3857 tiles of 0.5 m CRS pixels, one per name at latitude ``lat`` (deg
    N): a 3 px road along rows 30-32 of the truth, predicted ``shift`` rows lower."""
    for name, (lat, shift) in shifts.items():
        y = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        t = np.zeros((64, 64), bool)
        t[30:33, :] = True
        p = np.zeros_like(t)
        p[30 + shift : 33 + shift, :] = True
        for path, m in ((root / "truth" / f"{name}_mask.tif", t),
                        (root / "pred" / f"{name}_pred.tif", p)):  # fmt: skip
            _tif(path, m, "EPSG:3857", 0.5, origin=(1000.0, y + 16.0))
    return root / "pred", root / "truth"


def test_web_mercator_tiles_at_two_latitudes_each_get_their_own_buffer_in_pixels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two Web Mercator tiles of 0.5 m CRS pixels: ``north`` at 60 deg N (0.25 m ground
    pixels, its road predicted 5 px = 1.25 m lower), ``equator`` at 0 deg (0.5 m ground pixels,
    3 px = 1.5 m lower). --road-buffer-m 1.3 is 5.2 px on the first (matched) and 2.6 px on the
    second (not matched): no one buffer in pixels gives that (>= 5 px matches both, 3-5 px only
    the second). Each row records its own buffer, the summary the range, and the aggregate is
    the sum of the matched lengths over the images, each matched within its own buffer."""
    pred, truth = _mercator_tiles(tmp_path, {"north": (60.0, 5), "equator": (0.0, 3)})
    out = tmp_path / "m"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress",
            "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), "--road-buffer-m", "1.3"]  # fmt: skip
    assert main(argv) == 0
    js = json.loads((out / "e.json").read_text())
    rows = {r["image"]: r for r in js["images"]}
    assert rows["north"]["road_quality"] == 1.0 and rows["equator"]["road_quality"] == 0.0
    assert rows["north"]["road_buffer_px"] == pytest.approx(5.2, rel=5e-3)
    assert rows["equator"]["road_buffer_px"] == pytest.approx(2.6, rel=5e-3)
    assert rows["north"]["road_buffer_m"] == rows["equator"]["road_buffer_m"] == pytest.approx(1.3)
    with open(out / "e.csv", newline="") as fh:
        csv_px = {r["image"]: float(r["road_buffer_px"]) for r in csv.DictReader(fh)}
    assert csv_px == pytest.approx({k: r["road_buffer_px"] for k, r in rows.items()})
    o = js["options"]
    assert o["road_buffer_px"] is None and o["road_buffer_m"] == 1.3
    assert o["road_buffer_px_range"] == pytest.approx([2.6, 5.2], rel=5e-3)
    assert o["pixel_size_m"] is None
    assert o["pixel_size_m_range"] == pytest.approx([0.25, 0.5], rel=5e-3)
    # the scale factor by latitude (sec 60 deg = 2, 1 at the equator): a range, and each row's
    assert o["pixel_scale_factor"] is None
    assert o["pixel_scale_factor_range"] == pytest.approx([1.0, 2.0], rel=5e-3)
    assert rows["north"]["pixel_scale_factor"] == pytest.approx(2.0, rel=5e-3)
    assert rows["equator"]["pixel_size_m"] == pytest.approx(0.5, rel=5e-3)
    with open(out / "e.csv", newline="") as fh:
        csv_k = {r["image"]: float(r["pixel_scale_factor"]) for r in csv.DictReader(fh)}
    assert csv_k == pytest.approx({"north": 2.0, "equator": 1.0}, rel=5e-3)
    agg = js["aggregate"]
    matched = sum(r["road_truth_matched"] for r in rows.values())
    length = sum(r["road_truth_length"] for r in rows.values())
    assert 0 < matched < length and agg["road_completeness"] == pytest.approx(matched / length)
    said = " ".join(capsys.readouterr().out.split())
    assert "within 1.3 m = 2.61-5.19 px (--road-buffer-m; per image, from its ground pixel" in said


def test_two_resolutions_in_one_utm_zone_have_one_scale_factor(tmp_path: Path) -> None:
    """0.5 m and 1 m UTM pixels on the central meridian: two ground pixel sizes, one scale
    factor 0.9996 (was null with the pixel size: not one)."""
    t = np.zeros((32, 32), bool)
    t[15:18, :] = True
    for name, pixel in (("fine", 0.5), ("coarse", 1.0)):
        _tif(tmp_path / "truth" / f"{name}_mask.tif", t, "EPSG:32633", pixel)
        _tif(tmp_path / "pred" / f"{name}_pred.tif", t, "EPSG:32633", pixel)
    out = tmp_path / "m"
    argv = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
            "--roads", "--no-progress", "--json", str(out / "e.json"), "--road-buffer-m", "2"]  # fmt: skip
    assert main(argv) == 0
    o = json.loads((out / "e.json").read_text())["options"]
    assert o["pixel_size_m"] is None
    assert o["pixel_size_m_range"] == pytest.approx([0.5 / 0.9996, 1 / 0.9996], rel=1e-6)
    assert o["pixel_scale_factor"] == pytest.approx(0.9996, rel=1e-6)
    assert o["pixel_scale_factor_range"] == pytest.approx([0.9996, 0.9996], rel=1e-6)


def test_metres_per_pixel_uses_the_crs_unit() -> None:
    """Ground pixel size: UTM on the central meridian 10 / 0.9996 m (within 0.1 % of the CRS
    step); US survey feet converted (0.3048006 m) and divided by the State Plane zone's scale
    factor there, as PROJ's get_factors gives it."""
    from affine import Affine
    from pyproj import Proj
    from rasterio.crs import CRS

    from sam2elnet.data.georef import metres_per_pixel

    t = Affine(10, 0, 500_000, 0, -10, 4_000_000)
    size, why = metres_per_pixel({"crs": CRS.from_epsg(32633), "transform": t}, (100, 100))
    assert why == "" and size == pytest.approx(10 / 0.9996, rel=1e-6)
    assert size == pytest.approx(10.0, rel=1e-3)
    for epsg, x, y in ((2263, 988_000, 210_000), (2229, 6_400_000, 1_900_000)):
        t = Affine(10, 0, x - 500, 0, -10, y + 500)  # 100 x 100 px of 10 ft around (x, y)
        feet, _ = metres_per_pixel({"crs": CRS.from_epsg(epsg), "transform": t}, (100, 100))
        proj = Proj(CRS.from_epsg(epsg))
        k = proj.get_factors(*proj(x, y, inverse=True)).parallel_scale
        assert feet == pytest.approx(10 * 1200 / 3937 / k, rel=1e-6)
        assert feet == pytest.approx(3.048006, rel=1e-4)
    assert metres_per_pixel({}) == (None, "no CRS")


def test_a_buffer_in_metres_on_web_mercator_tiles_is_in_ground_metres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """EPSG:3857 tiles at 60 deg N with 0.5 m CRS pixels: a pixel is 0.25 m on the ground
    (Mercator's scale sec 60 = 2), so --road-buffer-m 1.3 is 5.2 px and matches the road 5 rows
    lower (taken as CRS metres it would be 2.6 px: no match), and 2 m is 8 px. The JSON records
    the ground pixel size and the scale factor; the terminal says ground metres."""
    y60 = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(60) / 2))
    t = np.zeros((32, 32), bool)
    t[15:18, :] = True
    p = np.zeros_like(t)
    p[20:23, :] = True
    for path, m in ((tmp_path / "truth" / "a_mask.tif", t), (tmp_path / "pred" / "a_pred.tif", p)):
        _tif(path, m, "EPSG:3857", 0.5, origin=(1000.0, y60 + 8.0))
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    js, row = _run(pred, truth, tmp_path / "m", "--road-buffer-m", "1.3")
    assert js["aggregate"]["road_quality"] == 1.0
    o = js["options"]
    assert o["road_buffer_px"] == pytest.approx(5.2, rel=5e-3)
    assert o["pixel_size_m"] == pytest.approx(0.25, rel=5e-3)
    assert o["pixel_scale_factor"] == pytest.approx(2.0, rel=5e-3)
    assert float(row["road_buffer_m"]) == pytest.approx(1.3)
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "within 1.3 m = 5.19 px (--road-buffer-m; ground metres: projection scale factor 1.997"
        in said
    )
    js, _ = _run(pred, truth, tmp_path / "m2", "--road-buffer-m", "2")
    assert js["options"]["road_buffer_px"] == pytest.approx(8.0, rel=5e-3)


def test_the_buffer_given_in_metres_is_recorded_as_given(tmp_path: Path) -> None:
    """--road-buffer-m 2 on EPSG:3857 tiles at 10 deg S and 5 deg N
    (ground pixels 0.4909 and 0.4965 m): every row recorded 2 / pixel * pixel
    (1.9999999999999998 in the --csv, new-user trial of roads); now the metres as given."""
    pred, truth = _mercator_tiles(tmp_path, {"south": (-10.0, 1), "north": (5.0, 1)})
    out = tmp_path / "m"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress",
            "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), "--road-buffer-m", "2"]  # fmt: skip
    assert main(argv) == 0
    with open(out / "e.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["road_buffer_m"]) for r in rows] == [2.0, 2.0], rows
    js = json.loads((out / "e.json").read_text())
    assert [r["road_buffer_m"] for r in js["images"]] == [2.0, 2.0]
    assert js["options"]["road_buffer_m"] == 2.0
