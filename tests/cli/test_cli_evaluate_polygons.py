"""``elnet evaluate`` with polygon ground truth (GeoPackage / Shapefile / GeoJSON from a GIS):
rasterised onto each prediction's grid by the vector-label reader, one file per prediction or one
file for a whole prediction folder; bad polygon input is one ``error:`` line, exit 2.

The prediction is a 32x32 px GeoTIFF of 10 m pixels (EPSG:32633) whose rows and columns 8..23
are object (256 px); the truth polygon covers rows and columns 12..27 (256 px), so by hand
TP = 12 * 12 = 144, FP = FN = 256 - 144 = 112, TN = 1024 - 368 = 656, IoU = 144 / 368.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from shapely.geometry import box

from sam2elnet.cli import main
from sam2elnet.engine.eval_readback import iter_pairs
from sam2elnet.engine.evaluate import evaluate_folders

pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")

X0, Y0 = 500_000.0, 4_000_000.0
HAND = {"tp": 144, "fp": 112, "fn": 112, "tn": 656}


def _pred(path: Path, x0: float = X0, empty: bool = False) -> Path:
    a = np.zeros((32, 32), np.uint8)
    if not empty:
        a[8:24, 8:24] = 255
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(10, 0, x0, 0, -10, Y0)) as ds:  # fmt: skip
        ds.write(a[None])
    return path


def _square(x0: float = X0, first: int = 12, last: int = 27):  # noqa: ANN202
    """Map box of pixel rows / columns first..last of a tile at x0 (10 m pixels)."""
    return box(x0 + 10 * first, Y0 - 10 * (last + 1), x0 + 10 * (last + 1), Y0 - 10 * first)


def _counts(row: dict) -> dict:
    return {k: row[k] for k in HAND}


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("error: ")]
    assert len(errors) == 1 and not any(ln.startswith("Traceback") for ln in err), err
    return errors[0]


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson"])
def test_polygon_file_against_one_prediction_gives_the_hand_iou(
    tmp_path: Path, suffix: str
) -> None:
    pred = _pred(tmp_path / "a_pred.tif")
    truth = tmp_path / f"slicks{suffix}"
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_file(truth)
    res = evaluate_folders(pred, truth, progress=False)
    assert _counts(res.rows()[0]) == HAND
    assert res.images[0].iou == pytest.approx(144 / 368, abs=1e-12)
    _, p, t = next(iter(iter_pairs(res)))  # the report redraws the same truth
    assert p.sum() == 256 and t.sum() == 256 and (p & t).sum() == 144


def test_polygons_in_another_crs_are_reprojected(tmp_path: Path) -> None:
    """Drawn in EPSG:4326 (edges densified to 1 m, so they stay straight in UTM)."""
    pred = _pred(tmp_path / "a.tif")
    truth = tmp_path / "truth.gpkg"
    sq = gpd.GeoSeries([_square()], crs=32633).segmentize(1.0).to_crs(4326)
    gpd.GeoDataFrame(geometry=sq).to_file(truth)
    res = evaluate_folders(pred, truth, progress=False)
    assert _counts(res.rows()[0]) == HAND


def test_one_polygon_file_for_a_folder_scores_each_prediction_in_its_footprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tile a: the hand square; tile b (east of a): a polygon equal to its prediction; tile c
    (5 km away): no polygon, so all background and its 256 predicted pixels are false
    positives."""
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _pred(tiles / "a.tif")
    _pred(tiles / "b.tif", X0 + 320)
    _pred(tiles / "c.tif", X0 + 5000)
    layer = tmp_path / "layer.gpkg"
    polys = [_square(), _square(X0 + 320, 8, 23)]
    gpd.GeoDataFrame(geometry=polys, crs=32633).to_crs(4326).to_file(layer)
    js = tmp_path / "eval.json"
    argv = ["evaluate", "--pred", str(tiles), "--truth", str(layer), "--no-progress",
            "--json", str(js)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert (
        f"warning: {layer}: 1 of 3 predictions has no polygon in its footprint: scored as "
        "all background"
    ) in err
    rows = {r["image"]: _counts(r) for r in json.loads(js.read_text())["images"]}
    assert rows == {
        "a": HAND,
        "b": {"tp": 256, "fp": 0, "fn": 0, "tn": 768},
        "c": {"tp": 0, "fp": 256, "fn": 0, "tn": 768},
    }


def test_a_truth_folder_of_polygon_files_pairs_by_name(tmp_path: Path) -> None:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    _pred(pred / "a_pred.tif")
    _pred(pred / "b_pred.tif", X0 + 320)
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_file(truth / "a_mask.gpkg")
    sq = _square(X0 + 320, 8, 23)
    gpd.GeoDataFrame(geometry=[sq], crs=32633).to_file(truth / "b.geojson")
    res = evaluate_folders(pred, truth, progress=False)
    assert {r.name: _counts(r.as_dict()) for r in res.images} == {
        "a": HAND,
        "b": {"tp": 256, "fp": 0, "fn": 0, "tn": 768},
    }


def test_prediction_without_georeference_takes_qgis_pixel_coordinates(tmp_path: Path) -> None:
    """A PNG prediction and polygons without CRS drawn in QGIS over it (x = column, y = -row),
    as the vector-label reader places them; the same square as y = row reads the same."""
    a = np.zeros((32, 32), np.uint8)
    a[8:24, 8:24] = 255
    pred = tmp_path / "a.png"
    Image.fromarray(a).save(pred)
    for name, geom in (("qgis", box(12, -28, 28, -12)), ("rows", box(12, 12, 28, 28))):
        truth = tmp_path / f"{name}.gpkg"
        gpd.GeoDataFrame(geometry=[geom]).to_file(truth)
        assert _counts(evaluate_folders(pred, truth, progress=False).rows()[0]) == HAND


def test_no_polygon_on_the_prediction_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _pred(tmp_path / "a.tif")
    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame(geometry=[_square(X0 + 50_000)], crs=32633).to_file(far)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(far), "--no-progress"]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {far}: the only label feature does not overlap the image")
    # the same file for a folder: no polygon on any prediction
    assert main(["evaluate", "--pred", str(tmp_path), "--truth", str(far), "--no-progress"]) == 2
    assert _one_error(capsys) == (
        f"error: {far}: none of its polygons covers a pixel of the 1 evaluated prediction; "
        "check the layer's CRS (EPSG:32633, extent (550120.0, 3999720.0, 550280.0, 3999880.0)) "
        "and that it covers the predictions' area (polygons are placed by map position)"
    )


@pytest.mark.parametrize("pred_is_folder", [False, True])
def test_unreadable_polygon_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pred_is_folder: bool
) -> None:
    preds = tmp_path / "pred"
    preds.mkdir()
    pred = _pred(preds / "a.tif")
    bad = tmp_path / "slicks.gpkg"
    bad.write_bytes(b"not a geopackage " * 20)
    argv = ["evaluate", "--pred", str(preds if pred_is_folder else pred), "--truth", str(bad)]
    assert main([*argv, "--no-progress"]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {bad}: not a readable vector file"), line


def test_one_polygon_file_for_predictions_without_georeference_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(pred / "a.png")
    gpkg = tmp_path / "slicks.gpkg"
    gpd.GeoDataFrame(geometry=[box(0, -5, 5, 0)]).to_file(gpkg)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(gpkg), "--no-progress"]) == 2
    assert _one_error(capsys).startswith(f"error: {gpkg}: the only prediction has no georeference")


def test_a_lone_polygon_file_in_a_truth_folder_says_to_give_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    _pred(pred / "a.tif")
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_file(truth / "slicks.gpkg")
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"]) == 2
    assert _one_error(capsys).endswith(
        f"to score every prediction against the polygons of one file, give --truth "
        f"{truth / 'slicks.gpkg'}"
    )


def test_polygon_predictions_off_the_truth_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A polygon file as --pred is placed on the truth's grid (an elnet export layer re-evaluated:
    tests/cli/test_cli_evaluate_polygon_baseline.py); one lying elsewhere is the reader's one
    error line naming it."""
    gpkg = tmp_path / "pred.gpkg"
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=32633).to_file(gpkg)
    truth = _pred(tmp_path / "truth.tif")
    assert main(["evaluate", "--pred", str(gpkg), "--truth", str(truth)]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {gpkg}: the only label feature does not overlap the image")


def test_report_draws_polygon_truth_on_each_prediction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report rasterises the polygons as the evaluation did: no 'needs its image' warning,
    tile c without polygons drawn all background, the truth file named on every card."""
    from sam2elnet.engine.eval_readback import vector_truths
    from sam2elnet.pipeline.report_items import TruthOnGrid, eval_truth

    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _pred(tiles / "a.tif")
    _pred(tiles / "c.tif", X0 + 5000)
    layer = tmp_path / "layer.gpkg"
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_file(layer)
    js = tmp_path / "out" / "eval.json"
    argv = ["evaluate", "--pred", str(tiles), "--truth", str(layer), "--no-progress",
            "--json", str(js), "--report"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "report:" not in err, err
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count(layer.name) >= 2
    res = evaluate_folders(tiles, layer, progress=False)
    truths = [eval_truth(r, vector_truths(res)) for r in res.images]
    assert all(isinstance(t, TruthOnGrid) for t in truths)
    assert [int(t.read().sum()) for t in truths] == [256, 0]


def test_a_mask_wins_over_a_polygon_file_of_the_same_name(tmp_path: Path) -> None:
    """A truth folder holding a mask and its polygon export (elnet export) reads the mask."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    _pred(pred / "a.tif")
    _pred(truth / "a.tif", empty=True)  # the mask: all background
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_file(truth / "a.gpkg")
    res = evaluate_folders(pred, truth, progress=False)
    assert res.images[0].truth_path == truth / "a.tif"
    assert _counts(res.rows()[0]) == {"tp": 0, "fp": 256, "fn": 0, "tn": 768}


def test_two_polygon_files_get_the_hint_with_a_quoted_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Polygons saved as .json (QGIS / geojson.io) as --pred with a polygon --truth: no grid to
    compare on; the import hint names the file, a path with a space quoted so the suggested
    command pastes as it is. gdal_rasterize (it does not reproject) is not suggested."""
    folder = tmp_path / "my coarse"
    folder.mkdir()
    coarse = folder / "coarse.json"
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_crs(4326).to_file(coarse, driver="GeoJSON")
    truth = tmp_path / "truth.gpkg"
    gpd.GeoDataFrame(geometry=[_square()], crs=32633).to_file(truth)
    args = ["evaluate", "--pred", str(coarse), "--truth", str(truth)]
    assert main(args) == 2
    line = _one_error(capsys)
    assert "are both polygon files" in line and "gdal_rasterize" not in line
    assert f"elnet import '{coarse}' --from vector --images IMAGES --out DIR --all-images" in line


def test_no_overlap_error_gives_the_layer_extent_and_its_own_crs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """New-user GIS trial: the error gave only the image's extent and CRS. Now also the labels'
    extent in the image CRS and the layer's own CRS and extent: a layer in WGS 84 far away, and
    UTM coordinates saved as WGS 84 (nothing can be placed), make the mix-up plain."""
    pred = _pred(tmp_path / "a.tif")
    lonlat = tmp_path / "lonlat.gpkg"  # 15 E 36 N: EPSG:32633 x 500000, y ~3 984 000
    gpd.GeoDataFrame(geometry=[box(15.0, 36.0, 15.01, 36.01)], crs=4326).to_file(lonlat)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(lonlat), "--no-progress"]) == 2
    line = _one_error(capsys)
    assert line.startswith(
        f"error: {lonlat}: the only label feature does not overlap the image: image extent "
        "(500000.0, 3999680.0, 500320.0, 4000000.0) in EPSG:32633, label extent (500000.0, "
        "3983948.453, 500901.276, 3985057.647) there; the layer's own CRS: EPSG:4326, extent "
        "(15.0, 36.0, 15.01, 36.01); check the label CRS"
    ), line
    mixed = tmp_path / "utm_as_wgs84.gpkg"
    gpd.GeoDataFrame(geometry=[_square()], crs=4326).to_file(mixed)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(mixed), "--no-progress"]) == 2
    line = _one_error(capsys)
    assert "the labels have no finite extent in EPSG:32633" in line, line
    assert "the layer's own CRS: EPSG:4326, extent (500120.0, 3999720.0, 500280.0, 3999880.0)" in (
        line
    )


def test_a_road_buffer_switches_road_measures_on_for_polygon_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """New-user GIS trial: `--road-buffer-m 1.5` against a polygon truth kept the road measures
    off (auto: polygon ground truth); a buffer given means road measures are wanted."""
    import json

    pred = _pred(tmp_path / "a.tif")
    truth = tmp_path / "t.gpkg"
    gpd.GeoDataFrame(geometry=[_square(first=8, last=23)], crs=32633).to_file(truth)
    out = tmp_path / "e.json"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress", "--json",
            str(out)]  # fmt: skip
    assert main([*argv, "--road-buffer-m", "15"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "road measures: on (--road-buffer-m 15 given; auto: polygon ground truth alone " in (
        said
    ), said
    opts = json.loads(out.read_text())["options"]
    assert opts["roads"] is True and opts["road_buffer_m"] == 15
    # 15 m of 10 m UTM pixels at the central meridian (scale factor 0.9996)
    assert opts["road_buffer_px_range"] == [pytest.approx(1.4994, abs=1e-4)] * 2
    # identical masks: every centre-line pixel matched
    assert json.loads(out.read_text())["aggregate"]["road_completeness"] == 1.0
    # without a buffer auto keeps them off; with --no-roads the buffer is said unused
    assert main(argv) == 0
    assert json.loads(out.read_text())["options"]["roads"] is False
    capsys.readouterr()
    assert main([*argv, "--no-roads", "--road-buffer-m", "15"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "note: --road-buffer-m 15 unused: road measures are off (--no-roads)" in said, said
