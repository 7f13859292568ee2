"""docs/review.md's retraining step, walked: the reviewed masks `elnet import` wrote, with the
first labels, in one training folder.

Before, an image with both its first label (`2_mask.png`) and its reviewed mask (`2_sat.png`,
named by the import) stopped `elnet train` with a DataError, which the documented commands hit
whenever a reviewed image was one of the first labelled ones; now the reviewed mask (listed in
the import's record, copied along with `cp -a MASKS/. DEST/`) replaces the label, with a
warning. The import's summary ends with the train command, and the notes about images left
without a mask say what to do.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.data.layouts import discover
from sam2elnet.errors import DataError

H, W = 24, 28


def _first_labels(root: Path) -> Path:
    """SOS-named first labels: ``<id>_sat.jpg`` + ``<id>_mask.png`` for ids 1..3."""
    for i in (1, 2, 3):
        rgb = np.random.default_rng(i).integers(0, 255, (H, W, 3)).astype(np.uint8)
        Image.fromarray(rgb).save(root / f"{i}_sat.jpg")
        m = np.zeros((H, W), np.uint8)
        m[2:8, 2 : 2 + 3 * i] = 255
        Image.fromarray(m).save(root / f"{i}_mask.png")
    return root


def _reviewed(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """Image 2 reviewed (a COCO 1.0 file as CVAT exports it) and imported into reviewed/masks;
    returns the masks folder and the import's stdout."""
    coco = {
        "images": [{"id": 1, "file_name": "2_sat.jpg", "height": H, "width": W}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[10, 10, 20, 10, 20, 20, 10, 20]],
                "bbox": [10, 10, 10, 10],
            }
        ],  # fmt: skip
        "categories": [{"id": 1, "name": "oil spill"}],
    }
    f = tmp_path / "cvat" / "instances_default.json"
    f.parent.mkdir()
    f.write_text(json.dumps(coco))
    masks = tmp_path / "reviewed" / "masks"
    capsys.readouterr()
    rc = main(["import", str(f), "--from", "coco", "--images", str(data), "--out", str(masks),
               "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    return masks, out


def _images_masks(data: Path, root: Path) -> Path:
    """``root/images`` and ``root/masks`` with copies of the SOS-layout ``data``'s images and
    first labels (docs/review.md's two ``cp`` commands)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for f in data.glob("*_sat.jpg"):
        shutil.copy(f, root / "images")
    for f in data.glob("*_mask.png"):
        shutil.copy(f, root / "masks")
    return root


def test_reviewed_mask_replaces_the_first_label_in_training(tmp_path: Path, capsys, caplog):
    data = tmp_path / "DATA"
    data.mkdir()
    _first_labels(data)
    masks, out = _reviewed(tmp_path, data, capsys)
    assert (masks / "2_sat.png").is_file()

    # docs/review.md: the first labels and the reviewed masks in one folder
    train1 = _images_masks(data, tmp_path / "train1")
    shutil.copytree(masks, train1 / "masks", dirs_exist_ok=True)  # cp -a masks/. train1/masks/
    with caplog.at_level(logging.WARNING):
        index = discover(train1)
    pairs = {s.id: s.mask.name for s in index.samples}
    assert pairs == {"1": "1_mask.png", "2": "2_sat.png", "3": "3_mask.png"}
    assert "2_sat.png for 2_mask.png" in caplog.text, caplog.text

    # copied without the import's record: which one is reviewed is unknown, one error says how
    (train1 / "masks" / ".elnet-import.json").unlink()
    with pytest.raises(DataError, match="2_mask.png and 2_sat.png.*cp -a"):
        discover(train1)


def test_import_summary_ends_with_the_train_command(tmp_path: Path, capsys) -> None:
    data = tmp_path / "DATA"
    data.mkdir()
    _first_labels(data)
    masks, out = _reviewed(tmp_path, data, capsys)
    last = out.strip().splitlines()[-1]
    reviewed = tmp_path / "reviewed"
    assert last.startswith(f"next: copy the images to {reviewed / 'images'}"), last
    assert f"elnet train --data {reviewed} --out RUN --init-model MODEL.pt" in last, last
    # the command as given trains on what it names: images copied, the pairs are found
    (reviewed / "images").mkdir()
    shutil.copy(data / "2_sat.jpg", reviewed / "images")
    assert [s.mask.name for s in discover(reviewed).samples] == ["2_sat.png"]
    # imported again with the images in place: the train command alone
    capsys.readouterr()
    rc = main(["import", str(tmp_path / "cvat" / "instances_default.json"), "--from", "coco",
               "--images", str(data), "--out", str(masks), "--no-progress"])  # fmt: skip
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert rc == 0 and last.startswith(f"next: elnet train --data {reviewed} --out RUN"), last


def test_unpaired_warning_at_train_time_says_what_to_do(tmp_path: Path, caplog) -> None:
    data = _first_labels(tmp_path)
    (tmp_path / "3_mask.png").unlink()  # image 3 not labelled (not reviewed yet)
    root = _images_masks(data, tmp_path / "flat")
    with caplog.at_level(logging.WARNING):
        discover(root)
    assert "1 file under" in caplog.text and "is left out" in caplog.text, caplog.text
    assert "give it a label named like it" in caplog.text, caplog.text
