"""``elnet evaluate --road-buffer-m``: the road buffer in metres, converted with the
predictions' pixel size (projected CRS + transform), and the buffer recorded next to the road
measures (JSON options and image rows, --csv). Masks as in test_cli_evaluate_roads.py: a 3 px
road along rows 15-17 of a 32 x 32 truth; ``a`` predicts it 5 rows lower (matched at a 5 px
buffer, not at 3 px)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sam2elnet.cli import main


def _tif(path: Path, mask: np.ndarray, crs: str | None, pixel: float) -> None:
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    geo = {} if crs is None else {"crs": crs, "transform": Affine(pixel, 0, 500_000.0, 0, -pixel,
                                                                   4_000_000.0)}  # fmt: skip
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8",
                       **geo) as ds:  # fmt: skip
        ds.write(mask.astype(np.uint8)[None] * 255)


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
    """2.5 m at 0.5 m pixels scores as --road-buffer 5 (the road 5 rows lower all matched);
    the JSON, each row and the terminal say both units."""
    pred, truth = _pair(tmp_path)
    js, row = _run(pred, truth, tmp_path / "m", "--road-buffer-m", "2.5")
    assert js["aggregate"]["road_quality"] == 1.0
    px, _ = _run(pred, truth, tmp_path / "px", "--road-buffer", "5")
    assert {k: v for k, v in js["aggregate"].items()} == px["aggregate"]
    o = js["options"]
    assert (o["road_buffer_px"], o["road_buffer_m"], o["road_buffer_unit"]) == (5.0, 2.5, "m")
    assert (float(row["road_buffer_px"]), float(row["road_buffer_m"])) == (5.0, 2.5)
    said = " ".join(capsys.readouterr().out.split())
    assert "centre lines matched within 2.5 m = 5 px (--road-buffer-m)" in said


def test_the_buffer_is_recorded_next_to_the_road_measures(tmp_path: Path) -> None:
    """--road-buffer 3 (px) on 0.5 m pixels: rows and options say 3 px = 1.5 m; on a PNG pair
    (no pixel size) the rows say 3 px and no metres."""
    pred, truth = _pair(tmp_path)
    js, row = _run(pred, truth, tmp_path / "o")
    assert js["aggregate"]["road_quality"] == 0.0  # 5 rows apart, 3 px buffer
    assert (js["options"]["road_buffer_m"], js["options"]["road_buffer_unit"]) == (1.5, "px")
    keys = list(row)
    assert keys.index("road_buffer_px") + 2 == keys.index("road_correctness")
    assert (row["road_buffer_px"], row["road_buffer_m"]) == ("3.0", "1.5")
    assert js["images"][0]["road_buffer_m"] == 1.5
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
        ("EPSG:32633", ["--road-buffer-m", "60"], "is 120 px at 0.5 m pixels"),
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


def test_two_pixel_sizes_are_refused_for_a_buffer_in_metres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = _pair(tmp_path)
    t = np.zeros((32, 32), bool)
    t[5:8, :] = True
    _tif(truth / "b_mask.tif", t, "EPSG:32633", 1.0)
    _tif(pred / "b_pred.tif", t, "EPSG:32633", 1.0)
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress"]
    assert main([*argv, "--road-buffer-m", "2"]) == 2
    err = capsys.readouterr().err
    assert (
        "b_pred.tif: has 1 m pixels, a_pred.tif 0.5 m: --road-buffer-m needs one pixel size" in err
    )


def test_metres_per_pixel_uses_the_crs_unit() -> None:
    from affine import Affine
    from rasterio.crs import CRS

    from sam2elnet.data.georef import metres_per_pixel

    t = Affine(10, 0, 0, 0, -10, 0)
    assert metres_per_pixel({"crs": CRS.from_epsg(32633), "transform": t}) == (10.0, "")
    feet, _ = metres_per_pixel({"crs": CRS.from_epsg(2263), "transform": t})  # US survey feet
    assert feet == pytest.approx(3.048006)
    assert metres_per_pixel({}) == (None, "no CRS")
