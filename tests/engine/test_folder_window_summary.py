"""A folder job sums up the images it predicts window by window in one line.

Found in review: with a small ``--max-memory`` every image of ``elnet annotate --no-progress``
went window by window and printed its own closing window line (``a.png: 4/4 win in 0.1 s (51.57
win/s)``), one per image: hundreds of lines for a folder of hundreds of large images. The job now
prints one line for them all (``annotate window by window: 3 images too large to predict whole
within --max-memory 2.00 MB, 12 windows of up to 64 px (--tile 64) in 0.4 s``); each image's line
is at DEBUG.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_data import grey_rgb, micro_model_file, write_png

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def test_three_large_images_give_one_window_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    for n in "abc":  # 96 px: window by window at --max-memory 2M, 4 windows of 64 px each
        write_png(images / f"{n}.png", grey_rgb(96, 1))
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    capsys.readouterr()
    rc = main(["annotate", "--model", str(model), "--images", str(images), "--out",
               str(tmp_path / "out"), "--max-memory", "2M", "--tile", "64", "--overlap", "32",
               "--no-progress"])  # fmt: skip
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert rc == 0, text
    assert not [ln for ln in text.splitlines() if " win in " in ln], text  # no line per image
    lines = [ln for ln in text.splitlines() if "window by window" in ln]
    assert len(lines) == 1, text
    assert lines[0].startswith(
        "annotate window by window: 3 images too large to predict whole within --max-memory "
        "2.00 MB, 12 windows of up to 64 px (--tile 64) in "
    ), text
