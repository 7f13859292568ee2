"""``elnet evaluate --baseline coarse.gpkg`` / ``--valid area.gpkg`` / ``--pred export.gpkg``:
polygons (here in EPSG:4326) placed on each pair's grid (EPSG:32615 / 32616 GeoTIFFs) by the
placement ``--truth`` uses, for one pair and for a folder (one file shared by many scenes,
features outside an image ignored). The numbers must equal those of the same polygons rasterised
first with ``elnet import --from vector`` (or, for predictions, the masks ``elnet export`` made
the layer of) and evaluated as masks.

Tiles are 32x32 px of 10 m; the truth covers rows / columns 8..23 (256 px), the coarse polygon
rows / columns 12..27 (256 px), so by hand the baseline has TP = 144, FP = FN = 112,
IoU = 144 / 368.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import write_tif
from shapely.geometry import box

from sam2elnet.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")

X0, Y0 = 500_000.0, 4_000_000.0
BASE_HAND = {"tp": 144, "fp": 112, "fn": 112}


def _tif(path: Path, crs: str = "EPSG:32615", x0: float = X0, rows: slice = slice(8, 24)) -> Path:
    a = np.zeros((1, 32, 32), np.uint8)
    a[0, rows, rows] = 255
    return write_tif(path, a, x0=x0, crs=crs)  # 10 m pixels, northing Y0 at the top


def _square(x0: float = X0, first: int = 12, last: int = 27):  # noqa: ANN202
    """Map box of pixel rows / columns first..last of a tile at x0 (10 m pixels)."""
    return box(x0 + 10 * first, Y0 - 10 * (last + 1), x0 + 10 * (last + 1), Y0 - 10 * first)


def _lonlat(*parts: tuple[object, str]) -> gpd.GeoDataFrame:
    """Boxes given in their UTM CRS, in EPSG:4326 (edges densified to 1 m: straight in UTM)."""
    frames = [gpd.GeoSeries([g], crs=crs).segmentize(1.0).to_crs(4326) for g, crs in parts]
    return gpd.GeoDataFrame(geometry=[f.iloc[0] for f in frames], crs=4326)


def _evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    out = args[args.index("--pred") + 1] + ".eval.json"
    assert main(["evaluate", *args, "--no-progress", "--json", out]) == 0, capsys.readouterr()
    return json.loads(Path(out).read_text())


def _imported(layer: Path, images: Path, out: Path) -> Path:
    argv = ["import", str(layer), "--from", "vector", "--images", str(images), "--out", str(out),
            "--all-images", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("error: ")]
    assert len(errors) == 1 and not any(ln.startswith("Traceback") for ln in err), err
    return errors[0]


def _baseline_counts(res: dict) -> dict[str, float]:
    """Per image the baseline IoU as the JSON reports it (comparison rows)."""
    return {r["image"]: r["baseline_iou"] for r in res["images"]}


def test_one_pair_with_a_polygon_baseline_gives_the_hand_iou_and_the_imported_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _tif(tmp_path / "scene" / "a.tif")
    truth = _tif(tmp_path / "truth" / "a.tif")
    coarse = tmp_path / "coarse.gpkg"
    _lonlat((_square(), "EPSG:32615")).to_file(coarse)
    got = _evaluate(capsys, "--pred", str(pred), "--truth", str(truth), "--baseline", str(coarse))
    assert got["images"][0]["baseline_iou"] == pytest.approx(144 / 368, abs=1e-12)
    masks = _imported(coarse, tmp_path / "scene", tmp_path / "imported")
    ref = _evaluate(capsys, "--pred", str(pred), "--truth", str(truth),
                    "--baseline", str(masks / "a.tif"))  # fmt: skip
    assert got["comparison"] == ref["comparison"]
    assert _baseline_counts(got) == _baseline_counts(ref)


def test_one_polygon_baseline_for_a_folder_of_scenes_in_two_crss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tiles a, b in EPSG:32615, c in EPSG:32616; one layer in EPSG:4326 with the coarse square of
    a, a polygon equal to c's truth and one far from every tile (ignored); b has no polygon (its
    baseline is all background, one warning). Same numbers as the imported masks."""
    scenes, truths = tmp_path / "scenes", tmp_path / "truths"
    for name, crs, x0 in (("a", "EPSG:32615", X0), ("b", "EPSG:32615", X0 + 5000),
                          ("c", "EPSG:32616", X0)):  # fmt: skip
        _tif(scenes / f"{name}.tif", crs, x0)
        _tif(truths / f"{name}.tif", crs, x0)
    coarse = tmp_path / "coarse.gpkg"
    _lonlat(
        (_square(), "EPSG:32615"),
        (_square(X0, 8, 23), "EPSG:32616"),
        (_square(X0 + 50_000), "EPSG:32615"),
    ).to_file(coarse)
    got = _evaluate(capsys, "--pred", str(scenes), "--truth", str(truths),
                    "--baseline", str(coarse), "--report")  # fmt: skip
    err = capsys.readouterr().err
    assert "report:" not in err, err  # the cards draw the baseline polygons without a warning
    assert (tmp_path / "report.html").read_text().count(coarse.name) >= 3
    assert f"{coarse}: 1 of 3 predictions has no baseline polygon in its footprint" in err
    base = _baseline_counts(got)
    assert base == {"a": pytest.approx(144 / 368, abs=1e-12), "b": 0.0, "c": 1.0}
    masks = _imported(coarse, scenes, tmp_path / "imported")
    ref = _evaluate(capsys, "--pred", str(scenes), "--truth", str(truths),
                    "--baseline", str(masks))  # fmt: skip
    assert got["comparison"] == ref["comparison"]
    assert _baseline_counts(got) == _baseline_counts(ref)


def test_valid_area_polygon_counts_only_inside_it_as_imported_masks_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--valid area.gpkg (one AOI polygon for the folder): pixels outside are not counted; the
    counts equal those of the AOI imported as masks. The AOI is columns / rows 12..27 of tile a
    (256 px): prediction = truth = rows 8..23, so TP = 144 and TN = 112 inside it."""
    scenes, truths = tmp_path / "scenes", tmp_path / "truths"
    for name, x0 in (("a", X0), ("b", X0 + 320)):
        _tif(scenes / f"{name}.tif", x0=x0)
        _tif(truths / f"{name}.tif", x0=x0, rows=slice(0, 32) if name == "b" else slice(8, 24))
    area = tmp_path / "area.geojson"
    _lonlat((_square(), "EPSG:32615")).to_file(area, driver="GeoJSON")
    got = _evaluate(capsys, "--pred", str(scenes), "--truth", str(truths), "--valid", str(area),
                    "--report")  # fmt: skip
    err = capsys.readouterr().err
    assert "report:" not in err  # the cards place the area as counted
    # b has no pixel inside the area, so no score: one warning names it (was: silent)
    assert (
        f"warning: {area}: 1 of 2 predictions has no counted pixel inside its valid-area "
        "polygons, so it has no score: b"
    ) in err
    rows = {r["image"]: r for r in got["images"]}
    assert (rows["a"]["tp"], rows["a"]["tn"], rows["a"]["fp"], rows["a"]["fn"]) == (144, 112, 0, 0)
    assert rows["b"]["tp"] + rows["b"]["tn"] + rows["b"]["fp"] + rows["b"]["fn"] == 0
    masks = _imported(area, scenes, tmp_path / "imported")
    ref = _evaluate(capsys, "--pred", str(scenes), "--truth", str(truths), "--valid", str(masks))
    assert [(r["tp"], r["fp"], r["fn"], r["tn"]) for r in got["images"]] == [
        (r["tp"], r["fp"], r["fn"], r["tn"]) for r in ref["images"]
    ]


# ------------------------------------------------------------------------------- bad input
def _two_scenes_and_a_far_layer(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Folders ``scenes`` and ``truths`` of two adjacent EPSG:32615 tiles (a, b) and
    ``far.gpkg``: one EPSG:4326 square 200 km east of them, covering no pixel."""
    scenes, truths = tmp_path / "scenes", tmp_path / "truths"
    for name, x0 in (("a", X0), ("b", X0 + 320)):
        _tif(scenes / f"{name}.tif", x0=x0)
        _tif(truths / f"{name}.tif", x0=x0)
    far = tmp_path / "far.gpkg"
    _lonlat((_square(X0 + 200_000), "EPSG:32615")).to_file(far)
    return scenes, truths, far


def test_baseline_polygons_with_no_overlap_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Polygons in EPSG:4326 of another area: one pair names the file and its CRS check; a
    folder the same for the shared file."""
    scenes, truths, far = _two_scenes_and_a_far_layer(tmp_path)
    args = ["evaluate", "--pred", str(scenes / "a.tif"), "--truth", str(truths / "a.tif"),
            "--baseline", str(far), "--no-progress"]  # fmt: skip
    assert main(args) == 2
    line = _one_error(capsys)
    assert str(far) in line and "does not overlap the image" in line  # its one feature
    assert "check the label CRS" in line
    args = ["evaluate", "--pred", str(scenes), "--truth", str(truths), "--baseline", str(far),
            "--no-progress"]  # fmt: skip
    assert main(args) == 2
    line = _one_error(capsys)
    assert str(far) in line and "none of its baseline polygons covers a pixel" in line
    assert "check the layer's CRS" in line


def test_valid_area_polygons_that_count_no_pixel_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared --valid file of another area (or CRS) leaves no pixel of any pair counted: one
    error line naming it and the CRS check, exit 2, no JSON (was: exit 0, every metric nan, no
    warning; or the truth blamed when that was a polygon file too)."""
    scenes, truths, far = _two_scenes_and_a_far_layer(tmp_path)
    out = tmp_path / "e.json"
    args = ["evaluate", "--pred", str(scenes), "--truth", str(truths), "--valid", str(far),
            "--no-progress", "--json", str(out)]  # fmt: skip
    assert main(args) == 2
    line = _one_error(capsys)
    assert line.startswith(
        f"error: {far}: none of its valid-area polygons covers a counted pixel of the 2 "
        "evaluated predictions; check the layer's CRS"
    ), line
    assert not out.exists()
    truth = tmp_path / "truth.gpkg"  # polygon truth too: the area is named, not the truth
    _lonlat((_square(), "EPSG:32615")).to_file(truth)
    args[args.index(str(truths))] = str(truth)
    assert main(args) == 2
    assert _one_error(capsys).startswith(f"error: {far}: none of its valid-area polygons")


def test_baseline_layer_without_crs_or_features_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A layer without a CRS is taken as in the image CRS (a note says so): its lon/lat numbers
    then lie nowhere near the UTM tile, one error line; an empty layer, one error line."""
    pred, truth = _tif(tmp_path / "a.tif"), _tif(tmp_path / "t" / "a.tif")
    lonlat = _lonlat((_square(), "EPSG:32615")).geometry.iloc[0]
    no_crs = tmp_path / "no_crs.gpkg"
    gpd.GeoDataFrame(geometry=[lonlat]).to_file(no_crs)
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress", "--baseline"]
    assert main([*args, str(no_crs)]) == 2
    line = _one_error(capsys)
    assert str(no_crs) in line and "does not overlap the image" in line
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame(geometry=[], crs=4326).to_file(empty)
    assert main([*args, str(empty)]) == 2
    line = _one_error(capsys)
    assert str(empty) in line and "no features (empty layer)" in line


# ------------------------------------------------------------ --pred: an elnet export layer
def test_predictions_exported_as_one_polygon_layer_score_as_the_masks_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Predictions of scenes in two UTM zones exported as one EPSG:4326 GeoPackage (``elnet export
    --crs EPSG:4326``) and re-evaluated: each truth mask is scored against the polygons in its
    footprint, placed on its grid; the numbers equal those of the prediction masks (hand: TP 144,
    FP = FN = 112 per tile). One pair (the layer and one truth file) likewise."""
    preds, truths = tmp_path / "preds", tmp_path / "truths"
    for name, crs in (("a", "EPSG:32615"), ("c", "EPSG:32616")):
        _tif(preds / f"{name}.tif", crs)
        _tif(truths / f"{name}.tif", crs, rows=slice(12, 28))
    layer = tmp_path / "export" / "preds.gpkg"
    argv = ["export", "--labels", str(preds), "--out", str(layer), "--crs", "EPSG:4326",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    got = _evaluate(capsys, "--pred", str(layer), "--truth", str(truths), "--report")
    assert "report:" not in capsys.readouterr().err  # the cards place the layer as scored
    ref = _evaluate(capsys, "--pred", str(preds), "--truth", str(truths))
    cols = ("image", "tp", "fp", "fn", "tn", "iou")
    assert [{k: r[k] for k in cols} for r in got["images"]] == [
        {k: r[k] for k in cols} for r in ref["images"]
    ]
    assert [(r["tp"], r["fp"], r["fn"]) for r in got["images"]] == [(144, 112, 112)] * 2
    one = _evaluate(capsys, "--pred", str(layer), "--truth", str(truths / "c.tif"))
    assert (one["images"][0]["tp"], one["images"][0]["fp"]) == (144, 112)


def test_polygon_predictions_with_polygon_truth_or_another_area_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truths = tmp_path / "truths"
    _tif(truths / "a.tif")
    _tif(truths / "b.tif", x0=X0 + 320)
    far = tmp_path / "far.gpkg"
    _lonlat((_square(X0 + 200_000), "EPSG:32615")).to_file(far)
    assert main(["evaluate", "--pred", str(far), "--truth", str(truths), "--no-progress"]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {far}: none of its predicted polygons covers a pixel of the 2")
    assert (  # the layer's own CRS and extent (a WGS 84 layer of another UTM zone's area)
        "check the layer's CRS (EPSG:4326, extent (-90.776, 36.122, -90.775, 36.123)) and that it "
        "covers the truths' area" in line
    ), line
    argv = ["evaluate", "--pred", str(far), "--truth", str(far), "--no-progress"]
    assert main(argv) == 2
    line = _one_error(capsys)
    assert "are both polygon files, so there is no pixel grid to compare them on" in line
    # a folder of polygon truths only: the pair's error is a sentence (was "error: FILE: and
    # its ground truth ... are both polygon files")
    poly = tmp_path / "poly"
    poly.mkdir()
    _lonlat((_square(), "EPSG:32615")).to_file(poly / "a.gpkg")
    assert main(["evaluate", "--pred", str(far), "--truth", str(poly), "--no-progress"]) == 2
    line = _one_error(capsys)
    assert line.startswith(
        f"error: {far}: the predictions in this file and their ground truth {poly / 'a.gpkg'} "
        "are both polygon files"
    ), line


def test_polygon_predictions_note_the_polygon_truths_they_leave_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--pred LAYER with a truth folder of masks and polygon files: the polygon files cannot be
    scored against polygons; one warning counts them (was: dropped silently)."""
    truths = tmp_path / "truths"
    _tif(truths / "a.tif")
    _tif(truths / "b.tif", x0=X0 + 320)
    _lonlat((_square(), "EPSG:32615")).to_file(truths / "c.gpkg")
    layer = tmp_path / "preds.gpkg"
    _lonlat((_square(), "EPSG:32615"), (_square(X0 + 320), "EPSG:32615")).to_file(layer)
    got = _evaluate(capsys, "--pred", str(layer), "--truth", str(truths))
    assert [r["image"] for r in got["images"]] == ["a", "b"]
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "polygon files" in ln]
    assert notes == [
        f"warning: {truths}: 1 of the 3 ground-truth files are polygon files, not scored against "
        "the polygon predictions preds.gpkg (no pixel grid to compare them on); give them as "
        "masks to score them"
    ], notes
