"""Real-world inputs (issue 9, sections 3, 4, 6): nodata / NaN / inf, mask encodings with ignore
values, and georeference (CRS + transform, custom WKT, GCPs) kept in every output.

Every test builds tiny rasters on the fly and asserts the value a remote-sensing user expects.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers_data import write_png, write_tif
from PIL import Image
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from sam2elnet.data.raster import (
    LABEL_NODATA,
    mask_encoding,
    parse_positive_values,
    read_image,
    read_mask,
    read_mask_on_grid,
    read_mask_valid,
    write_mask,
)
from sam2elnet.errors import DataError, UserError

H, W = 24, 32


def _truth() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[4:18, 6:26] = True
    m[8:12, 12:16] = False  # a hole
    return m


# ------------------------------------------------------------------ mask encodings (section 4)


def _write_png_raw(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


@pytest.mark.parametrize(
    "encoding",
    ["01", "0255", "palette", "class2", "class100", "uint16_1000", "noisy_grey", "jpeg0255"],
)
def test_mask_encodings_read_as_meant(tmp_path: Path, encoding: str) -> None:
    m = _truth()
    if encoding == "01":
        f = _write_png_raw(tmp_path / "m.png", m.astype(np.uint8))
    elif encoding == "0255":
        f = _write_png_raw(tmp_path / "m.png", m.astype(np.uint8) * 255)
    elif encoding == "palette":
        p = Image.fromarray(m.astype(np.uint8), mode="P")
        p.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
        f = tmp_path / "m.png"
        p.save(f)
    elif encoding == "class2":
        f = _write_png_raw(tmp_path / "m.png", m.astype(np.uint8) * 2)
    elif encoding == "class100":
        f = _write_png_raw(tmp_path / "m.png", m.astype(np.uint8) * 100)
    elif encoding == "uint16_1000":
        f = write_tif(tmp_path / "m.tif", (m.astype(np.uint16) * 1000)[None], georef=False)
    elif encoding == "noisy_grey":
        rng = np.random.default_rng(0)
        a = np.where(m, 200 + rng.integers(0, 50, m.shape), rng.integers(0, 40, m.shape))
        f = _write_png_raw(tmp_path / "m.png", a.astype(np.uint8))
    else:
        f = tmp_path / "m.jpg"
        cv2.imwrite(str(f), m.astype(np.uint8) * 255, [cv2.IMWRITE_JPEG_QUALITY, 75])
    got, valid = read_mask_valid(f)
    assert valid is None
    assert np.mean(got == m) > 0.99, encoding
    if encoding != "jpeg0255":
        np.testing.assert_array_equal(got, m)


def test_ignore_255_in_01_mask_and_geotiff_nodata(tmp_path: Path) -> None:
    m = _truth()
    a = m.astype(np.uint8)
    a[:, :3] = 255  # not annotated
    png = _write_png_raw(tmp_path / "ign.png", a)
    tif = write_tif(tmp_path / "nd.tif", a[None], nodata=255)
    for f in (png, tif):
        got, valid = read_mask_valid(f)
        assert valid is not None
        assert not valid[:, :3].any() and valid[:, 3:].all()
        np.testing.assert_array_equal(got[:, 3:], m[:, 3:])
        assert not got[:, :3].any()


def test_own_label_convention_127_is_ignored(tmp_path: Path) -> None:
    a = _truth().astype(np.uint8) * 255
    a[:, :5] = LABEL_NODATA
    got, valid = read_mask_valid(_write_png_raw(tmp_path / "own.png", a))
    assert valid is not None and not valid[:, :5].any()
    np.testing.assert_array_equal(got[:, 5:], _truth()[:, 5:])


def test_half_intensity_binary_mask_0_127_is_object(tmp_path: Path) -> None:
    """A {0, 127} file without a nodata tag is a binary mask saved at half intensity (127 =
    object), not an all-ignore mask; with the PNG tRNS / GeoTIFF nodata tag 127 is nodata."""
    m = _truth()
    half = _write_png_raw(tmp_path / "half.png", m.astype(np.uint8) * 127)
    got, valid = read_mask_valid(half)
    assert valid is None
    np.testing.assert_array_equal(got, m)
    assert mask_encoding(np.array([0, 127], np.uint8)).rule == "single class value 127 is object"
    # the same values as one of this project's labels with nodata and no object: tagged
    tagged = tmp_path / "own_empty.png"
    write_mask(tagged, np.zeros((H, W), bool), nodata=m)
    got, valid = read_mask_valid(tagged)
    assert not got.any() and valid is not None
    np.testing.assert_array_equal(valid, ~m)
    tif = write_tif(tmp_path / "half.tif", (m.astype(np.uint8) * 127)[None], nodata=127)
    got, valid = read_mask_valid(tif)
    assert not got.any() and valid is not None and not valid[m].any()


def test_label_png_carries_trns_nodata_for_gdal(tmp_path: Path) -> None:
    """Label PNGs mark 127 transparent (tRNS), which GDAL reads as nodata = 127."""
    m = _truth()
    nd = np.zeros((H, W), bool)
    nd[:, :4] = True
    f = write_mask(tmp_path / "lab.png", m, nodata=nd)
    with rasterio.open(f) as ds:
        assert ds.count == 1 and ds.nodata == LABEL_NODATA
        a = ds.read(1)
        assert ds.dataset_mask()[:, :4].max() == 0 and ds.dataset_mask()[:, 4:].min() == 255
    assert set(np.unique(a).tolist()) == {0, 127, 255}
    assert (a[:, :4] == LABEL_NODATA).all() and (a[:, 4:] == m[:, 4:] * 255).all()
    assert cv2.imread(str(f), cv2.IMREAD_UNCHANGED).shape == (H, W)  # still one grey band
    got, valid = read_mask_valid(f)
    np.testing.assert_array_equal(valid, ~nd)
    np.testing.assert_array_equal(got, m & ~nd)


def test_mask_refusals_name_the_rule(tmp_path: Path) -> None:
    ids = _write_png_raw(tmp_path / "ids.png", np.array([[0, 1, 2, 3]], np.uint8))
    with pytest.raises(DataError, match=r"rule: several class ids \(integers 1-32"):
        read_mask(ids)
    big = write_tif(tmp_path / "big.tif", np.array([[[0, 300, 600, 900]]], np.uint16), georef=False)
    with pytest.raises(DataError, match=r"rule: several kinds of values above 255"):
        read_mask(big)
    # several grey levels above 32 are greys: object where > 127
    grey = _write_png_raw(tmp_path / "grey.png", np.array([[0, 40, 100, 128, 200]], np.uint8))
    assert read_mask(grey).tolist() == [[False, False, False, True, True]]


def test_class_index_mask_refused_with_values_and_remedy(tmp_path: Path) -> None:
    a = np.zeros((H, W), np.uint8)
    a[2:8, 2:8] = 1
    a[10:20, 10:20] = 2
    f = _write_png_raw(tmp_path / "classes.png", a)
    with pytest.raises(DataError) as err:
        read_mask(f)
    msg = str(err.value)
    assert "classes.png" in msg and "--positive-values" in msg
    assert "0 (" in msg and "1 (36 px)" in msg and "2 (100 px)" in msg
    got = read_mask(f, positive_values=(2,))
    assert got.sum() == 100 and got[15, 15] and not got[5, 5]
    both = read_mask(f, positive_values=parse_positive_values("1,2"))
    assert both.sum() == 136


def test_write_decoded_mask_keeps_georeference_and_ignore(tmp_path: Path) -> None:
    from sam2elnet.data.raster import write_decoded_mask

    a = np.zeros((H, W), np.uint8)
    a[2:8, 2:8] = 1
    a[10:20, 10:20] = 2
    a[0, :] = 9  # the file's nodata value
    src = write_tif(tmp_path / "classes.tif", a[None], nodata=9)
    out = write_decoded_mask(src, tmp_path / "dec" / "x.v1", positive_values=(2,))
    assert out == tmp_path / "dec" / "x.v1.tif"
    with rasterio.open(out) as ds:
        assert ds.crs == CRS.from_epsg(32633) and ds.transform == Affine(10, 0, 500000, 0, -10, 4e6)
        assert ds.nodata == LABEL_NODATA
        v = ds.read(1)
    assert (v[0] == LABEL_NODATA).all() and v[15, 15] == 255 and v[5, 5] == 0
    assert int((v == 255).sum()) == 100
    m, valid = read_mask_valid(out)  # the default rule reads the copy back as meant
    assert m.sum() == 100 and not valid[0].any() and valid[1:].all()
    png = write_decoded_mask(_write_png_raw(tmp_path / "c.png", a), tmp_path / "p", (1,))
    assert png.suffix == ".png" and read_mask(png).sum() == 36


def test_empty_rgb_mask_with_one_faint_speck_reads_empty(tmp_path: Path) -> None:
    """sos-2k's 21220_mask.png: an RGB-grey SOS mask that is all 0 except one pixel of 9 (a
    re-save artefact). It is an empty mask, not a class-index map with class 9."""
    from PIL import Image

    a = np.zeros((256, 256, 3), np.uint8)
    a[100, 37] = 9
    f = tmp_path / "21220_mask.png"
    Image.fromarray(a).save(f)
    got = read_mask(f)
    assert got.shape == (256, 256) and not got.any()


def test_parse_positive_values() -> None:
    assert parse_positive_values(None) is None
    assert parse_positive_values("2, 3") == (2.0, 3.0)
    with pytest.raises(UserError, match="not a number"):
        parse_positive_values("road")


def test_mask_encoding_rules_named() -> None:
    assert "0/1 + 255" in mask_encoding(np.array([0, 1, 255], np.uint8)).rule
    assert "single class value 100" in mask_encoding(np.array([0, 100], np.uint8)).rule
    enc = mask_encoding(np.array([0.0, np.nan, 0.7], np.float32))
    fg, ign = enc.apply(np.array([0.0, np.nan, 0.7], np.float32))
    assert fg.tolist() == [False, False, True] and ign.tolist() == [False, True, False]


def test_evaluate_excludes_ignore_pixels(tmp_path: Path) -> None:
    from sam2elnet.engine.evaluate import evaluate_folders

    m = _truth()
    (pred := tmp_path / "pred").mkdir()
    (gt := tmp_path / "gt").mkdir()
    for name in ("a", "b", "c"):
        write_png(pred / f"{name}.png", m.astype(np.uint8) * 255)
    ign = m.astype(np.uint8)
    ign[:, :8] = 255
    _write_png_raw(gt / "a.png", ign)
    write_tif(gt / "b.tif", ign[None], nodata=255)
    _write_png_raw(gt / "c.png", m.astype(np.uint8) * 2)  # class index {0, 2}
    res = evaluate_folders(pred, gt, progress=False)
    ious = {r.name: r.metrics["iou"] for r in res.images}
    assert ious == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert res.images[0].confusion.total == H * (W - 8)


def test_evaluate_positive_values(tmp_path: Path) -> None:
    from sam2elnet.engine.evaluate import evaluate_folders

    m = _truth()
    (pred := tmp_path / "pred").mkdir()
    (gt := tmp_path / "gt").mkdir()
    write_png(pred / "a.png", m.astype(np.uint8) * 255)
    a = m.astype(np.uint8) * 3
    a[0, 0] = 1  # a second class: refused without --positive-values
    _write_png_raw(gt / "a.png", a)
    with pytest.raises(DataError, match="positive-values"):
        evaluate_folders(pred, gt, progress=False)
    res = evaluate_folders(pred, gt, progress=False, positive_values=(3,))
    assert res.images[0].metrics["iou"] == 1.0


def test_degrade_reads_class_index_masks(tmp_path: Path) -> None:
    from sam2elnet.data.coarse import degrade_folder

    (src := tmp_path / "masks").mkdir()
    _write_png_raw(src / "a.png", _truth().astype(np.uint8) * 2)
    ign = _truth().astype(np.uint8)
    ign[:, :4] = 255
    _write_png_raw(src / "b.png", ign)
    csv_path, mean_iou = degrade_folder(src, tmp_path / "out", severity=0.6, progress=False)
    rows = csv_path.read_text().splitlines()[1:]
    assert len(rows) == 2 and mean_iou < 1.0  # the object was seen: degradation changed it
    out_b = np.asarray(Image.open(tmp_path / "out" / "b.png"))
    assert (out_b[:, :4] == LABEL_NODATA).all()  # ignore stays nodata in the coarse label


# ------------------------------------------------------------------ nodata (section 3)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, -9999.0])
def test_nodata_kinds_become_nodata(tmp_path: Path, value: float) -> None:
    a = np.full((1, H, W), 0.2, np.float32)
    a[0, :, :5] = value
    nodata = -9999.0 if value == -9999.0 else None
    img = read_image(write_tif(tmp_path / "i.tif", a, nodata=nodata))
    assert img.nodata is not None
    assert img.nodata[:, :5].all() and not img.nodata[:, 5:].any()


def test_write_mask_marks_nodata_and_keeps_georeference(tmp_path: Path) -> None:
    a = np.full((1, H, W), 0.2, np.float32)
    a[0, :, :5] = np.nan
    img = read_image(write_tif(tmp_path / "i.tif", a, nodata=float("nan")))
    mask = np.ones((H, W), bool)  # even a full prediction never claims nodata pixels
    out = write_mask(tmp_path / "lab.tif", mask, like=img)
    with rasterio.open(out) as ds:
        lab = ds.read(1)
        assert ds.nodata == LABEL_NODATA
        assert ds.crs == CRS.from_epsg(32633)
        assert ds.transform == Affine(10, 0, 500000, 0, -10, 4000000)
    assert (lab[:, :5] == LABEL_NODATA).all() and (lab[:, 5:] == 255).all()
    png = np.asarray(Image.open(write_mask(tmp_path / "lab.png", mask, like=img)))
    assert (png[:, :5] == LABEL_NODATA).all() and (png[:, 5:] == 255).all()


def test_report_stretch_ignores_nodata_value(tmp_path: Path) -> None:
    from sam2elnet.pipeline.report import display_rgb

    a = np.full((1, H, W), 0.1, np.float32)
    a[0, :, 16:] = 0.3
    a[0, :, :4] = -9999.0
    rgb = display_rgb(write_tif(tmp_path / "i.tif", a, nodata=-9999.0))
    # the two real levels span the stretch; -9999 would squash them onto one grey
    assert int(rgb[0, 20, 0]) - int(rgb[0, 8, 0]) > 200


# ------------------------------------------------------------------ georeference (section 6)


def _gcp_image(path: Path) -> Path:
    gcps = [
        GroundControlPoint(row=r, col=c, x=28.0 + 0.001 * c, y=43.0 - 0.001 * r)
        for r in (0, H - 1)
        for c in (0, W - 1)
    ]
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype="uint16") as ds:
        # a seeded speckle-like pattern: a constant scene is refused as unusable
        ds.write(np.random.default_rng(0).integers(300, 700, (1, H, W)).astype(np.uint16))
        ds.gcps = (gcps, CRS.from_epsg(4326))
    return path


def test_gcps_kept_in_label_geotiff(tmp_path: Path) -> None:
    img = read_image(_gcp_image(tmp_path / "grd.tif"))
    assert len(img.profile["gcps"]) == 4
    out = write_mask(tmp_path / "lab.tif", _truth(), like=img)
    with rasterio.open(out) as ds:
        gcps, crs = ds.gcps
        assert len(gcps) == 4 and crs == CRS.from_epsg(4326)
        assert (gcps[-1].row, gcps[-1].col) == (H - 1, W - 1)
        assert gcps[-1].x == pytest.approx(28.0 + 0.001 * (W - 1))


def test_custom_wkt_crs_kept(tmp_path: Path) -> None:
    wkt = CRS.from_proj4(
        "+proj=lcc +lat_1=45 +lat_2=55 +lat_0=50 +lon_0=10 +x_0=0 +y_0=0 +ellps=GRS80 +units=m"
    )
    p = tmp_path / "lcc.tif"
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=W,
        height=H,
        count=1,
        dtype="uint8",
        crs=wkt,
        transform=Affine(5, 0, 1000, 0, -5, 2000),
    ) as ds:
        ds.write(np.zeros((1, H, W), np.uint8))
    img = read_image(p)
    out = write_mask(tmp_path / "lab.tif", _truth(), like=img)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() is None
        assert ds.crs == wkt
        assert ds.transform == Affine(5, 0, 1000, 0, -5, 2000)


def _label_tif(path: Path, arr: np.ndarray, crs: str | None, transform: Affine | None) -> Path:
    profile = {"driver": "GTiff", "height": arr.shape[0], "width": arr.shape[1], "count": 1}
    profile["dtype"] = "uint8"
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr[None])
    return path


def test_label_on_shifted_grid_placed_by_map_position(tmp_path: Path) -> None:
    img = read_image(write_tif(tmp_path / "i.tif", np.zeros((1, H, W), np.uint8)))
    # same size, origin 40 m east / 20 m south: object at label cols 2..10 = image cols 6..14
    lab = np.zeros((H, W), np.uint8)
    lab[2:8, 2:10] = 255
    f = _label_tif(tmp_path / "l.tif", lab, "EPSG:32633", Affine(10, 0, 500040, 0, -10, 3999980))
    got, valid = read_mask_on_grid(f, img)
    expected = np.zeros((H, W), bool)
    expected[4:10, 6:14] = True
    np.testing.assert_array_equal(got, expected)
    assert valid is not None and not valid[:, :4].any() and not valid[:2].any()
    assert valid[2:, 4:].all()


def test_label_in_other_crs_and_resolution_warped(tmp_path: Path) -> None:
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    img = read_image(write_tif(tmp_path / "i.tif", np.zeros((1, H, W), np.uint8)))
    full = np.zeros((H, W), np.uint8)
    full[6:18, 8:24] = 255
    src_t = Affine(10, 0, 500000, 0, -10, 4000000)
    bounds = rasterio.transform.array_bounds(H, W, src_t)
    t, w, h = calculate_default_transform("EPSG:32633", "EPSG:4326", W, H, *bounds)
    geo = np.zeros((h, w), np.uint8)
    reproject(
        full,
        geo,
        src_transform=src_t,
        src_crs="EPSG:32633",
        dst_transform=t,
        dst_crs="EPSG:4326",
        resampling=Resampling.nearest,
    )
    got, _ = read_mask_on_grid(_label_tif(tmp_path / "l.tif", geo, "EPSG:4326", t), img)
    inter = (got & (full > 0)).sum()
    assert inter / ((got | (full > 0)).sum()) > 0.85


def test_label_without_georeference_used_by_pixel_index_with_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    img = read_image(write_tif(tmp_path / "i.tif", np.zeros((1, H, W), np.uint8)))
    f = write_png(tmp_path / "l.png", _truth().astype(np.uint8) * 255)
    with caplog.at_level(logging.WARNING):
        got, _ = read_mask_on_grid(f, img)
    np.testing.assert_array_equal(got, _truth())
    assert any("pixel index" in r.getMessage() for r in caplog.records)


def test_different_size_label_without_georeference_is_stretched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    img = read_image(write_tif(tmp_path / "i.tif", np.zeros((1, H, W), np.uint8), georef=False))
    small = np.zeros((H // 2, W // 2), np.uint8)
    small[2:9, 3:13] = 255
    f = write_png(tmp_path / "l.png", small)
    with caplog.at_level(logging.WARNING):
        got, _ = read_mask_on_grid(f, img)
    assert got.shape == (H, W)
    expected = np.zeros((H, W), bool)
    expected[4:18, 6:26] = True
    np.testing.assert_array_equal(got, expected)
    assert any("stretched" in r.getMessage() for r in caplog.records)


def test_scene_keeps_gcps_and_says_so(tmp_path: Path) -> None:
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene import predict_scene

    src = _gcp_image(tmp_path / "grd.tif")
    res = predict_scene(
        src,
        tmp_path / "lab.tif",
        SmoothingPredictor(),
        tile=32,
        overlap=8,
        progress=False,
        prob_path=tmp_path / "prob.tif",
    )
    for out in (tmp_path / "lab.tif", tmp_path / "prob.tif"):
        with rasterio.open(out) as ds:
            gcps, crs = ds.gcps
            assert ds.crs is None and len(gcps) == 4 and crs == CRS.from_epsg(4326)
    assert any("ground control points" in n for n in res.notes)


def test_export_gcp_only_label_placed_by_gcps(tmp_path: Path) -> None:
    import geopandas as gpd

    from sam2elnet.export.api import export_labels

    img = read_image(_gcp_image(tmp_path / "grd.tif"))
    m = np.zeros((H, W), bool)
    m[:, : W // 2] = True
    lab = write_mask(tmp_path / "lab.tif", m, like=img)
    res = export_labels(lab, tmp_path / "x.gpkg", progress=False)
    assert any("ground control points" in n for n in res.notes)
    g = gpd.read_file(tmp_path / "x.gpkg", layer="labels")
    assert g.crs.to_epsg() == 4326
    x0, y0, x1, y1 = g.total_bounds
    # GCPs: lon = 28 + 0.001 col, lat = 43 - 0.001 row
    assert (x0, x1) == pytest.approx((28.0, 28.0 + 0.001 * W / 2), abs=1e-4)
    assert (y0, y1) == pytest.approx((43.0 - 0.001 * H, 43.0), abs=1e-4)


def test_export_class_index_label_and_positive_values(tmp_path: Path) -> None:
    import geopandas as gpd

    from sam2elnet.export.api import export_labels

    a = np.zeros((1, H, W), np.uint8)
    a[0, 2:6, 2:6] = 1
    a[0, 10:20, 10:20] = 2
    f = write_tif(tmp_path / "cls.tif", a)
    with pytest.raises(DataError, match="positive-values"):
        export_labels(f, tmp_path / "x.gpkg", progress=False)
    export_labels(f, tmp_path / "x.gpkg", progress=False, positive_values=(2,))
    g = gpd.read_file(tmp_path / "x.gpkg", layer="labels")
    assert len(g) == 1 and g["area_px"].iloc[0] == 100


# ------------------------------------------------------------------ training data and folder jobs


def test_dataset_ignore_pixels_leave_valid_and_positive_values(tmp_path: Path) -> None:
    from sam2elnet.data.datasets import Sample, SegmentationDataset

    img = write_png(tmp_path / "i.png", np.full((32, 32), 90, np.uint8))
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 1
    m[:, :4] = 255  # ignore
    ign = _write_png_raw(tmp_path / "m.png", m)
    cls = np.zeros((32, 32), np.uint8)
    cls[8:24, 8:24] = 2
    cls[0:4, 0:4] = 1
    cls_f = _write_png_raw(tmp_path / "c.png", cls)
    ds = SegmentationDataset([Sample("a", img, ign)], size=32, train=False, coarse_prob=0.0)
    item = ds[0]
    assert item["valid"][0, :, :4].sum() == 0 and item["valid"][0, :, 4:].min() == 1
    assert item["mask"][0, 8:24, 8:24].min() == 1 and item["mask"].sum() == 256
    with pytest.raises(DataError, match="positive-values"):
        SegmentationDataset([Sample("c", img, cls_f)], size=32, train=False, coarse_prob=0.0)[0]
    ds2 = SegmentationDataset(
        [Sample("c", img, cls_f)], size=32, train=False, coarse_prob=0.0, positive_values=(2,)
    )
    assert ds2[0]["mask"].sum() == 256


def test_train_config_and_cli_accept_positive_values() -> None:
    from sam2elnet.cli.engine_cmd import _positive_list
    from sam2elnet.config import TrainConfig

    assert _positive_list("2,3") == [2.0, 3.0] and _positive_list(None) is None
    cfg = TrainConfig(data=Path("x"), out=Path("y"), positive_values=[2])
    assert cfg.positive_values == [2.0]


def test_annotate_marks_nodata_and_skips_all_nodata(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from helpers_data import trained_run

    from sam2elnet.engine.infer import annotate_folder

    run = trained_run(tmp_path_factory)
    (src := tmp_path / "img").mkdir()
    rng = np.random.default_rng(0)
    a = rng.random((1, 40, 40)).astype(np.float32)
    a[0, :, :10] = np.nan
    write_tif(src / "part.tif", a, nodata=float("nan"))
    write_tif(src / "none.tif", np.full((1, 40, 40), -9999.0, np.float32), nodata=-9999.0)
    res = annotate_folder(run["model"], src, tmp_path / "out", progress=False, precision="32")
    assert [Path(r["image"]).name for r in res.rows] == ["part.tif"]
    assert (
        len(res.skipped) == 1
        and "unusable image, no label written: all nodata (" in res.skipped[0]["reason"]
    )
    with rasterio.open(tmp_path / "out" / res.rows[0]["label"]) as ds:
        lab = ds.read(1)
        assert ds.nodata == LABEL_NODATA and ds.crs == CRS.from_epsg(32633)
    assert (lab[:, :10] == LABEL_NODATA).all()
    assert set(np.unique(lab[:, 10:]).tolist()) <= {0, 255}


def test_coco_export_honours_positive_values(tmp_path: Path) -> None:
    import json

    from sam2elnet.export.api import export_labels

    a = np.zeros((1, H, W), np.uint8)
    a[0, 2:6, 2:6] = 1
    a[0, 10:20, 10:20] = 2
    f = write_tif(tmp_path / "cls.tif", a)
    export_labels(f, tmp_path / "c.json", "coco", progress=False, positive_values=(2,))
    coco = json.loads((tmp_path / "c.json").read_text())
    assert [round(x["area"]) for x in coco["annotations"]] == [100]


def test_experiment_scoring_and_downstream_skip_truth_ignore(tmp_path: Path) -> None:
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.downstream import load_pair
    from sam2elnet.pipeline.experiment import score_labels, score_per_image

    m = _truth()
    ign = m.astype(np.uint8)
    ign[:, :8] = 255
    t = _write_png_raw(tmp_path / "t.png", ign)
    p = write_png(tmp_path / "p.png", m.astype(np.uint8) * 255)
    assert score_labels({"a": str(p)}, {"a": str(t)}, ["a"])["iou"] == 1.0
    assert score_per_image({"a": str(p)}, {"a": str(t)}, ["a"]) == {"a": 1.0}
    img = write_png(tmp_path / "i.png", np.full((H, W), 90, np.uint8))
    _x, mask, valid = load_pair(img, t, NormalizationConfig())
    assert not valid[:, :8].any() and valid[:, 8:].all()
    np.testing.assert_array_equal(mask[:, 8:], m[:, 8:])


def test_scene_positive_values_for_class_index_coarse_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scene --labels with a class-index raster ({0, 1, 2}): refused naming --positive-values,
    which scene takes like enhance; class 2 is then the object, class 1 background."""
    from sam2elnet.cli import main

    img = np.full((1, 64, 64), 100, np.uint8)
    # content 12 px away from class 2 (a constant scene is refused as unusable): brighter than
    # the flat 100, its smoothed half of the dry-run model's input stays below the threshold
    img[0, 42:, :24] = np.random.default_rng(0).integers(101, 256, (22, 24))
    write_tif(tmp_path / "scene.tif", img)
    lab = np.zeros((1, 64, 64), np.uint8)
    lab[0, 8:30, 8:30] = 2
    lab[0, 36:60, 36:60] = 1
    write_tif(tmp_path / "classes.tif", lab)
    args = ["scene", "--model", "builtin:smoothing", "--image", str(tmp_path / "scene.tif"),
            "--labels", str(tmp_path / "classes.tif"), "--tile", "64", "--overlap", "16",
            "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "no.tif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--positive-values" in err and err.count("\n") == 1
    assert not (tmp_path / "no.tif").exists()
    assert main([*args, "--out", str(tmp_path / "two.tif"), "--positive-values", "2"]) == 0
    with rasterio.open(tmp_path / "two.tif") as ds:
        obj = ds.read(1) == 255
    assert obj.any() and obj[8:30, 8:30].sum() == obj.sum()  # only where class 2 is


def test_read_mask_on_grid_names_what_its_caller_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its messages said "coarse label raster" (and "would be enhanced") whatever the caller
    read; now "label raster" by default, the caller's word with ``label``."""
    from sam2elnet.errors import DataError

    img_path = write_tif(tmp_path / "i.tif", np.zeros((1, H, W), np.uint8))
    img = read_image(img_path)
    lab = np.full((H, W), 255, np.uint8)
    far = _label_tif(
        tmp_path / "far.tif", lab, "EPSG:32633", Affine(10, 0, 600000, 0, -10, 4000000)
    )
    with pytest.raises(DataError) as err:
        read_mask_on_grid(far, img)
    text = str(err.value)
    assert text.startswith(f"{far}: label raster does not overlap the image {img_path} at all")
    assert "the image would be given an empty label; check the label's CRS" in text, text
    assert "coarse" not in text
    with pytest.raises(DataError, match="would be given an empty truth label;"):
        read_mask_on_grid(far, img, label="truth label")
    half = _label_tif(
        tmp_path / "half.tif",
        lab,
        "EPSG:32633",
        Affine(10, 0, 500000 + 10 * W // 2, 0, -10, 4000000),
    )
    with caplog.at_level(logging.WARNING):
        read_mask_on_grid(half, img)
    assert [r.getMessage() for r in caplog.records] == [
        f"{half}: the label raster covers 50.0 % of the image {img_path}; the other 50.0 % lies "
        "outside its footprint and gets no label (background there); check the label's "
        "georeference if it should cover the whole image"
    ]
