"""``elnet export --smooth/--simplify`` tolerances are in the label's map units (as GDAL's and
QGIS's simplification). On an EPSG:4326 label ``--smooth 10`` (meant as metres) wrote no polygon
at all and ``--simplify 10`` collapsed them, without a word. A tolerance spanning the whole label
is now one ``error: LABEL: ...`` line naming the units and a 2 px value, exit 2, nothing written;
one that still erases every polygon of a label is a warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sam2elnet.cli import main
from sam2elnet.export.labels import LabelRaster
from sam2elnet.export.polygonize import iter_polygons

PX = 9e-6  # degrees, about 1 m


def _label(path: Path, mask: np.ndarray) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", width=mask.shape[1], height=mask.shape[0], count=1,
        dtype="uint8", crs="EPSG:4326", transform=from_origin(10.0, 45.0, PX, PX),
    ) as ds:  # fmt: skip
        ds.write((mask * 255).astype(np.uint8), 1)
    return path


@pytest.mark.parametrize("option", ["--smooth", "--simplify"])
def test_tolerance_spanning_the_label_is_refused(
    tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    m = np.zeros((100, 120), dtype=bool)
    m[20:60, 30:90] = True
    lab = _label(tmp_path / "lab.tif", m)
    out = tmp_path / "p.gpkg"
    assert main(["export", "--labels", str(lab), "--out", str(out)]) == 0  # without: polygons
    out.unlink()
    capsys.readouterr()
    assert (
        main(["export", "--labels", str(lab), "--out", str(out), option, "10", "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {lab}: "), err
    assert f"{option} 10 " in err and "degrees of EPSG:4326" in err and "1 px = 9e-06" in err
    assert f"{option} 1.8e-05 (2 px)" in err
    assert not out.exists() and not list(tmp_path.glob(".p.*"))
    # a tolerance of a few pixels in degrees keeps the polygon
    assert main(["export", "--labels", str(lab), "--out", str(out), option, "2e-5"]) == 0
    import geopandas as gpd

    assert len(gpd.read_file(out, layer="labels")) == 1


def test_tolerance_erasing_every_polygon_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = np.zeros((1000, 1000), dtype=bool)
    m[500, 500] = True  # one pixel: a smoothing radius of hundreds of pixels loses it
    lab = LabelRaster(_label(tmp_path / "speck.tif", m))
    try:
        with caplog.at_level("WARNING"):
            assert list(iter_polygons(lab, smooth=900 * PX)) == []
    finally:
        lab.close()
    said = [r.getMessage() for r in caplog.records if "erased the only polygon" in r.getMessage()]
    assert len(said) == 1 and "speck.tif" in said[0] and "degrees of EPSG:4326" in said[0], said


def test_refused_tolerance_leaves_no_skipped_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two EPSG:4326 labels and a PNG: the PNG is skipped, then --smooth 10 (degrees) is
    refused; the skipped list used to be written first and stayed behind after exit 2."""
    m = np.zeros((100, 120), dtype=bool)
    m[20:60, 30:90] = True
    labels = tmp_path / "labels"
    labels.mkdir()
    _label(labels / "a.tif", m)
    _label(labels / "b.tif", m)
    with rasterio.open(labels / "c.png", "w", driver="PNG", width=120, height=100, count=1,
                       dtype="uint8") as ds:  # fmt: skip
        ds.write((m * 255).astype(np.uint8), 1)
    out = tmp_path / "p.gpkg"
    rc = main(["export", "--labels", str(labels), "--out", str(out), "--smooth", "10",
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "--smooth 10 is in the label's map units" in err, err
    assert not out.exists() and not (tmp_path / "p_gpkg_skipped.csv").exists()
    assert not list(tmp_path.glob("p_*review.json"))


def test_tolerance_spanning_one_small_label_skips_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 5 x 5 px edge tile among full labels: a --smooth of a few pixels spans the tile but
    not the others. The folder is exported, the tile skipped and listed (it was exit 2)."""
    import csv

    import geopandas as gpd

    big = np.zeros((100, 120), dtype=bool)
    big[20:60, 30:90] = True
    tile = np.ones((5, 5), dtype=bool)
    labels = tmp_path / "labels"
    labels.mkdir()
    _label(labels / "a.tif", big)
    _label(labels / "edge.tif", tile)
    out = tmp_path / "p.gpkg"
    smooth = f"{6 * PX:g}"  # 6 px: more than the tile's 5 px span
    rc = main(["export", "--labels", str(labels), "--out", str(out), "--smooth", smooth,
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert set(gpd.read_file(out, layer="labels")["label"]) == {"a.tif"}
    rows = list(csv.DictReader((tmp_path / "p_gpkg_skipped.csv").open()))
    assert [Path(r["label"]).name for r in rows] == ["edge.tif"]
    assert (
        "spans the whole label" in rows[0]["reason"] and "only it is skipped" in rows[0]["reason"]
    )
