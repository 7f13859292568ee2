"""The report of an ``elnet enhance --labels slicks.gpkg`` run (one polygon file, drawn in QGIS in
EPSG:4326, for a folder of UTM scenes) draws each scene's part of the file as enhance read it:
no "N of M label features lie outside the image" warning per scene (most of a shared file lies
outside any one scene) and no error card for a scene the file does not touch (enhance gave it an
empty coarse label)."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import write_png, write_tif
from shapely.geometry import box

from sam2elnet.cli import main

X0, Y0 = 500_000.0, 4_000_000.0  # EPSG:32633, 10 m pixels


def _scene(path: Path, x0: float) -> None:
    write_tif(path, np.full((1, 32, 32), 90, np.uint8), x0=x0)


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_evaluate_report_draws_a_shared_coarse_file_without_warnings_or_error_cards(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three scenes 3.2 km apart, a polygon on the first two, none on the third: the report
    warned once per scene that most of the file lies outside it, and gave the third scene an
    error card ("none of the 2 label features overlaps the image; check the label CRS")."""
    run, truth, scenes = tmp_path / "run", tmp_path / "truth", tmp_path / "scenes"
    slicks = tmp_path / "slicks.gpkg"
    squares, rows = [], []
    for k in range(3):
        x = X0 + 320 * k
        _scene(scenes / f"s{k}.tif", x)
        if k < 2:
            squares.append(box(x + 80, Y0 - 240, x + 240, Y0 - 80))  # cols / rows 8..23
        label = np.zeros((32, 32), np.uint8)
        label[8:24, 8:24] = 255 if k < 2 else 0
        write_png(run / "labels" / f"s{k}.png", label)
        write_png(truth / f"s{k}.png", label)
        rows.append({"image": str(scenes / f"s{k}.tif"), "label": f"labels/s{k}.png",
                     "predicted_iou": 0.8, "kept": True, "coarse": str(slicks)})  # fmt: skip
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=squares, crs="EPSG:32633").to_crs(4326).to_file(
        slicks
    )
    with (run / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--pred", str(run), "--truth", str(truth), "--json",
                     str(tmp_path / "e" / "e.json"), "--report", "--no-progress"]) == 0  # fmt: skip
    assert not [r.getMessage() for r in caplog.records if "outside the image" in r.getMessage()]
    page = (tmp_path / "e" / "report.html").read_text(encoding="utf-8")
    assert '<div class="err">' not in page and "overlaps the image" not in page
    assert len(re.findall(r'<img alt="" data-layer="input" src="data:', page)) == 3


def test_one_card_of_a_shared_file_is_drawn_as_the_run_placed_it(tmp_path: Path) -> None:
    """write_report(..., coarse_images=summary.json's record): a page of one card (a.tif) of a
    file the run served to a.tif and b.tif draws a's coarse label as enhance read it: the
    feature labelled with b's stem is b's, not a class name placed on a by map position. The
    input label is scored against a truth equal to a's own part (no output): IoU 1. Without the
    record (the page shared the file with its items' images only) it was 0.8."""
    from sam2elnet.pipeline.report import ReportItem, write_report

    img = tmp_path / "a.tif"
    _scene(img, X0)
    write_tif(tmp_path / "b.tif", np.full((1, 32, 32), 90, np.uint8), x0=X0 + 160)
    own = box(X0 + 40, Y0 - 120, X0 + 120, Y0 - 40)  # columns 4..11, rows 4..11 of a
    bs = box(X0 + 160, Y0 - 80, X0 + 200, Y0 - 40)  # columns 16..19, rows 4..7 of a (b's)
    gpkg = tmp_path / "coarse.gpkg"
    gdf = gpd.GeoDataFrame({"label": [None, "b"]}, geometry=[own, bs], crs="EPSG:32633")
    gdf.to_file(gpkg, layer="labels")
    truth = np.zeros((32, 32), np.uint8)
    truth[4:12, 4:12] = 255
    write_png(tmp_path / "a_truth.png", truth)
    item = ReportItem("a", image=img, input_label=gpkg, truth=tmp_path / "a_truth.png")
    served = {str(gpkg): ["a", "b"]}

    def true_iou(**kw: object) -> str:
        text = write_report(tmp_path / "r.html", [item], title="t", **kw).read_text()
        row = text[text.index('<tr data-idx="0"') :].split("</tr>")[0]
        return re.findall(r'<td class="num" data-v="([^"]*)"', row)[1]  # predicted, true

    assert true_iou(coarse_images=served) == "1.0"
    assert true_iou() == "0.8"  # 64 / 80: b's square drawn on a by map position
