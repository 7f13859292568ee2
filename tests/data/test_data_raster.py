"""Raster IO: formats, dtypes, bands, alpha, nodata, masks and the errors users can fix."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import grey_rgb, shared, write_png, write_tif

from sam2elnet.data.raster import (
    binarize,
    read_image,
    read_mask,
    write_image,
    write_mask,
    write_probability,
)
from sam2elnet.errors import DataError


def test_png_rgb_and_grey_collapse(tmp_path):
    p = write_png(tmp_path / "a.png", grey_rgb(16))
    img = read_image(p)
    assert img.data.shape == (3, 16, 16) and img.data.dtype == np.uint8 and img.nodata is None
    sar = read_image(p, sar=True)
    assert sar.data.shape == (1, 16, 16)
    np.testing.assert_array_equal(sar.data[0], img.data[0])


def test_colour_image_not_collapsed_even_for_sar(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    p = write_png(tmp_path / "c.png", rgb)
    img = read_image(p, sar=True)
    assert img.bands == 3
    np.testing.assert_array_equal(np.moveaxis(img.data, 0, 2), rgb)  # RGB order preserved


def test_rgba_alpha_dropped_and_transparent_is_nodata(tmp_path):
    rgba = np.full((8, 8, 4), 200, np.uint8)
    rgba[0, 0, 3] = 0
    img = read_image(write_png(tmp_path / "rgba.png", rgba))
    assert img.bands == 3
    assert img.nodata is not None and img.nodata[0, 0] and img.nodata.sum() == 1
    rgba[..., 3] = 255
    assert read_image(write_png(tmp_path / "opaque.png", rgba)).nodata is None


def test_jpeg_and_uint16_png(tmp_path):
    p = write_png(tmp_path / "a.jpg", grey_rgb(16))
    assert read_image(p, sar=True).data.shape == (1, 16, 16)
    a16 = np.arange(256, dtype=np.uint16).reshape(16, 16) * 200
    img = read_image(write_png(tmp_path / "b.png", a16))
    assert img.data.dtype == np.uint16 and img.data.shape == (1, 16, 16)
    np.testing.assert_array_equal(img.data[0], a16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_geotiff_dtypes_bands_and_georef(tmp_path, dtype):
    data = (np.random.default_rng(0).random((4, 12, 10)) * 100).astype(dtype)
    img = read_image(write_tif(tmp_path / "x.tif", data))
    assert img.data.dtype == dtype and img.data.shape == (4, 12, 10)
    assert img.profile["crs"] is not None and img.shape == (12, 10)


def test_geotiff_nodata_value_and_nan(tmp_path):
    data = np.ones((2, 8, 8), np.float32)
    data[:, 1, 1] = -9999
    data[:, 2, 2] = np.nan
    img = read_image(write_tif(tmp_path / "nd.tif", data, nodata=-9999))
    assert (
        img.nodata is not None and img.nodata[1, 1] and img.nodata[2, 2] and img.nodata.sum() == 2
    )
    assert not img.valid[1, 1]


def test_write_mask_png_and_geotiff_keeps_georef(tmp_path):
    like = read_image(write_tif(tmp_path / "src.tif", np.zeros((1, 8, 8), np.uint8)))
    m = np.zeros((8, 8), bool)
    m[2:5, 3:6] = True
    write_mask(tmp_path / "m.png", m)
    write_mask(tmp_path / "m.tif", m, like=like)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), m)
    out = read_image(tmp_path / "m.tif")
    assert (
        out.profile["crs"] == like.profile["crs"]
        and out.profile["transform"] == like.profile["transform"]
    )
    assert set(np.unique(out.data)) == {0, 255}
    write_probability(tmp_path / "p.tif", np.full((8, 8), 0.25), like=like)
    assert read_image(tmp_path / "p.tif").data.dtype == np.float32
    write_probability(tmp_path / "p.png", np.full((8, 8), 1.0))
    assert read_image(tmp_path / "p.png").data.max() == 255
    write_image(tmp_path / "i.tif", np.ones((2, 8, 8), np.uint16), like=like)
    assert read_image(tmp_path / "i.tif").bands == 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([[0, 1], [1, 0]], np.uint8), [[0, 1], [1, 0]]),
        (np.array([[0, 255], [255, 0]], np.uint8), [[0, 1], [1, 0]]),
        (np.array([[3, 237], [128, 127]], np.uint8), [[0, 1], [1, 0]]),
        (np.array([[0.0, 0.9], [0.6, 0.2]], np.float32), [[0, 1], [1, 0]]),
    ],
)
def test_binarize_rules(values, expected):
    np.testing.assert_array_equal(binarize(values), np.array(expected, bool))


def test_read_mask_variants(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.random((16, 16)) > 0.5
    noisy = np.where(
        truth, 200 + rng.integers(0, 37, truth.shape), rng.integers(0, 60, truth.shape)
    ).astype(np.uint8)
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "n.png", noisy)), truth)
    np.testing.assert_array_equal(
        read_mask(write_png(tmp_path / "01.png", truth.astype(np.uint8))), truth
    )
    rgb = np.dstack([truth.astype(np.uint8) * 255] * 3)
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "rgb.png", rgb)), truth)


def test_mask_with_differing_channels_is_error(tmp_path):
    a = np.zeros((16, 16, 3), np.uint8)
    a[:8, :, 0] = 255
    with pytest.raises(DataError, match="channels"):
        read_mask(write_png(tmp_path / "col.png", a))


def test_mask_size_mismatch_names_both_files(tmp_path):
    p = write_png(tmp_path / "m.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(DataError) as err:
        read_mask(p, shape=(16, 16), image_path=tmp_path / "img.png")
    assert "m.png" in str(err.value) and "img.png" in str(err.value)


def test_bad_inputs_raise_dataerror(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="folder"):
        read_image(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="cannot decode"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match="cannot read"):
        read_image(tmp_path / "bad.tif")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError):
        read_image(tmp_path / "empty.jpg")


def test_unsupported_band_count(tmp_path):
    p = write_tif(tmp_path / "cube.tif", np.zeros((20, 4, 4), np.uint8))
    with pytest.raises(DataError, match="band count"):
        read_image(p)


def test_real_sos_and_roads_samples():
    sos = shared("sos-dev")
    img = read_image(sos / "train" / "palsar" / "10791_sat.jpg", sar=True)
    assert img.data.shape == (1, 256, 256)
    m = read_mask(sos / "train" / "palsar" / "10791_mask.png", shape=img.shape)
    assert m.dtype == bool and 0 < m.mean() < 1
    roads = shared("roads-dev")
    rimg = read_image(roads / "images" / "satimage_0.png")
    assert rimg.data.shape == (3, 400, 400) and rimg.nodata is None  # RGBA, alpha 255 dropped
    assert read_mask(roads / "masks" / "satimage_0.png", shape=rimg.shape).any()


def test_palette_png_mask_reads_class_indices(tmp_path) -> None:
    """VOC-style palette masks (class 1 drawn in a colour) are read by index, not by RGB."""
    from PIL import Image

    from sam2elnet.data.raster import read_mask

    idx = np.zeros((8, 10), dtype=np.uint8)
    idx[2:5, 3:7] = 1
    idx[0, 0] = 255  # "void" border pixel, not foreground
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 253 + [224, 224, 192])
    im.save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.sum() == 12 and mask[2:5, 3:7].all() and not mask[0, 0]


def test_label_png_holds_the_encoders_bytes_and_a_failed_write_leaves_nothing(
    tmp_path, monkeypatch
) -> None:
    """Label PNGs are encoded in memory and written with os.write: the file is exactly what PIL
    writes itself (zlib level writers.LABEL_PNG_LEVEL, tRNS 127), short writes are completed,
    and ENOSPC in the middle of the write is "disk full" with nothing under the final name and no temporary file."""
    import errno
    import os

    from PIL import Image

    import sam2elnet.data.writers as writers
    from sam2elnet.errors import DiskFullError

    rng = np.random.default_rng(0)
    mask = rng.random((40, 56)) > 0.5
    nodata = np.zeros_like(mask)
    nodata[:5] = True
    p = write_mask(tmp_path / "m.png", mask, nodata=nodata)
    want = np.where(nodata, 127, np.where(mask, 255, 0)).astype(np.uint8)
    Image.fromarray(want, "L").save(
        tmp_path / "pil.png", format="PNG", transparency=127, compress_level=writers.LABEL_PNG_LEVEL
    )
    assert p.read_bytes() == (tmp_path / "pil.png").read_bytes()
    from sam2elnet.data.masks import read_mask_valid

    obj, valid = read_mask_valid(p)
    assert valid is not None and np.array_equal(valid, ~nodata)
    assert np.array_equal(obj, mask & ~nodata)
    assert read_image(p).profile["nodata"] == 127  # the tRNS chunk, as GDAL reads it
    Image.fromarray(want, "L").save(tmp_path / "plain.png")
    assert read_image(tmp_path / "plain.png").profile["nodata"] is None  # no tRNS chunk

    real_write = os.write

    def short(fd, data):  # noqa: ANN001, ANN202  (a file system that takes 100 bytes a call)
        return real_write(fd, bytes(data[:100]))

    monkeypatch.setattr(writers.os, "write", short)
    assert write_mask(tmp_path / "s.png", mask, nodata=nodata).read_bytes() == p.read_bytes()

    calls = []

    def full(fd, data):  # noqa: ANN001, ANN202  (the disk fills after the first 100 bytes)
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[:100]))

    monkeypatch.setattr(writers.os, "write", full)
    (tmp_path / "full").mkdir()
    with pytest.raises(DiskFullError, match="disk full"):
        write_mask(tmp_path / "full" / "m.png", mask)
    assert len(calls) == 2 and list((tmp_path / "full").iterdir()) == []


def test_probability_geotiff_marks_the_image_nodata_as_nan(tmp_path):
    """annotate / enhance --save-prob: nodata pixels were written as p = 0 (a GIS showed them as
    certain background) while elnet scene and the window-by-window path write NaN + nodata."""
    import rasterio

    a = np.full((1, 8, 8), 50, np.uint16)
    a[0, :3, :2] = 0
    like = read_image(write_tif(tmp_path / "src.tif", a, nodata=0))
    write_probability(tmp_path / "p.tif", np.full((8, 8), 0.25), like=like)
    with rasterio.open(tmp_path / "p.tif") as ds:
        p = ds.read(1)
        assert np.isnan(ds.nodata) and ds.crs == like.profile["crs"]
    assert np.isnan(p[:3, :2]).all() and (p[~like.nodata] == 0.25).all()
    # a PNG cannot hold NaN: the model's value stays
    write_probability(tmp_path / "p.png", np.full((8, 8), 0.25), like=like)
    assert (read_image(tmp_path / "p.png").data == 64).all()
