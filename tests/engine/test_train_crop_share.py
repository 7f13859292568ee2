"""``elnet train`` on whole scenes says that each epoch sees one crop of each.

A fresh-user trial trained on two 2200 x 1800 px GeoTIFF scenes with 128 px crops: each epoch
took one crop per scene (0.4 % of it), validation scored each scene's centred crop only, and
nothing said so. The line of :func:`sam2elnet.engine.train_setup.crop_share_note`, said before
training, now does when the median image is at least 64 crops, and names what to do; chips of
a few crops get no such line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers_data import write_png, write_tif

from sam2elnet.engine.train_setup import crop_share_note


def test_whole_scenes_get_the_line_with_the_share_seen(tmp_path: Path) -> None:
    scenes = [
        write_tif(tmp_path / f"s{i}.tif", np.zeros((1, 2200, 1800), np.uint8), tiled=True)
        for i in range(2)
    ]
    line = crop_share_note(scenes, 128)
    assert line == (
        "2 training images are large for 128 px crops (median 4.0 Mpx, 242 crops): each epoch "
        "takes one random 128 px crop per image, about 0.4 % of its pixels, and validation "
        "scores each image's centred crop only; cut the scenes into chips (`elnet export "
        "--labels MASKS --images SCENES --format coco --out chips/coco.json --chips chips "
        "--chip-size 256`, then --data chips) or raise --epochs"
    )


def test_chips_follow_the_crop_and_small_images_get_no_line(tmp_path: Path) -> None:
    """Found in a user trial: the README's first try (256 px SOS images, ``--image-size 64``,
    16 crops each) was told to cut them into 512 px chips, larger than the images. Such chips of
    a few crops now get no line; whole scenes are told chips of 2 x 2 crops."""
    sos = [write_png(tmp_path / f"sos{i}.png", np.zeros((256, 256), np.uint8)) for i in range(3)]
    assert crop_share_note(sos, 64) is None
    scene = [write_tif(tmp_path / "scene.tif", np.zeros((1, 5000, 5000), np.uint8), tiled=True)]
    assert crop_share_note(scene, 256) == (
        "1 training image is large for 256 px crops (median 25.0 Mpx, 381 crops): each epoch "
        "takes one random 256 px crop per image, about 0.3 % of its pixels, and validation "
        "scores each image's centred crop only; cut the scenes into chips (`elnet export "
        "--labels MASKS --images SCENES --format coco --out chips/coco.json --chips chips "
        "--chip-size 512`, then --data chips) or raise --epochs"
    )
    assert "--chip-size 64`" in crop_share_note(scene, 32)


def test_chips_and_small_images_get_no_line(tmp_path: Path) -> None:
    chips = [write_png(tmp_path / f"c{i}.png", np.zeros((256, 256), np.uint8)) for i in range(3)]
    assert crop_share_note(chips, 128) is None  # 4 crops each
    big_png = [write_png(tmp_path / "big.png", np.zeros((1100, 1100), np.uint8))]
    assert crop_share_note(big_png, 128).startswith("1 training image is large for 128 px")
    assert crop_share_note([], 128) is None


def test_float_or_multiband_scenes_are_not_sent_to_8bit_chips(tmp_path: Path) -> None:
    """``elnet export --chips`` stretches other dtypes to 8 bits and keeps at most three bands:
    a dB or 4-band scene is told to cut chips with a tool that keeps both."""
    db = write_tif(tmp_path / "db.tif", np.zeros((1, 2200, 1800), np.float32), tiled=True)
    four = write_tif(tmp_path / "ms.tif", np.zeros((4, 2200, 1800), np.uint16), tiled=True)
    for scenes in ([db], [four]):
        line = crop_share_note(scenes, 128)
        assert "keeps their bands and data type, e.g. `gdal_retile.py -ps 256 256" in line
        assert "--format coco" not in line


def test_an_image_pil_calls_a_decompression_bomb_is_of_unknown_size(tmp_path: Path) -> None:
    """PIL refuses to open an image over twice ``Image.MAX_IMAGE_PIXELS`` (about 179 Mpx) with
    ``DecompressionBombError``, which is no ``OSError``: the note raised it before training.
    Such an image is now of unknown size to the note (a limit lowered to 1000 px stands in for
    a huge scene); the images PIL does read still make the line."""
    from PIL import Image

    bomb = write_png(tmp_path / "bomb.png", np.zeros((600, 600), np.uint8))  # 360000 px
    small = write_png(tmp_path / "small.png", np.zeros((40, 40), np.uint8))  # 1600 px
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000
    try:
        assert crop_share_note([bomb], 128) is None
        assert crop_share_note([bomb, small], 4).startswith(
            "2 training images are large for 4 px crops (median 0.0 Mpx, 100 crops)"
        )
    finally:
        Image.MAX_IMAGE_PIXELS = limit
