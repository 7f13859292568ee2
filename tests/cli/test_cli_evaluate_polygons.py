"""``elnet evaluate`` given polygon ground truth (GeoPackage / Shapefile from a GIS), which it does
not read: one ``error:`` line naming the folder and saying how to rasterise them, exit 2."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from PIL import Image
from shapely.geometry import box

from sam2elnet.cli import main


def test_polygon_truth_folder_says_how_to_rasterise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(pred / "a.png")
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=32633).to_file(truth / "a.gpkg")
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(truth)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and str(truth) in err
    assert "polygons are not read as ground truth" in err and "gdal_rasterize" in err
    # a folder of nothing usable without polygons: no polygon hint (summary.json is no polygon)
    (truth / "a.gpkg").unlink()
    (truth / "summary.json").write_text("{}")
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 2
    assert "gdal_rasterize" not in capsys.readouterr().err


def test_polygon_truth_file_says_how_to_rasterise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(pred / "a.png")
    gpkg = tmp_path / "slicks.gpkg"
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=32633).to_file(gpkg)
    for p in (pred, pred / "a.png"):  # a folder or one prediction file against polygons
        rc = main(["evaluate", "--pred", str(p), "--truth", str(gpkg)])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
        assert "slicks.gpkg" in err and "gdal_rasterize" in err, err
