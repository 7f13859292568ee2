"""The result objects a notebook prints are one readable line, not pages of arrays and rows.

Before, ``repr`` of a :class:`FolderResult` printed every row of ``quality.csv`` (all 1,000 of
a 1,000-image job), of an :class:`EvaluationResult` every image's result, of a
:class:`CoarseResult` and a :class:`RasterImage` their whole pixel arrays; now each says what it holds in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2elnet.data.coarse import CoarseResult
from sam2elnet.data.images import RasterImage
from sam2elnet.engine.eval_result import EvaluationResult
from sam2elnet.engine.folder_job import FolderResult
from sam2elnet.engine.metrics import Confusion


def test_folder_result_repr_counts_rows_instead_of_printing_them() -> None:
    rows = [{"image": f"/d/{i}.png", "label": f"labels/{i}.png", "kept": i % 2 == 0,
             "predicted_iou": 0.5} for i in range(1000)]  # fmt: skip
    res = FolderResult(Path("/out"), rows, [{"file": "/d/x.png", "reason": "corrupt"}])
    text = repr(res)
    assert text == (
        "FolderResult(out_dir=PosixPath('/out'), 1000 rows (500 kept), 1 skipped, unusable=None)"
    )
    assert res.rows is rows  # the data itself is unchanged


def test_coarse_result_repr_gives_the_mask_shape_and_share() -> None:
    m = np.zeros((64, 64), bool)
    m[:16] = True
    text = repr(CoarseResult(m, 0.81234, ["polygon: simplify 3.0 px"]))
    assert text == (
        "CoarseResult(mask=bool (64, 64), 25.0 % object, iou=0.812, ops=['polygon: simplify 3.0 px'])"
    )


def test_raster_image_repr_gives_shape_dtype_and_path() -> None:
    img = RasterImage(np.zeros((3, 20, 30), np.uint8), path=Path("/d/a.png"))
    assert repr(img) == (
        "RasterImage(path=PosixPath('/d/a.png'), data=uint8 (3, 20, 30), nodata=None, crs=None)"
    )
    nd = np.zeros((20, 30), bool)
    nd[0] = True
    img = RasterImage(np.zeros((1, 20, 30), np.float32), nd, {"crs": "EPSG:32633"})
    assert repr(img) == (
        "RasterImage(path=None, data=float32 (1, 20, 30), nodata=30 px, crs='EPSG:32633')"
    )


def test_evaluation_result_repr_gives_the_iou_not_every_image() -> None:
    res = EvaluationResult(Path("p"), Path("t"), [], {"iou": 0.50383}, Confusion(1, 1, 1, 1))
    assert repr(res) == (
        "EvaluationResult(pred_dir=PosixPath('p'), truth_dir=PosixPath('t'), 0 images, "
        "iou=0.504, 0 skipped)"
    )
