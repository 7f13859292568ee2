"""One regional raster for a folder (``--labels region.tif``) that misses an image predicted
window by window (``elnet enhance``, an image over ``--max-memory``) or a scene (``elnet scene``
with a folder of scenes): it is predicted without a coarse label, as ``elnet annotate`` / ``elnet
scene`` without ``--labels`` predicts it, as a whole ``enhance`` image is.

Was: both took an all-background coarse label (enhance mode with nothing drawn), so the model
was told a person drew no object there: the label differed from an annotation's, the
``quality.csv`` row of a large image named the raster as its ``coarse`` label with change
statistics against nothing (every predicted pixel "added") and a change map, and the warning
said "enhanced from an empty coarse label (nothing drawn there)". An image the raster partly
covers keeps its coarse label (background outside the footprint).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import georef_tiles, micro_model_file, read_raster, write_tif

os.environ.setdefault("SAM2ELNET_THREADS", "1")

N = 96  # px a side, 10 m pixels; a, b, c 10 km apart
STARTS = {"a": 500000, "b": 510000, "c": 520000}
WINDOWS = ["--tile", "64", "--overlap", "16", "--no-progress", "--precision", "32"]
LARGE = ["--max-memory", "2M"]  # every 96 px image over the budget: the window path


def _images(folder: Path) -> dict[str, Path]:
    return georef_tiles(folder, STARTS, N, seed=11)


def _region(path: Path) -> Path:
    """48 x 48 px of 20 m from (509520 E, 4000000 N): the left half of b, nothing of a or c."""
    data = np.zeros((1, 48, 48), np.uint8)
    data[:, 10:30, 10:30] = 255
    return write_tif(path, data, transform=Affine(20, 0, 509520, 0, -20, 4000000))


def _main(argv: list[str]) -> str:
    from sam2elnet.cli import main

    said = io.StringIO()  # stdout and stderr, as a terminal shows them
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        code = main(argv)
    assert code == 0, said.getvalue()
    return said.getvalue()


def _missed(image: Path, region: Path) -> str:
    return (
        f"warning: {image}: {region} (one label file for all images) does not overlap this "
        "image, so it is predicted without a coarse label (as elnet annotate predicts it); if "
        "the file should cover it, check the label's CRS and georeference (gdalinfo)"
    )


def _warnings(text: str, words: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("warning:") and words in ln]


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "quality.csv", newline="") as fh:
        return {Path(r["image"]).stem: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("missed")
    micro_model_file(root / "m.pt")
    _images(root / "imgs")
    _region(root / "region.tif")
    (root / "one").mkdir()
    os.symlink(root / "imgs" / "a.tif", root / "one" / "a.tif")  # a alone, for the reference
    return root


def test_a_large_image_the_raster_misses_is_predicted_and_recorded_as_annotate_does(
    root: Path,
) -> None:
    model, region, imgs = root / "m.pt", root / "region.tif", root / "imgs"
    out, ann = root / "enh", root / "ann"
    said = _main(["enhance", "--model", str(model), "--images", str(imgs), "--labels",
                  str(region), "--out", str(out), *LARGE, *WINDOWS])  # fmt: skip
    assert "enhance window by window: 3 images too large" in said, said
    assert _warnings(said, "(one label file for all images)") == [
        _missed(imgs / "a.tif", region)
    ], said
    # the coarse-label rule warning names b, the one image enhanced window by window (was: a)
    assert _warnings(said, "--new-objects") == [
        "warning: b.tif: predicted window by window; --new-objects drop / --max-growth apply to "
        "whole images only and are not applied to this image"
    ], said
    rows = _rows(out)
    for k in "ac":  # no coarse label, no change statistics, no change map
        for col in ("coarse", "changes", "added_px", "removed_px", "changed_frac"):
            assert rows[k][col] == "", (k, col, rows[k])
    assert sorted(p.name for p in (out / "changes").iterdir()) == ["b.png", "b.tif"]
    assert rows["b"]["coarse"] == str(region) and rows["b"]["changes"] == "changes/b.tif"
    # the same model annotating a alone, window by window: the same row and label
    _main(["annotate", "--model", str(model), "--images", str(root / "one"), "--out", str(ann),
           *LARGE, *WINDOWS])  # fmt: skip
    got, want = rows["a"], _rows(ann)["a"]
    assert "coarse" not in want and want["label"] == "labels/a.tif"  # annotate's columns
    assert {k: got[k] for k in want if k != "image"} == {
        k: v for k, v in want.items() if k != "image"
    }
    np.testing.assert_array_equal(read_raster(out / got["label"]), read_raster(ann / want["label"]))


def test_a_scene_the_raster_misses_is_predicted_as_without_labels(root: Path) -> None:
    model, region, imgs = root / "m.pt", root / "region.tif", root / "imgs"
    out, plain = root / "scenes", root / "plain"
    said = _main(["scene", "--model", str(model), "--image", str(imgs), "--labels", str(region),
                  "--out", str(out), *WINDOWS])  # fmt: skip
    assert "3 scenes predicted, 0 already done, 0 skipped" in said, said
    assert _warnings(said, "(one label file for all images)") == [
        _missed(imgs / "a.tif", region)
    ], said
    assert (
        "note: the warning above (images that the one coarse-label file does not touch) "
        "applied to 2 scenes in all (a.tif, c.tif); only the first was shown" in said.splitlines()
    ), said
    _main(["scene", "--model", str(model), "--image", str(root / "one"), "--out", str(plain),
           *WINDOWS])  # fmt: skip
    np.testing.assert_array_equal(read_raster(out / "a.tif"), read_raster(plain / "a.tif"))

    def line(folder: Path) -> dict[str, object]:
        lines = [json.loads(t) for t in (folder / "manifest.jsonl").read_text().splitlines()]
        (rec,) = [r for r in lines if r["item"] == "a.tif"]
        return {k: rec[k] for k in ("status", "foreground_fraction", "windows")}

    assert line(out) == line(plain)
