"""`elnet import --out` pointed at the folder of the images (no --images to compare it with).

The error called the images "mask files" (``--out holds 2 mask files that no earlier elnet
import wrote``) and said nothing of the likely cause; with PNG images named like the masks the
import even overwrote the images with their masks, silently. Now: one ``error:`` line saying
``--out`` is the images' folder, naming the files; nothing written or replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_png
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.data.naming import IMPORT_RECORD

H, W = 32, 40


def _coco(tmp_path: Path, names: list[str]) -> Path:
    """A COCO file: one box per image (rows 4-12, columns 5-20)."""
    coco = {
        "images": [
            {"id": i, "file_name": n, "height": H, "width": W} for i, n in enumerate(names, 1)
        ],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "segmentation": [],
             "area": 120, "bbox": [5, 4, 15, 8]}
            for i in range(1, len(names) + 1)
        ],
        "categories": [{"id": 1, "name": "oil spill"}],
    }  # fmt: skip
    p = tmp_path / "coco.json"
    p.write_text(json.dumps(coco))
    return p


def _image(seed: int) -> np.ndarray:
    """A continuous grey image (SAR-like speckle), not a mask."""
    return np.random.default_rng(seed).integers(20, 230, (H, W)).astype(np.uint8)


def _import(capsys: pytest.CaptureFixture[str], export: Path, out: Path) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["import", str(export), "--from", "coco", "--out", str(out), "--no-progress"])
    return rc, capsys.readouterr().err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


def test_out_holding_the_jpeg_images_is_named_the_images_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = tmp_path / "images"
    imgs.mkdir()
    for i, n in enumerate(("a", "b", "c")):
        Image.fromarray(_image(i)).save(imgs / f"{n}.jpg")
    before = _snapshot(imgs)
    rc, err = _import(capsys, _coco(tmp_path, ["a.jpg", "b.jpg", "c.jpg"]), imgs)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.strip() == (
        f"error: {imgs}: --out holds 3 files (.jpg) that no earlier elnet import wrote, 3 named "
        "like this import's masks (a.jpg for mask a.png, b.jpg for mask b.png, c.jpg for mask "
        "c.png): --out is the folder of the images; nothing written: give --out a folder of its "
        "own for the masks (e.g. a masks/ next to images/)"
    )
    assert "mask files" not in err
    assert _snapshot(imgs) == before  # no mask, no manifest, no temporary folder


def test_png_images_in_out_are_never_overwritten_by_their_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a.png (the image) was replaced by the mask a.png, without a word."""
    imgs = tmp_path / "images"
    for i, n in enumerate(("a", "b")):
        write_png(imgs / f"{n}.png", _image(i))
    before = _snapshot(imgs)
    rc, err = _import(capsys, _coco(tmp_path, ["a.png", "b.png"]), imgs)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    line = err.strip()
    assert line.startswith(f"error: {imgs}: --out holds a.png, an image (continuous greys, ")
    assert line.endswith(
        "that this import's mask a.png would replace: --out is the folder of the images; "
        "nothing written: give --out a folder of its own for the masks (e.g. a masks/ next to "
        "images/)"
    )
    assert _snapshot(imgs) == before


def test_other_files_in_out_are_named_by_kind_and_a_premanifest_mask_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "masks"
    hand = np.zeros((H, W), np.uint8)
    hand[:4, :4] = 255
    write_png(out / "hand.png", hand)
    Image.fromarray(_image(3)).save(out / "scene.jpg")
    export = _coco(tmp_path, ["a.png"])
    rc, err = _import(capsys, export, out)
    assert rc == 2 and err.strip() == (
        f"error: {out}: --out holds 2 files (.jpg/.png) that no earlier elnet import wrote and "
        "this one does not replace (hand.png, scene.jpg): images, or masks made elsewhere; "
        "nothing written: move them away or give --out a new folder, so it holds only this "
        "import's masks"
    )
    (out / "hand.png").unlink()
    (out / "scene.jpg").unlink()
    # a mask of an import made before the manifest existed (0/255, no record): replaced
    write_png(out / "a.png", hand)
    rc, err = _import(capsys, export, out)
    assert rc == 0, err
    want = np.zeros((H, W), np.uint8)
    want[4:12, 5:20] = 255
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), want)
    assert sorted(f.name for f in out.iterdir()) == [IMPORT_RECORD, "a.png"]
