"""One vector label file for every image (``enhance --labels FILE.geojson`` with a folder of
images, ``scene --labels FILE`` with a folder of scenes) that cannot be read is one ``error:``
line naming it, exit 2, before the model loads and with nothing written. Before, every image
read it again and failed with the same message: one warning per image, then the closing error
listing it once more ("3 x FILE: cannot read vector labels ...")."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import grey_rgb, write_png, write_tif

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    p = tmp_path / "model.pt"
    p.write_bytes(b"never read: the label file is refused first")
    return p


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json at all", "cannot read vector labels"),
        ('{"type": "FeatureCollection", "features": []}', "has no features"),
    ],
)
@pytest.mark.parametrize("cmd", ["enhance", "scene"])
def test_one_unreadable_label_file_for_all_images_is_one_error(
    tmp_path: Path,
    model: Path,
    capsys: pytest.CaptureFixture[str],
    cmd: str,
    content: str,
    says: str,
) -> None:
    images = tmp_path / "images"
    for i in range(3):
        if cmd == "enhance":
            write_png(images / f"a{i}.png", grey_rgb(32, i))
        else:
            write_tif(images / f"a{i}.tif", np.full((1, 32, 32), 50 + i, np.uint8))
    labels = tmp_path / "coarse.geojson"
    labels.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    flag = "--images" if cmd == "enhance" else "--image"
    capsys.readouterr()
    rc = main([cmd, "--model", str(model), flag, str(images), "--labels", str(labels),
               "--out", str(out), "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2, captured
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {labels}: ") and says in err[0], err
    assert not out.exists()
