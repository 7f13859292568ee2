"""--no-progress: long commands still print one line per epoch / stage / half minute."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import write_png, write_tif
from test_train import trained_run

from sam2elnet.utils.progress import LOGGER_NAME, ProgressLines, progress_bar


def test_progress_lines_periodic_and_final(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        bar = progress_bar(3, "annotate", "img", enabled=False, every_s=0.0)
        assert isinstance(bar, ProgressLines)
        bar.update(1)
        bar.set_postfix(kept=1, skipped=0)
        bar.update(1)
        bar.update(1)  # the last item: only the final line
        bar.close()
        bar.close()  # idempotent
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(msgs) == 3
    assert msgs[0].startswith("annotate: 1/3 img after ")
    assert msgs[1].startswith("annotate: 2/3 img after ") and msgs[1].endswith("kept 1, skipped 0")
    assert msgs[2].startswith("annotate: 3/3 img in ") and "img/s" in msgs[2]
    quiet = progress_bar(5, "x", enabled=False)  # default: a line every 30 s, so none here
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        caplog.clear()
        quiet.update(2)
    assert not caplog.records


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    """The shared micro model, trained (if no earlier test did) before ``capsys`` starts: the
    training's own progress lines never mix with the lines the test checks."""
    return trained_run(tmp_path_factory)["model"]


def test_annotate_and_scene_no_progress_print_lines(model, tmp_path, capsys):
    from sam2elnet.cli import main

    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(tmp_path / "img" / f"a{i}.png", rng.integers(0, 255, (40, 40, 3), np.uint8))
    rc = main(
        ["annotate", "--model", str(model), "--images", str(tmp_path / "img"),
         "--out", str(tmp_path / "ann"), "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("annotate: ")]
    assert len(lines) == 1 and lines[0].startswith("annotate: 3/3 img in ")
    assert lines[0].endswith("kept 3, skipped 0")
    scene = write_tif(tmp_path / "scene.tif", rng.integers(0, 255, (3, 96, 96)).astype(np.uint8))
    rc = main(
        ["scene", "--model", str(model), "--image", str(scene), "--out", str(tmp_path / "s.tif"),
         "--tile", "64", "--overlap", "16", "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert any(ln.startswith("scene.tif: 4/4 win in ") for ln in out.splitlines()), out


def test_export_no_progress_prints_a_line_per_stage(tmp_path, capsys):
    """export --no-progress (polygons, chips): one line per stage instead of a silent run."""
    from sam2elnet.cli import main

    lab = np.zeros((1, 40, 40), np.uint8)
    lab[0, 5:20, 5:20] = 255
    for i in range(2):
        write_tif(tmp_path / "labels" / f"l{i}.tif", lab)
    rc = main(["export", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "p.gpkg"),
               "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert any(ln.startswith("polygonise: 2/2 label in ") for ln in out.splitlines()), out
