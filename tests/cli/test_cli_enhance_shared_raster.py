"""``elnet enhance --images FOLDER --labels region.tif``: one georeferenced raster for all images
(a regional label, ``data.vector_shared.SharedRaster``) follows the rule of one vector file for
all images in that an image its footprint misses is not refused: with one warning per run and a
closing note naming the first few such images and counting the rest, it is predicted without a
coarse label, as ``elnet annotate`` predicts it (since 2026-12-05; before, from an empty coarse
label, which its quality.csv row and score took for a label a person drew empty:
tests/cli/test_cli_enhance_shared_raster_cover.py).

Was: one raster file for several images was refused ("one label file serves one image, but
--images holds 5 images"), and with one image or per-image labels an image the raster misses is
refused ("does not overlap the image at all"). A raster without georeference still serves one
image only; plain images cannot take a regional raster (placed by map position only).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import georef_tiles, micro_model_file, write_tif

os.environ.setdefault("SAM2ELNET_THREADS", "1")

N = 48  # px a side; 10 m pixels (480 m) from (x0 E, 4000000 N)
STARTS = {"a": 500000, "b": 510000, "c": 520000, "d": 530000, "e": 540000}
KIND = "images that the one coarse-label file does not touch"


def _images(folder: Path) -> dict[str, Path]:
    return georef_tiles(folder, STARTS, N, seed=7)


def _region(path: Path) -> Path:
    """24 x 24 px of 20 m (b's 480 m square, another grid), a 200 m box 100 m in: 20 x 20 of
    b's pixels."""
    data = np.zeros((1, 24, 24), np.uint8)
    data[:, 5:15, 5:15] = 255
    return write_tif(path, data, transform=Affine(20, 0, 510000, 0, -20, 4000000))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return micro_model_file(tmp_path_factory.mktemp("m") / "m.pt")


def _enhance(model: Path, images: Path, labels: Path, out: Path, *extra: str) -> int:
    from sam2elnet.cli import main

    return main(["enhance", "--model", str(model), "--images", str(images), "--labels",
                 str(labels), "--out", str(out), "--no-progress", "--precision", "32",
                 *extra])  # fmt: skip


def _lines(text: str, start: str, words: str = "") -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(start) and words in ln]


def _red_px(changes: Path) -> int:
    """Pixels of the change map's red band: the coarse label (kept or removed)."""
    import rasterio

    with rasterio.open(changes) as ds:
        return int((ds.read(1) > 0).sum())


def test_one_regional_raster_gives_the_images_it_misses_no_coarse_label(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = _images(tmp_path / "imgs")
    region = _region(tmp_path / "region.tif")
    out = tmp_path / "out"
    assert _enhance(model, tmp_path / "imgs", region, out) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert _lines(text, "warning:", "(one label file for all images)") == [
        f"warning: {imgs['a']}: {region} (one label file for all images) does not overlap this "
        "image, so it is predicted without a coarse label (as elnet annotate predicts it); if "
        "the file should cover it, check the label's CRS and georeference (gdalinfo)"
    ], text
    assert _lines(text, "note:", KIND) == [
        f"note: the warning above ({KIND}) applied to 4 images in all (a.tif, c.tif, d.tif "
        "(+1)); only the first was shown"
    ], text
    assert "skipping" not in text and not (out / "skipped.csv").exists(), text
    with open(out / "quality.csv", newline="") as fh:
        rows = {Path(r["image"]).stem: r for r in csv.DictReader(fh)}
    assert sorted(rows) == list(STARTS)
    # only b has a coarse label (and so change statistics and a change map)
    assert {k: r["coarse"] for k, r in rows.items()} == {
        "a": "", "b": str(region), "c": "", "d": "", "e": "",
    }  # fmt: skip
    assert {k for k, r in rows.items() if r["added_px"]} == {"b"}
    import rasterio

    for k in STARTS:
        with rasterio.open(out / "labels" / f"{k}.tif") as ds:
            assert ds.read(1).shape == (N, N), k
    # the coarse label b was enhanced from: its 20 x 20 px box
    assert {p.stem for p in (out / "changes").iterdir()} == {"b"}
    assert _red_px(out / "changes" / "b.tif") == 400


def test_one_vector_file_names_the_same_sample(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The closing note of a shared vector file names the first few images it misses too."""
    import geopandas as gpd
    from shapely.geometry import box

    _images(tmp_path / "imgs")
    gpkg = tmp_path / "region.gpkg"
    gpd.GeoDataFrame(geometry=[box(510100, 3999700, 510300, 3999900)], crs="EPSG:32633").to_file(
        gpkg
    )
    assert _enhance(model, tmp_path / "imgs", gpkg, tmp_path / "out") == 0
    text = capsys.readouterr().err
    assert _lines(text, "note:", KIND) == [
        f"note: the warning above ({KIND}) applied to 4 images in all (a.tif, c.tif, d.tif "
        "(+1)); only the first was shown"
    ], text


def test_a_raster_without_georeference_serves_one_image_only(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _images(tmp_path / "imgs")
    plain = write_tif(tmp_path / "plain.tif", np.zeros((1, N, N), np.uint8), georef=False)
    out = tmp_path / "out"
    assert _enhance(model, tmp_path / "imgs", plain, out) == 2
    assert _lines(capsys.readouterr().err, "error:") == [
        f"error: {plain}: has no georeference, so it is the label of one image, but --images "
        "holds 5 images; give a folder of labels named like the images, or one georeferenced "
        "GeoTIFF or GeoJSON/GPKG/SHP for all, as --labels"
    ]
    assert not out.exists()


def test_images_without_georeference_cannot_take_a_regional_raster(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain image among georeferenced ones is skipped with the reason (by pixel index the
    regional mask would stand on it as it is); none georeferenced: one error, no output."""
    imgs = _images(tmp_path / "imgs")
    rng = np.random.default_rng(3)
    plain = write_tif(imgs["a"], rng.integers(0, 255, (1, N, N), np.uint8), georef=False)
    region = _region(tmp_path / "region.tif")
    out = tmp_path / "out"
    assert _enhance(model, tmp_path / "imgs", region, out) == 0
    text = capsys.readouterr().err
    reason = (
        f"has no georeference (CRS + transform, or ground control points), so {region} (one "
        "label file for all images) cannot be placed on it by map position; georeference the "
        "image, or give a folder of labels named like the images"
    )
    assert _lines(text, "warning: skipping") == [f"warning: skipping {plain}: {reason}"], text
    assert reason in (out / "skipped.csv").read_text()
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["b.tif", "c.tif", "d.tif",
                                                                  "e.tif"]  # fmt: skip
    (one := tmp_path / "one").mkdir()
    for k in "ab":
        write_tif(one / f"{k}.tif", rng.integers(0, 255, (1, N, N), np.uint8), georef=False)
    assert _enhance(model, one, region, tmp_path / "out2") == 2
    assert _lines(capsys.readouterr().err, "error:") == [
        f"error: {region}: is one raster label for all images, placed on each by map position, "
        "but none of the 2 images has a georeference (CRS + transform, or ground control "
        "points); georeference them, or give a folder of labels named like the images"
    ]
    assert not (tmp_path / "out2").exists()
