"""``elnet enhance --report`` with a georeferenced raster coarse label on another grid: each card's
"input label" is the coarse label placed on the image's grid, as enhance placed it for the
prediction (:func:`sam2elnet.data.masks.read_mask_on_grid`), not the raster on its own grid.

Was: the card read the raster as it is (its own size, extent and resolution), so a regional
GeoTIFF covering a folder of images (or one image's label on a coarser grid) was drawn stretched
over every image, also over an image it misses (predicted without a coarse label: its card has
no input-label layer).
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import georef_tiles, micro_model_file, write_tif

os.environ.setdefault("SAM2ELNET_THREADS", "1")

N = 48  # px a side, 10 m pixels: a at 500000 E, b right of it, c 10 km away
STARTS = {"a": 500000, "b": 500480, "c": 510000}


def _images(folder: Path) -> dict[str, Path]:
    return georef_tiles(folder, STARTS, N, seed=5)


def _region(path: Path) -> Path:
    """24 x 24 px of 20 m from (500240 E, 4000000 N), another grid than the images; its box
    (rows 2:10, cols 4:20) spans 500320-500640 E, 3999800-3999960 N: rows 4:20 of a (cols
    32:48) and of b (cols 0:16), nothing of c."""
    data = np.zeros((1, 24, 24), np.uint8)
    data[:, 2:10, 4:20] = 255
    return write_tif(path, data, transform=Affine(20, 0, 500240, 0, -20, 4000000))


def _placed(key: str) -> np.ndarray:
    """The box on image ``key``'s grid, bool (N, N)."""
    out = np.zeros((N, N), bool)
    if key == "a":
        out[4:20, 32:48] = True
    elif key == "b":
        out[4:20, 0:16] = True
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return micro_model_file(tmp_path_factory.mktemp("m") / "m.pt")


def _enhance(model: Path, images: Path, labels: Path, out: Path) -> int:
    from sam2elnet.cli import main

    return main(["enhance", "--model", str(model), "--images", str(images), "--labels",
                 str(labels), "--out", str(out), "--no-progress", "--precision", "32",
                 "--report"])  # fmt: skip


def _input_cards(page: Path) -> dict[str, np.ndarray]:
    """Card name -> the pixels its "input label" layer draws (bool, from the PNG data URI), for
    the cards that have one."""
    from PIL import Image

    html = page.read_text(encoding="utf-8")
    cards = {}
    for block in html.split('<div class="card ')[1:]:
        name = re.search(r'<span class="nm">([^<]*)</span>', block)
        src = re.search(r'data-layer="input" src="data:image/png;base64,([^"]+)"', block)
        assert name is not None, block[:300]
        if src is None:  # no input label
            continue
        rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.group(1)))).convert("RGBA"))
        cards[name.group(1)] = rgba[..., 3] > 0
    return cards


def test_a_regional_raster_is_drawn_on_each_card_where_enhance_placed_it(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _images(tmp_path / "imgs")
    region = _region(tmp_path / "region.tif")
    out = tmp_path / "out"
    assert _enhance(model, tmp_path / "imgs", region, out) == 0
    said = capsys.readouterr().err.splitlines()  # the run's placement warnings, not the report's
    assert [ln.split(":")[0] for ln in said if str(region) in ln] == ["warning", "warning"], said
    cards = _input_cards(out / "report.html")
    assert sorted(cards) == ["a", "b"]  # c: the raster misses it, predicted without one
    for k in "ab":
        assert cards[k].shape == (N, N), k
        np.testing.assert_array_equal(cards[k], _placed(k), err_msg=k)


def test_one_images_own_raster_on_a_coarser_grid_is_drawn_on_its_grid(
    tmp_path: Path, model: Path
) -> None:
    """One image with its own label raster on another grid (placed by map position, not
    refused): the card shows it on the image's pixels."""
    imgs = _images(tmp_path / "all")
    (one := tmp_path / "imgs").mkdir()
    imgs["a"].rename(one / "a.tif")
    region = _region(tmp_path / "labels" / "a.tif")
    out = tmp_path / "out"
    assert _enhance(model, one, region.parent, out) == 0
    cards = _input_cards(out / "report.html")
    assert list(cards) == ["a"]
    np.testing.assert_array_equal(cards["a"], _placed("a"))
