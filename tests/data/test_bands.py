"""Bands: --bands for train/annotate/enhance (like scene), folders mixing band counts, and alpha
dropped only when it is alpha."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import csv

import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers_data import make_dataset, small_cfg, trained_run, write_png, write_tif

from sam2elnet.data.raster import parse_bands, read_image
from sam2elnet.errors import DataError, UserError


def test_parse_bands():
    assert parse_bands("4,3,2") == [4, 3, 2]
    assert parse_bands(" 1, 2 ,3 ") == [1, 2, 3]
    assert parse_bands(None) is None and parse_bands("") is None
    for bad in ("0,1", "a,b", ",", "-1"):
        with pytest.raises(UserError, match="--bands must be comma-separated band numbers"):
            parse_bands(bad)


def test_read_image_selects_bands(tmp_path):
    data = np.stack([np.full((8, 8), 100 * (b + 1), np.uint16) for b in range(13)])
    p = write_tif(tmp_path / "s2.tif", data)
    img = read_image(p, bands=[4, 3, 2])
    assert img.bands == 3 and img.data[:, 0, 0].tolist() == [400, 300, 200]
    with pytest.raises(DataError, match="asks for band 14 but the image has 13 band"):
        read_image(p, bands=[14, 3, 2])
    # more than 16 bands is fine once a selection brings it down
    many = write_tif(tmp_path / "h.tif", np.zeros((20, 8, 8), np.uint16))
    assert read_image(many, bands=[1, 10, 20]).bands == 3


def _tif4(path, fourth, alpha_tag: bool):
    rgb = np.random.default_rng(0).integers(40, 200, (3, 32, 32), dtype=np.uint8)
    prof = dict(driver="GTiff", width=32, height=32, count=4, dtype="uint8", photometric="RGB")
    prof.update(crs="EPSG:32633", transform=Affine(1, 0, 0, 0, -1, 0))
    kw = {"alpha": "YES"} if alpha_tag else {}
    with rasterio.open(path, "w", **prof, **kw) as ds:
        ds.write(np.concatenate([rgb, fourth[None]]))
    return path


def test_alpha_only_when_it_is_alpha(tmp_path):
    alpha = np.full((32, 32), 255, np.uint8)
    alpha[:, :8] = 0
    real = read_image(_tif4(tmp_path / "rgba.tif", alpha, True))
    assert real.bands == 3 and real.nodata is not None and real.nodata[:, :8].all()
    nir = np.random.default_rng(1).integers(1, 254, (32, 32), dtype=np.uint8)
    rgbn = read_image(_tif4(tmp_path / "rgbn.tif", nir, True))  # NIR that GDAL tags alpha
    assert rgbn.bands == 4 and rgbn.nodata is None
    assert np.array_equal(rgbn.data[3], nir)
    png = read_image(
        write_png(tmp_path / "a.png", np.dstack([np.zeros((32, 32, 3), np.uint8), alpha]))
    )
    assert png.bands == 3 and png.nodata[:, :8].all()  # PNG RGBA: the 4th channel is alpha


def test_annotate_mixed_band_folder_labels_every_usable_image(tmp_path_factory, tmp_path):
    from sam2elnet.engine.infer import annotate_folder

    model = trained_run(tmp_path_factory)["model"]  # 3-band micro model
    folder = tmp_path / "img"
    rng = np.random.default_rng(0)
    write_png(folder / "a_rgb.png", rng.integers(0, 255, (40, 40, 3), np.uint8))
    alpha = np.full((40, 40, 1), 255, np.uint8)
    write_png(
        folder / "b_rgba.png",
        np.concatenate([rng.integers(0, 255, (40, 40, 3), np.uint8), alpha], 2),
    )
    write_tif(folder / "c_rgbn.tif", rng.integers(1, 254, (4, 40, 40)).astype(np.uint8))
    write_tif(folder / "d_s2.tif", rng.integers(500, 3000, (13, 40, 40)).astype(np.uint16))
    res = annotate_folder(model, folder, tmp_path / "out", progress=False)
    labelled = sorted(os.path.basename(r["image"]) for r in res.rows)
    assert labelled == ["a_rgb.png", "b_rgba.png"]
    rows = list(csv.DictReader((tmp_path / "out" / "skipped.csv").open()))
    assert sorted(os.path.basename(r["image"]) for r in rows) == ["c_rgbn.tif", "d_s2.tif"]
    reasons = {os.path.basename(r["image"]): r["reason"] for r in rows}
    assert "image has 4 bands but the model was trained for 3" in reasons["c_rgbn.tif"]
    assert "--bands" in reasons["d_s2.tif"]
    # choosing bands: every file has bands 1..3 (RGBA after dropping alpha)
    res = annotate_folder(model, folder, tmp_path / "out2", progress=False, bands=[1, 2, 3])
    assert len(res.rows) == 4 and not res.skipped
    with pytest.raises(
        UserError, match=r"^bands \(--bands\) 1,2 selects 2 bands but the model takes 3"
    ):
        annotate_folder(model, folder, tmp_path / "out3", progress=False, bands=[1, 2])


def test_train_bands_recorded_and_reused(tmp_path, capsys):
    from sam2elnet.cli import main
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=6, bands=3)
    # make a 5-band copy: bands 4,3,2 carry the RGB-like content, 1 and 5 are noise
    five = tmp_path / "five"
    rng = np.random.default_rng(3)
    for p in sorted((data / "images").iterdir()):
        rgb = read_image(p).data
        noise = rng.integers(0, 255, (2, *rgb.shape[1:])).astype(np.uint8)
        stack = np.stack([noise[0], rgb[2], rgb[1], rgb[0], noise[1]])
        write_tif(five / "images" / f"{p.stem}.tif", stack)
        m = read_image(data / "masks" / p.name).data
        write_tif(five / "masks" / f"{p.stem}.tif", m)
    res = train(small_cfg(five, tmp_path / "run", bands=[4, 3, 2], fit_quality=False))
    pred = Predictor.from_file(res.best_path)
    assert pred.in_bands == 3 and pred.normalization.band_select == [4, 3, 2]
    img, x, _ = pred.read(five / "images" / "s00.tif")
    assert img.bands == 3 and np.array_equal(
        img.data[0], read_image(data / "images" / "s00.png").data[0]
    )
    rc = main(
        ["annotate", "--model", str(res.best_path), "--images", str(five / "images"),
         "--out", str(tmp_path / "ann"), "--no-progress"]
    )  # fmt: skip
    assert rc == 0 and len(list((tmp_path / "ann" / "labels").iterdir())) == 6
    rc = main(
        ["train", "--data", str(five), "--out", str(tmp_path / "r2"), "--bands", "4,x"]
    )  # fmt: skip
    assert rc == 2 and "--bands must be comma-separated" in capsys.readouterr().err


def test_train_bands_on_more_than_16_band_images(tmp_path):
    """A hyperspectral-like 20-band set trains on --bands 3,2,1 (the 16-band cap applies after
    the selection)."""
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=4, bands=3)
    cube = tmp_path / "cube"
    for p in sorted((data / "images").iterdir()):
        rgb = read_image(p).data
        stack = np.concatenate([rgb[::-1], np.zeros((17, *rgb.shape[1:]), np.uint8)])
        write_tif(cube / "images" / f"{p.stem}.tif", stack)
        write_tif(cube / "masks" / f"{p.stem}.tif", read_image(data / "masks" / p.name).data)
    res = train(small_cfg(cube, tmp_path / "run", bands=[3, 2, 1], fit_quality=False))
    assert len(res.splits["train"]) + len(res.splits["val"]) == 4


# --------------------------------------------- one band-count rule for whole images and scenes
def _micro(path, bands: int):
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.model.io import save_model

    save_model(build_model(ModelConfig(size="micro", in_bands=bands)), path)
    return Predictor.from_file(path, precision="32")


def _both_paths(pred, path):
    """(whole-image normalised input, scene-path normalised input) of one file; each is the
    input or the exception its path raises."""
    from sam2elnet.engine.scene_inputs import make_scene_normalizer

    out = []
    try:
        out.append(pred.read(path)[1])
    except DataError as err:
        out.append(err)
    try:
        with rasterio.open(path) as src:
            norm = make_scene_normalizer(src, pred)
            data = src.read(norm.bands)
            out.append(norm(data, src.dataset_mask() > 0))
    except DataError as err:
        out.append(err)
    return out


def _reason(err):
    return str(err).split(": ", 1)[1]  # the message after the file name


def test_band_rule_same_on_whole_and_scene_path(tmp_path):
    """A 1-band image into a 3-band model is repeated on both paths (same normalised input); a
    grey image stored as 3 identical bands feeds a 1-band model its first band on both; a real
    alpha band is dropped on both; 4 (non-alpha) bands into 3, or 2 different bands into 1, are
    the same BandCountError on both."""
    from sam2elnet.errors import BandCountError

    rng = np.random.default_rng(0)
    m3, m1 = _micro(tmp_path / "m3.pt", 3), _micro(tmp_path / "m1.pt", 1)
    one = write_tif(tmp_path / "one.tif", rng.random((1, 48, 48)).astype(np.float32))
    whole, scene = _both_paths(m3, one)
    assert whole.shape == scene.shape == (3, 48, 48)
    np.testing.assert_allclose(scene, whole, atol=1e-5)
    assert np.array_equal(whole[0], whole[2]) and whole.std() > 0.1
    grey = write_tif(
        tmp_path / "grey.tif", np.repeat(rng.integers(0, 255, (1, 48, 48), np.uint8), 3, 0)
    )
    whole, scene = _both_paths(m1, grey)
    assert whole.shape == scene.shape == (1, 48, 48)
    np.testing.assert_allclose(scene, whole, atol=1e-5)
    alpha = np.full((32, 32), 255, np.uint8)
    whole, scene = _both_paths(m3, _tif4(tmp_path / "rgba.tif", alpha, True))
    assert whole.shape == scene.shape == (3, 32, 32)
    np.testing.assert_allclose(scene, whole, atol=1e-5)
    nir = rng.integers(1, 254, (32, 32), dtype=np.uint8)
    two = write_tif(tmp_path / "two.tif", rng.integers(0, 255, (2, 32, 32), np.uint8))
    for pred, path, msg in (
        (m3, _tif4(tmp_path / "rgbn.tif", nir, True), "image has 4 bands but the model was trained for 3"),
        (m1, two, "image has 2 bands but the model was trained for 1"),
    ):  # fmt: skip
        whole, scene = _both_paths(pred, path)
        assert isinstance(whole, BandCountError) and isinstance(scene, BandCountError)
        assert msg in str(whole) and _reason(whole) == _reason(scene)


def test_annotate_single_band_into_rgb_model_on_both_paths(tmp_path):
    """annotate labels a 1-band image with a 3-band model whole and window by window (an image
    over --max-memory); with one window covering the image the two labels are the same."""
    from sam2elnet.engine.infer import annotate_folder

    pred = _micro(tmp_path / "m3.pt", 3)
    (imgs := tmp_path / "imgs").mkdir()
    write_tif(
        imgs / "sar.tif", np.random.default_rng(1).gamma(4, 100, (1, 64, 64)).astype(np.float32)
    )
    kw = dict(progress=False, predictor=pred)
    whole = annotate_folder(tmp_path / "m3.pt", imgs, tmp_path / "whole", **kw)
    tiled = annotate_folder(tmp_path / "m3.pt", imgs, tmp_path / "tiled", tile=64, overlap=16,
                            max_memory=pred.whole_bytes(64 * 64) - 1, **kw)  # fmt: skip
    assert not whole.skipped and not tiled.skipped
    assert (tmp_path / "tiled" / "tiles" / "sar.gpkg").is_file()  # the window path ran
    with rasterio.open(tmp_path / "whole" / "labels" / "sar.tif") as a:
        with rasterio.open(tmp_path / "tiled" / "labels" / "sar.tif") as b:
            la, lb = a.read(1), b.read(1)
    assert np.mean(la == lb) > 0.99 and 0 < np.mean(la == 255) < 1


def _tif_rgbx(path, fourth, nodata=None):
    """64 px RGB + a 4th band that GDAL tags alpha (photometric RGB, as many RGBN exports)."""
    rgb = np.random.default_rng(2).integers(40, 200, (3, 64, 64), dtype=np.uint8)
    rgb[:, :6, 20:] = 0  # a no-measurement block (nodata=0 in every data band)
    prof = dict(driver="GTiff", width=64, height=64, count=4, dtype="uint8", photometric="RGB")
    prof.update(crs="EPSG:32633", transform=Affine(1, 0, 0, 0, -1, 0), nodata=nodata)
    with rasterio.open(path, "w", **prof, alpha="YES") as ds:
        ds.write(np.concatenate([rgb, fourth[None]]))
    return path


@pytest.mark.parametrize("kind", ["nir", "alpha", "alpha+nodata"])
def test_alpha_band_rule_same_on_every_path(tmp_path, kind):
    """A 4th band tagged alpha is a mask only when it holds only 0 and 255 (else a NIR band: data,
    its dark pixels are measurements); the nodata tag counts in every data band. The whole-image
    reader, the training window reader, GDAL-mask window reads and annotate's window (scene)
    path give the same nodata pixels, and the same labels' 127 pixels."""
    from sam2elnet.data.tiling import overview_alpha
    from sam2elnet.data.validity import dataset_valid
    from sam2elnet.data.windowed_image import read_image_window, scan_image
    from sam2elnet.engine.infer import annotate_folder

    rng = np.random.default_rng(3)
    if kind == "nir":
        fourth = rng.integers(1, 254, (64, 64), dtype=np.uint8)
        fourth[:, :10] = 0  # dark water in NIR: data, not transparency
        want = np.zeros((64, 64), bool)
    else:
        fourth = np.full((64, 64), 255, np.uint8)
        fourth[:, :10] = 0  # transparent
        want = fourth == 0
        if kind == "alpha+nodata":
            want[:6, 20:] = True
    (imgs := tmp_path / "imgs").mkdir()
    p = _tif_rgbx(imgs / "x.tif", fourth, nodata=0 if kind == "alpha+nodata" else None)
    whole = read_image(p)
    assert whole.bands == (4 if kind == "nir" else 3)
    got = np.zeros((64, 64), bool) if whole.nodata is None else whole.nodata
    assert np.array_equal(got, want)
    win = read_image_window(scan_image(p), 0, 0, 64, 64)
    assert np.array_equal(np.zeros_like(want) if win.nodata is None else win.nodata, want)
    with rasterio.open(p) as src:
        assert overview_alpha(src) == (kind != "nir")
        assert np.array_equal(~dataset_valid(src, overview_alpha(src)), want)
    pred = _micro(tmp_path / "m.pt", whole.bands)
    kw = dict(progress=False, predictor=pred)
    annotate_folder(tmp_path / "m.pt", imgs, tmp_path / "whole", **kw)
    annotate_folder(tmp_path / "m.pt", imgs, tmp_path / "tiled", tile=64, overlap=16,
                    max_memory=pred.whole_bytes(64 * 64) - 1, **kw)  # fmt: skip
    assert (tmp_path / "tiled" / "tiles" / "x.gpkg").is_file()  # the window path ran
    for run in ("whole", "tiled"):
        with rasterio.open(tmp_path / run / "labels" / "x.tif") as ds:
            assert np.array_equal(ds.read(1) == 127, want), run


def test_internal_mask_band_is_nodata_on_both_paths(tmp_path):
    """A GeoTIFF with its own mask band (``gdal_translate -mask``, ``write_mask``): masked pixels
    are nodata for the whole-image reader as for the window path (GDAL's dataset mask)."""
    from sam2elnet.data.validity import dataset_valid

    p = tmp_path / "masked.tif"
    m = np.full((32, 32), 255, np.uint8)
    m[5:9, :] = 0
    prof = dict(driver="GTiff", width=32, height=32, count=3, dtype="uint8")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(p, "w", **prof) as ds:
        ds.write(np.random.default_rng(0).integers(1, 255, (3, 32, 32), dtype=np.uint8))
        ds.write_mask(m)
    img = read_image(p)
    assert img.nodata is not None and np.array_equal(img.nodata, m == 0)
    with rasterio.open(p) as src:
        assert np.array_equal(dataset_valid(src, False), m > 0)


def test_nan_pixels_are_nodata_labels_on_both_paths(tmp_path):
    """A float scene's NaN pixels (no nodata tag) are 127 in the label whole-image and on the
    window path alike (the window path's label writer applies the readers' rule, not only GDAL's
    dataset mask)."""
    from sam2elnet.engine.infer import annotate_folder

    d = np.random.default_rng(0).gamma(4, 100, (1, 64, 64)).astype(np.float32)
    d[:, :, :8] = np.nan
    write_tif(tmp_path / "imgs" / "sar.tif", d)
    pred = _micro(tmp_path / "m.pt", 1)
    kw = dict(progress=False, predictor=pred)
    annotate_folder(tmp_path / "m.pt", tmp_path / "imgs", tmp_path / "whole", **kw)
    annotate_folder(tmp_path / "m.pt", tmp_path / "imgs", tmp_path / "tiled", tile=64, overlap=16,
                    max_memory=pred.whole_bytes(64 * 64) - 1, **kw)  # fmt: skip
    assert (tmp_path / "tiled" / "tiles" / "sar.gpkg").is_file()  # the window path ran
    for run in ("whole", "tiled"):
        with rasterio.open(tmp_path / run / "labels" / "sar.tif") as ds:
            assert np.array_equal(ds.read(1) == 127, np.isnan(d[0])), run


def test_mixed_band_counts_in_training_data_name_the_remedy(tmp_path):
    """An RGBN GeoTIFF among RGB images (new-user pass, roads): the error said only that the
    band counts differ, not that ``elnet train --bands 1,2,3`` trains on both."""
    from sam2elnet.data.norm_fit import compute_stats

    rgb = write_png(tmp_path / "a.png", np.full((16, 16, 3), 90, np.uint8))
    rgbn = write_tif(tmp_path / "b.tif", np.full((4, 16, 16), 90, np.uint8))
    with pytest.raises(DataError) as err:
        compute_stats([rgb, rgbn], progress=False)
    assert "b.tif" in str(err.value) and "--bands 1,2,3" in str(err.value)
