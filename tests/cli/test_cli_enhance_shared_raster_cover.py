"""``elnet enhance --images FOLDER --labels region.tif --report``: what ``quality.csv`` and
``report.html`` say of the images one regional raster misses or only partly covers.

An image the raster misses has no coarse label: it is predicted as ``elnet annotate`` predicts
(no coarse input), and its ``quality.csv`` row reads as an annotation's (``has_coarse`` 0,
``coarse_agreement`` 0, no ``coarse`` / change columns), scored as one. Was: it was enhanced from
an all-background coarse label, so its row said ``has_coarse`` 1 and ``coarse_agreement`` 1.0
(an empty label agreeing with an empty coarse label) and its score was the held-out rate of
labels a person drew empty, for an image nobody drew on. An image the raster partly covers keeps
the rule of a placed label: the uncovered part is background in the coarse label the model is
given, and the row's ``has_coarse`` 1 / ``coarse_agreement`` are those of that input.

The report shows the run's coverage warnings (missed images, partly covered images) among its
alerts. Was: they were only printed, so a card's area outside the raster read as background.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import os
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import georef_tiles, micro_model_file, write_tif

os.environ.setdefault("SAM2ELNET_THREADS", "1")

N = 48  # px a side, 10 m pixels; a, b at 500000 / 510000 E, c 10 km further
STARTS = {"a": 500000, "b": 510000, "c": 520000}


def _images(folder: Path) -> dict[str, Path]:
    return georef_tiles(folder, STARTS, N, seed=11)


def _region(path: Path) -> Path:
    """24 x 24 px of 20 m from (509760 E, 4000000 N): the left half of b (its cols 0:24) and
    nothing of a or c; a box over b's rows 8:24, cols 0:16."""
    data = np.zeros((1, 24, 24), np.uint8)
    data[:, 4:12, 12:20] = 255
    return write_tif(path, data, transform=Affine(20, 0, 509760, 0, -20, 4000000))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Path], str]:
    from sam2elnet.cli import main

    root = tmp_path_factory.mktemp("cover")
    model = micro_model_file(root / "m.pt")
    imgs = _images(root / "imgs")
    region = _region(root / "region.tif")
    out = root / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["enhance", "--model", str(model), "--images", str(root / "imgs"),
                     "--labels", str(region), "--out", str(out), "--no-progress",
                     "--precision", "32", "--report"])  # fmt: skip
    assert code == 0, err.getvalue()
    return out, region, imgs, err.getvalue()


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "quality.csv", newline="") as fh:
        return {Path(r["image"]).stem: r for r in csv.DictReader(fh)}


def test_a_missed_image_reads_as_an_image_without_a_coarse_label(
    run: tuple[Path, Path, dict[str, Path], str],
) -> None:
    out, region, _imgs, _said = run
    rows = _rows(out)
    assert sorted(rows) == ["a", "b", "c"]
    for k in "ac":  # missed: as annotate writes them
        assert (rows[k]["has_coarse"], rows[k]["coarse_agreement"]) == ("0.000000", "0.000000"), (
            rows[k]
        )
        assert rows[k]["coarse"] == rows[k]["changes"] == rows[k]["added_px"] == "", rows[k]
    # b, half covered: enhanced from the placed label, background outside the footprint; its
    # agreement is the IoU of its label with that coarse label (the box, nothing elsewhere)
    assert rows["b"]["has_coarse"] == "1.000000" and rows["b"]["coarse"] == str(region)
    import rasterio

    with rasterio.open(out / rows["b"]["label"]) as ds:
        label = ds.read(1) == 255
    box = np.zeros((N, N), bool)
    box[8:24, 0:16] = True
    iou = (label & box).sum() / max(1, (label | box).sum())
    assert float(rows["b"]["coarse_agreement"]) == pytest.approx(iou, abs=1e-6)
    assert int(rows["b"]["removed_px"]) == (box & ~label).sum()


def test_a_missed_image_is_predicted_and_scored_as_annotate_predicts_it(
    run: tuple[Path, Path, dict[str, Path], str], tmp_path: Path
) -> None:
    """The same model annotating a alone gives the same row: features, score and label."""
    from sam2elnet.cli import main

    out, _region_path, imgs, _said = run
    model = out.parent / "m.pt"
    (one := tmp_path / "one").mkdir()
    os.symlink(imgs["a"], one / "a.tif")
    ann = tmp_path / "ann"
    assert main(["annotate", "--model", str(model), "--images", str(one), "--out", str(ann),
                 "--no-progress", "--precision", "32"]) == 0  # fmt: skip
    got, want = _rows(out)["a"], _rows(ann)["a"]
    for col in ("predicted_iou", "quality_flag", "fg_frac", "has_coarse", "coarse_agreement"):
        assert got[col] == want[col], col
    import rasterio

    with rasterio.open(out / got["label"]) as a, rasterio.open(ann / want["label"]) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_the_report_shows_the_coverage_warnings(
    run: tuple[Path, Path, dict[str, Path], str],
) -> None:
    out, region, imgs, said = run
    missed = (
        f"{imgs['a']}: {region} (one label file for all images) does not overlap this image, "
        "so it is predicted without a coarse label (as elnet annotate predicts it)"
    )
    partly = f"{region}: the coarse label raster covers 50.0 % of the image {imgs['b']}"
    assert missed in said and partly in said, said
    page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert missed in page and partly in page
    assert (
        "the warning above (images that the one coarse-label file does not touch) applied to "
        "2 images in all (a.tif, c.tif); only the first was shown" in page
    )
