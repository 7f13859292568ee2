"""``elnet export --crs``: one CRS for a polygon layer of scenes in several UTM zones.

Labels in EPSG:32615 and EPSG:32616 cannot share a layer as they are: without ``--crs`` the
export is one ``error:`` line naming the CRSs (nothing written); with ``--crs EPSG:4326`` every
label's polygons are reprojected, and ``elnet import --from vector`` lands them back on each
label's grid pixel for pixel, the review record (the exported masks) recognising them as unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sam2elnet.cli import main


def _label(path: Path, crs: str, x0: float, seed: int) -> Path:
    """A 0/255 label of 10 m pixels: a donut with an island, a diagonal run of blocks, a long
    40-px edge and one single pixel (shapes whose edges reprojection could move)."""
    a = np.zeros((64, 80), np.uint8)
    a[10:40, 10:40] = 255
    a[18:32, 18:32] = 0
    a[23:27, 23:27] = 255
    a[50:54, 2:78] = 255
    for k in range(5):
        a[42 + 2 * k : 44 + 2 * k, 45 + 3 * k + seed : 48 + 3 * k + seed] = 255
    a[60, 70] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=80, height=64, count=1, dtype="uint8",
                       crs=crs, transform=from_origin(x0, 4_000_000, 10, 10)) as ds:  # fmt: skip
        ds.write(a[None])
    return path


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    """Three labels: two in UTM 15N, one in UTM 16N."""
    lab = tmp_path / "labels"
    _label(lab / "a.tif", "EPSG:32615", 500_000, 0)
    _label(lab / "b.tif", "EPSG:32615", 520_000, 1)
    _label(lab / "c.tif", "EPSG:32616", 500_000, 2)
    return lab


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main([*args, "--no-progress"])
    return rc, capsys.readouterr().err


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1) > 127


@pytest.mark.parametrize("ext", ["gpkg", "shp"])
def test_labels_in_two_utm_zones_need_crs(
    tmp_path: Path, zones: Path, capsys: pytest.CaptureFixture[str], ext: str
) -> None:
    out = tmp_path / f"all.{ext}"
    rc, err = _run(capsys, "export", "--labels", str(zones), "--out", str(out))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: {zones}: "), err
    assert "2 CRSs (EPSG:32615: 2 (a.tif, b.tif); EPSG:32616: 1 (c.tif))" in lines[0]
    assert "give --crs to reproject them all to it, e.g. --crs EPSG:32615 or --crs wgs84" in err
    assert not out.exists() and not list(tmp_path.glob("all_*review.json"))
    # with --chips: refused before any chip is written (the CRS check ran after them)
    images = tmp_path / "images"
    for name in ("a.tif", "b.tif", "c.tif"):
        with rasterio.open(zones / name) as ds:
            prof, data = ds.profile, ds.read()
        images.mkdir(exist_ok=True)
        with rasterio.open(images / name, "w", **prof) as ds:
            ds.write(data)
    chips = tmp_path / "chips"
    rc, err = _run(capsys, "export", "--labels", str(zones), "--out", str(out), "--chips",
                   str(chips), "--images", str(images), "--chip-size", "32")  # fmt: skip
    assert rc == 2 and "2 CRSs" in err and err.count("\n") == 1, err
    assert not list(chips.rglob("*.png")) and not out.exists()


def test_crs_for_labels_without_georeference_writes_no_chips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels, images = tmp_path / "labels", tmp_path / "images"
    labels.mkdir()
    images.mkdir()
    a = np.zeros((64, 64), np.uint8)
    a[10:40, 10:40] = 255
    for d in (labels, images):
        with rasterio.open(d / "a.png", "w", driver="PNG", width=64, height=64, count=1,
                           dtype="uint8") as ds:  # fmt: skip
            ds.write(a[None])
    out, chips = tmp_path / "p.gpkg", tmp_path / "chips"
    rc, err = _run(capsys, "export", "--labels", str(labels), "--out", str(out), "--crs",
                   "EPSG:4326", "--chips", str(chips), "--images", str(images))  # fmt: skip
    assert rc == 2 and "no georeference, so --crs cannot reproject" in err, err
    assert not list(chips.rglob("*.png")) and not out.exists()


@pytest.mark.parametrize("ext", ["gpkg", "shp", "geojson"])
def test_crs_4326_round_trip_lands_every_label_back_pixel_for_pixel(
    tmp_path: Path, zones: Path, capsys: pytest.CaptureFixture[str], ext: str
) -> None:
    out = tmp_path / f"all.{ext}"
    rc, err = _run(capsys, "export", "--labels", str(zones), "--out", str(out), "--crs",
                   "EPSG:4326")  # fmt: skip
    assert rc == 0, err
    layer = gpd.read_file(out, layer="labels") if ext == "gpkg" else gpd.read_file(out)
    assert layer.crs.to_epsg() == 4326 and set(layer["label"]) == {"a.tif", "b.tif", "c.tif"}
    assert "polygons reprojected to EPSG:4326" in err and "1 from EPSG:32616 (c.tif)" in err
    # area_map stays in the label's own CRS units (m^2 of its UTM zone)
    donut = layer[layer["label"] == "c.tif"].sort_values("area_px").iloc[-1]
    assert donut["area_map"] == pytest.approx(donut["area_px"] * 100)
    masks = tmp_path / "masks"
    rc, err = _run(capsys, "import", str(out), "--from", "vector", "--images", str(zones),
                   "--out", str(masks))  # fmt: skip
    assert rc == 0, err
    for name in ("a.tif", "b.tif", "c.tif"):
        assert np.array_equal(_read(masks / name), _read(zones / name)), name
    # the review record's masks (of the labels on their own grids) match: nothing "edited"
    assert "3 of 3 masks are the exported labels unchanged" in err


def test_crs_wgs84_is_rfc7946_geojson_and_the_old_option_is_its_alias(
    tmp_path: Path, zones: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = zones / "a.tif"
    new, old = tmp_path / "new.geojson", tmp_path / "old.geojson"
    assert _run(capsys, "export", "--labels", str(one), "--out", str(new), "--crs", "wgs84")[0] == 0
    rc, _ = _run(
        capsys, "export", "--labels", str(one), "--out", str(old), "--geojson-crs", "wgs84"
    )
    assert rc == 0
    doc = json.loads(new.read_text())
    assert "crs" not in doc  # RFC 7946: WGS84 lon/lat, no crs member
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert -94 < lon < -92 and 36 < lat < 37
    assert new.read_text().replace('"new"', '"old"') == old.read_text()  # the layer name
    # GeoJSON in another CRS than WGS84 keeps the crs member (not RFC 7946)
    utm = tmp_path / "utm.geojson"
    assert _run(capsys, "export", "--labels", str(zones), "--out", str(utm), "--crs",
                "EPSG:32615")[0] == 0  # fmt: skip
    assert "EPSG::32615" in json.loads(utm.read_text())["crs"]["properties"]["name"]


def test_bad_crs_values_are_one_error_line_and_nothing_written(
    tmp_path: Path, zones: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.geojson"
    base = ["export", "--labels", str(zones), "--out", str(out)]
    cases = [
        (["--crs", "EPSG:99999"], "--crs 'EPSG:99999' is not a CRS; give image"),
        (["--crs", "EPSG:32615", "--geojson-crs", "wgs84"], "ask for two CRSs; give --crs alone"),
    ]
    for extra, words in cases:
        rc, err = _run(capsys, *base, *extra)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert words in lines[0], lines[0]
    png = tmp_path / "plain" / "x.png"
    png.parent.mkdir()
    from PIL import Image

    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 4)).save(png)
    rc, err = _run(capsys, "export", "--labels", str(png), "--out", str(tmp_path / "p.gpkg"),
                   "--crs", "wgs84")  # fmt: skip
    assert rc == 2 and "labels have no georeference, so --crs cannot reproject them" in err
    assert not out.exists() and not (tmp_path / "p.gpkg").exists()


def test_warp_to_utm_across_zones_names_the_labels_folder(
    tmp_path: Path, zones: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--warp-to utm puts each label in its own zone: the mixed-CRS error names the labels given,
    not the temporary folder of their warped copies."""
    out = tmp_path / "w.gpkg"
    rc, err = _run(capsys, "export", "--labels", str(zones), "--out", str(out), "--warp-to", "utm")
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: {zones}: "), err
    assert "give --crs" in lines[0] and "(after --warp-to utm)" in lines[0]
    assert not out.exists()


def test_warp_to_export_records_the_run_model_not_a_free_text_model_id(
    tmp_path: Path, zones: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--warp-to exports a temporary copy of the labels: the record's model was looked up in that
    folder (none, or a stray /tmp/summary.json). And --model-id is a free-text feature attribute,
    not the run's ``model_version``."""
    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    ident = {"sha256": "ab" * 32, "model": str(model), "model_version": "m@abababab"}
    (tmp_path / "model_id.json").write_text(json.dumps(ident), encoding="utf-8")
    out = tmp_path / "w.gpkg"
    rc, err = _run(capsys, "export", "--labels", str(zones), "--out", str(out), "--warp-to",
                   "EPSG:32615")  # fmt: skip
    assert rc == 0, err
    rec = json.loads((tmp_path / "w_review.json").read_text(encoding="utf-8"))
    assert rec["model"] == str(model.absolute()) and rec["model_version"] == "m@abababab"
    (tmp_path / "model_id.json").unlink()
    out = tmp_path / "free.gpkg"
    rc, err = _run(capsys, "export", "--labels", str(zones / "a.tif"), "--out", str(out),
                   "--model-id", "my best model")  # fmt: skip
    assert rc == 0, err
    layer = gpd.read_file(out, layer="labels")
    assert set(layer["model_id"]) == {"my best model"}
    rec = json.loads((tmp_path / "free_review.json").read_text(encoding="utf-8"))
    assert "model_version" not in rec and "model" not in rec
