"""annotate / enhance on GeoTIFFs georeferenced by ground control points only (Sentinel-1 GRD),
predicted whole, kept the GCPs in their labels without a word, while ``elnet scene`` and images
predicted window by window warned so and named ``--warp-to``. Whole images now warn with the
same text (:func:`sam2elnet.engine.scene_inputs.gcps_kept_note`), once per run, the other images
counted in one closing line; nothing is said with ``--warp-to``, on the window-by-window path
neither (it warned that the outputs keep the GCPs, then warped them). GCPs that cannot place the
image (fewer than 3) got no word at all; they now get ``elnet scene``'s warning
(:func:`sam2elnet.engine.scene_inputs.unplaceable_gcps_note`), once per run too."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
import rasterio
from helpers_data import micro_model_file
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from sam2elnet.engine.scene_inputs import GCPS_KEPT_KIND, gcps_kept_note

H, W = 48, 64


def _gcp_tif(path: Path, seed: int, n: int = 9) -> Path:
    """A uint16 SAR-like GeoTIFF with ``n`` (at most 9) GCPs in EPSG:4326, no CRS and no
    transform."""
    gcps = [GroundControlPoint(row=r, col=c, x=28.0 + 0.001 * c + 0.0002 * r,
                               y=43.0 - 0.0009 * r, z=0.0)
            for r in (0, H // 2, H) for c in (0, W // 2, W)][:n]  # fmt: skip
    data = np.random.default_rng(seed).gamma(4, 100, (1, H, W)).astype(np.uint16)
    prof = dict(driver="GTiff", width=W, height=H, count=1, dtype="uint16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **prof) as ds:
            ds.write(data)
            ds.gcps = (gcps, CRS.from_epsg(4326))
    return path


@pytest.fixture
def grd(tmp_path: Path) -> tuple[Path, Path]:
    """(model file, folder of three GCP-only GeoTIFFs and one on a UTM grid)."""
    from affine import Affine

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    for i in range(3):
        _gcp_tif(imgs / f"g{i}.tif", i)
    prof = dict(driver="GTiff", width=W, height=H, count=1, dtype="uint16", crs="EPSG:32633",
                transform=Affine(10, 0, 500000, 0, -10, 4000000))  # fmt: skip
    with rasterio.open(imgs / "utm.tif", "w", **prof) as ds:
        ds.write(np.full((1, H, W), 300, np.uint16))
    return model, imgs


def _gcp_lines(text: str) -> list[str]:
    """The warnings (not the closing count) that outputs keep the GCPs."""
    return [line for line in text.splitlines() if "GeoTIFFs keep the GCPs" in line]


def test_annotate_warns_once_that_whole_images_keep_their_gcps(
    grd: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    model, imgs = grd
    base = ["annotate", "--model", str(model), "--images", str(imgs), "--no-progress",
            "--precision", "32"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "keep")]) == 0
    err = capsys.readouterr().err
    lines = _gcp_lines(err)
    notes = [f"warning: {gcps_kept_note(imgs / f'g{i}.tif', 9, 'EPSG:4326')}" for i in range(3)]
    assert len(lines) == 1 and lines[0] in notes, err
    assert "--warp-to utm" in lines[0] and "tile footprints" not in lines[0]
    assert f"({GCPS_KEPT_KIND}) applied to 3 images in all" in err, err
    with rasterio.open(tmp_path / "keep" / "labels" / "g0.tif") as ds:  # what it says
        assert ds.crs is None and len(ds.gcps[0]) == 9
    # --warp-to: the labels are warped onto a map grid, nothing to warn of
    assert main([*base, "--out", str(tmp_path / "warp"), "--warp-to", "EPSG:4326"]) == 0
    err = capsys.readouterr().err
    assert _gcp_lines(err) == [] and GCPS_KEPT_KIND not in err, err


def test_enhance_and_the_window_path_share_the_warning(
    grd: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sam2elnet.engine.infer import annotate_folder, enhance_folder
    from sam2elnet.engine.predictor import Predictor

    model, imgs = grd
    (coarse := tmp_path / "coarse").mkdir()
    c = np.zeros((H, W), np.uint8)
    c[10:30, 20:40] = 255
    from PIL import Image

    for name in ("g0", "g1", "g2", "utm"):
        Image.fromarray(c).save(coarse / f"{name}.png")
    kw = dict(progress=False, precision="32")
    with caplog.at_level("WARNING"):
        enhance_folder(model, imgs, coarse, tmp_path / "enh", **kw)
    assert len(_gcp_lines(caplog.text)) == 1, caplog.text
    # window by window (every image over the memory budget): one warning, with the footprints
    pred = Predictor.from_file(model, precision="32")
    tiled = dict(predictor=pred, tile=32, overlap=8, max_memory=pred.whole_bytes(32 * 32), **kw)
    caplog.clear()
    with caplog.at_level("WARNING"):
        r = annotate_folder(model, imgs, tmp_path / "tiled", **tiled)
    assert (tmp_path / "tiled" / "tiles" / "g0.gpkg").is_file() and not r.skipped
    lines = _gcp_lines(caplog.text)
    assert len(lines) == 1 and "tile footprints are in EPSG:4326" in lines[0], caplog.text
    # and none when its outputs are warped (it said they keep the GCPs, then warped them)
    caplog.clear()
    with caplog.at_level("WARNING"):
        annotate_folder(model, imgs, tmp_path / "tw", warp_to="EPSG:4326", **tiled)
    assert _gcp_lines(caplog.text) == [], caplog.text
    with rasterio.open(tmp_path / "tw" / "labels" / "g0.tif") as ds:
        assert ds.crs == CRS.from_epsg(4326) and ds.gcps[0] == []


def test_annotate_warns_once_that_too_few_gcps_place_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two GeoTIFFs with 2 GCPs each (a CRS, no transform): one warning naming the first file,
    why it has no usable georeference and what to do, the other counted; the labels are written
    as said (the 2 GCPs copied, no CRS)."""
    from sam2elnet.cli import main

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    for i in range(2):
        _gcp_tif(imgs / f"two{i}.tif", i, n=2)
    with rasterio.open(imgs / "two0.tif") as ds:
        assert ds.crs is None and len(ds.gcps[0]) == 2
    out = tmp_path / "out"
    argv = ["annotate", "--model", str(model), "--images", str(imgs), "--out", str(out),
            "--no-progress", "--precision", "32"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "no usable georeference" in line]
    said = [
        f"warning: {imgs / name} has no usable georeference (2 ground control points < 3; "
        "placing it needs at least 3 GCPs with a CRS): it is used as an image without a CRS: "
        "its labels are in pixel coordinates (the output GeoTIFFs copy its GCPs as they are). "
        "For outputs on a map, georeference it with at least 3 GCPs and their CRS (QGIS "
        "georeferencer, or gdal_translate -a_srs EPSG:4326 -gcp ...) and run again"
        for name in ("two0.tif", "two1.tif")
    ]
    assert len(lines) == 1 and lines[0] in said, err
    from sam2elnet.engine.scene_inputs import UNPLACEABLE_GCPS_KIND

    assert f"({UNPLACEABLE_GCPS_KIND}) applied to 2 images in all" in err, err
    assert _gcp_lines(err) == [], err  # not the warning of GCPs that place it
    with rasterio.open(out / "labels" / "two0.tif") as ds:  # what it says
        assert ds.crs is None and len(ds.gcps[0]) == 2
