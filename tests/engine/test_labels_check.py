"""``enhance --labels``: a folder of images given as labels is refused, real masks never are.

Review finding: the check (``engine.folder_inputs.check_labels_not_images``) refused palette PNG
masks (VOC style: class 1 drawn in colour, read as 3 differing bands) and let through a uint16
SAR GeoTIFF, a float dB GeoTIFF and dark or low-contrast SAR JPEGs (sos-dev ``20919_sat.jpg``:
61 grey levels, the old rule needed more than 64)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import write_tif
from PIL import Image

from sam2elnet.data.masks import image_like_label, read_mask
from sam2elnet.engine.folder_inputs import check_labels_not_images
from sam2elnet.errors import UserError

SIZE = 64


def _blob() -> np.ndarray:
    """A 0/255 uint8 mask: an ellipse and a 3 px line."""
    m = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(m, (SIZE // 2, SIZE // 2), (SIZE // 3, SIZE // 5), 30, 0, 360, 255, -1)
    cv2.line(m, (0, 5), (SIZE, SIZE // 2), 255, 3)
    return m


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _png(p: Path, a: np.ndarray) -> None:
    assert cv2.imwrite(str(p), a)


def _jpg(p: Path, a: np.ndarray, q: int = 50) -> None:
    assert cv2.imwrite(str(p), a, [cv2.IMWRITE_JPEG_QUALITY, q])


def _palette(p: Path, idx: np.ndarray) -> None:
    im = Image.fromarray(idx.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (768 - 9))  # VOC: class 1 dark red
    im.save(p)


def _pil_rgb_jpeg(p: Path, a: np.ndarray) -> None:
    """An RGB JPEG from another encoder (PIL, 4:2:0 chroma), with channels a few levels apart
    at the edges, as masks exported by image editors are."""
    rgb = np.dstack([a, a, a]).astype(np.int16)
    edge = cv2.morphologyEx(a, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    rgb[edge, 0] += 12
    rgb[edge, 2] -= 6
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(p, quality=85, subsampling=2)


def _sar(scale: float = 30.0, shape: float = 3.0) -> np.ndarray:
    return _rng().gamma(shape, scale, (SIZE, SIZE)).clip(0, 255).astype(np.uint8)


MASKS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "sos_png_0_255": (".png", lambda p: _png(p, _blob())),
    "png_0_1": (".png", lambda p: _png(p, _blob() // 255)),
    "jpeg_grey_q50": (".jpg", lambda p: _jpg(p, _blob())),
    "jpeg_rgb_q30": (".jpg", lambda p: _jpg(p, np.dstack([_blob()] * 3), 30)),
    "jpeg_rgb_other_encoder": (".jpg", lambda p: _pil_rgb_jpeg(p, _blob())),
    "jpeg_greys_0_237_noisy": (
        ".jpg",
        lambda p: _jpg(
            p, ((_blob() > 0) * 230 + _rng().integers(0, 8, (SIZE, SIZE))).astype(np.uint8), 70
        ),
    ),  # fmt: skip
    "geotiff_uint8_0_1_nodata_255": (
        ".tif",
        lambda p: write_tif(
            p,
            np.where(np.arange(SIZE) < 40, _blob() // 255, 255).astype(np.uint8)[None],
            nodata=255,
            georef=False,
        ),
    ),  # fmt: skip
    "geotiff_uint8_0_255_nodata_0": (
        ".tif",
        lambda p: write_tif(p, _blob()[None], nodata=0, georef=False),
    ),
    "palette_png_voc": (".png", lambda p: _palette(p, _blob() // 255)),
    "palette_png_classes": (
        ".png",
        lambda p: _palette(p, (_blob() // 255) + (np.arange(SIZE)[:, None] > 48)),
    ),
    "rgb_png_identical": (".png", lambda p: _png(p, np.dstack([_blob()] * 3))),
    "png_project_0_127_255": (
        ".png",
        lambda p: _png(p, np.where(np.arange(SIZE) < 50, _blob(), 127).astype(np.uint8)),
    ),
    "png_class_ids_0_1_2": (
        ".png",
        lambda p: _png(
            p, ((_blob() // 255) + 2 * (np.arange(SIZE)[:, None] > 40)).astype(np.uint8)
        ),
    ),  # fmt: skip
    "geotiff_uint16_0_1000": (
        ".tif",
        lambda p: write_tif(p, (_blob() > 0).astype(np.uint16)[None] * 1000, georef=False),
    ),
    "geotiff_float_probabilities": (
        ".tif",
        lambda p: write_tif(
            p, cv2.GaussianBlur(_blob().astype(np.float32) / 255, (9, 9), 3)[None], georef=False
        ),
    ),
    "png_empty": (".png", lambda p: _png(p, np.zeros((SIZE, SIZE), np.uint8))),
    "png_full": (".png", lambda p: _png(p, np.full((SIZE, SIZE), 255, np.uint8))),
}

IMAGES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "sar_jpeg_grey": (".jpg", lambda p: _jpg(p, _sar(), 90), "continuous greys, "),
    "sar_jpeg_grey_as_rgb": (
        ".jpg",
        lambda p: _jpg(p, np.dstack([_sar()] * 3), 90),
        "continuous greys, ",
    ),  # fmt: skip
    "sar_jpeg_dark_sea": (".jpg", lambda p: _jpg(p, _sar(6.0, 2.0), 90), "continuous greys, "),
    "sar_jpeg_low_contrast": (  # like sos-dev 20919_sat.jpg: 28..60, about 30 grey levels
        ".jpg",
        lambda p: _jpg(p, (28 + _rng().binomial(32, 0.3, (SIZE, SIZE))).astype(np.uint8), 95),
        "continuous greys, ",
    ),  # fmt: skip
    "rgb_photo": (
        ".png",
        lambda p: _png(
            p,
            cv2.GaussianBlur(_rng().integers(0, 255, (SIZE, SIZE, 3)).astype(np.uint8), (5, 5), 2),
        ),
        "3 bands that differ, a colour image",
    ),  # fmt: skip
    "geotiff_uint16_sar_dn": (
        ".tif",
        lambda p: write_tif(
            p,
            np.minimum(_rng().gamma(1.5, 400.0, (1, SIZE, SIZE)), 60000).astype(np.uint16),
            georef=False,
        ),
        "continuous uint16 values, ",
    ),  # fmt: skip
    "geotiff_uint16_rgbn": (
        ".tif",
        lambda p: write_tif(
            p, _rng().integers(200, 4000, (4, SIZE, SIZE)).astype(np.uint16), georef=False
        ),
        "4 bands that differ, a colour image",
    ),  # fmt: skip
    "geotiff_float_db": (
        ".tif",
        lambda p: write_tif(
            p, _rng().normal(-15, 4, (1, SIZE, SIZE)).astype(np.float32), georef=False
        ),
        "continuous float32 values, ",
    ),  # fmt: skip
}


def _folders(tmp_path: Path, suffix: str, make: Callable[[Path], None]) -> tuple[Path, Path]:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    _png(images / "a.png", _sar())
    make(labels / f"a{suffix}")
    return images, labels


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("case", sorted(MASKS))
def test_masks_are_labels(tmp_path: Path, case: str) -> None:
    suffix, make = MASKS[case]
    images, labels = _folders(tmp_path, suffix, make)
    label = labels / f"a{suffix}"
    assert image_like_label(label) == ""
    check_labels_not_images({images / "a.png": label}, labels)  # not refused
    if case != "png_class_ids_0_1_2":  # a class-index mask needs --positive-values
        assert read_mask(label).shape == (SIZE, SIZE)  # and the label reader reads it


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("case", sorted(IMAGES))
def test_images_given_as_labels_are_refused(tmp_path: Path, case: str) -> None:
    suffix, make, why = IMAGES[case]
    images, labels = _folders(tmp_path, suffix, make)
    with pytest.raises(UserError) as err:
        check_labels_not_images({images / "a.png": labels / f"a{suffix}"}, labels)
    msg = str(err.value)
    assert msg.startswith(f"{labels}: holds images, not coarse labels (a{suffix}: {why}"), msg
    assert msg.endswith("or one vector file") and "\n" not in msg


def test_real_masks_are_labels_and_real_images_are_not(shared_data: Path) -> None:
    """Every sos-dev mask and roads-dev mask can be a label; every sos-dev SAR JPEG and roads-dev
    RGBA photo is an image (the old rule let sos-dev 20919_sat.jpg, 61 grey levels, through)."""
    sos, roads = shared_data / "sos-dev" / "train", shared_data / "roads-dev"
    if not sos.is_dir() or not roads.is_dir():
        pytest.skip("sos-dev / roads-dev not present")
    masks = sorted(sos.glob("*/*_mask.png")) + sorted((roads / "masks").glob("*.png"))
    photos = sorted(sos.glob("*/*_sat.jpg")) + sorted((roads / "images").glob("*.png"))
    assert len(masks) == len(photos) == 460
    assert [m.name for m in masks if image_like_label(m)] == []
    assert [p.name for p in photos if not image_like_label(p)] == []
