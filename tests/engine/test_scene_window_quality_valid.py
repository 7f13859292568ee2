"""A scene window's predicted IoU leaves its nodata pixels out, as ``elnet annotate`` does.

Found in a user trial (a Sentinel-1 dB scene with a NaN swath border, ``elnet scene --tile 256
--overlap 0 --quality-gpkg`` against ``elnet annotate`` of the same 256 px tiles cut out):
the labels were identical, and so was the predicted IoU of every window without nodata, but
windows reaching into the border were scored as if their nodata pixels were measured (0.614 vs
annotate's 0.363 for one window): ``QualityScoringPredictor`` called ``Predictor.predict``
without the windows' valid masks.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import make_scene

from sam2elnet.engine.executors import SmoothingPredictor, run_batch
from sam2elnet.engine.predictor import QualityScoringPredictor
from sam2elnet.engine.scene import predict_scene


class _ValidShareNet:
    """Stands in for ``Predictor``: probabilities of the smoothing filter, and as each image's
    predicted IoU the share of its pixels given as valid (1.0 when no mask is given)."""

    def __init__(self) -> None:
        self.smooth = SmoothingPredictor()
        self.in_bands = 1
        self.normalization = None
        self.evaluator = SimpleNamespace(fitted=True)

    def predict(self, images, coarse=None, valid=None):
        probs = list(self.smooth.predict_arrays(np.stack(images), None))
        shares = [1.0 if valid is None else float(np.mean(np.asarray(v))) for v in valid or images]
        return probs, SimpleNamespace(predicted_iou=shares)


def test_run_batch_scores_each_window_over_its_valid_pixels() -> None:
    x = np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32)
    valid = np.ones((2, 32, 32), np.float32)
    valid[1, :, :8] = 0  # a quarter of the second window is nodata
    probs, iou = run_batch(QualityScoringPredictor(_ValidShareNet()), x, None, valid)
    assert probs.shape == (2, 32, 32)
    assert iou.tolist() == [1.0, 0.75]
    _, iou = run_batch(QualityScoringPredictor(_ValidShareNet()), x, None)  # no mask: all valid
    assert iou.tolist() == [1.0, 1.0]


def test_scene_window_quality_leaves_nodata_out(tmp_path: Path) -> None:
    # 96 x 128 px scene; rows 0-31, columns 0-47 are nodata (value 0)
    src = make_scene(tmp_path / "s.tif", 96, 128, nodata_box=(0, 0, 32, 48))
    gpkg = tmp_path / "o_tiles.gpkg"
    predict_scene(
        src,
        tmp_path / "o.tif",
        QualityScoringPredictor(_ValidShareNet()),
        tile=32,
        overlap=0,
        quality_gpkg=gpkg,
        progress=False,
    )
    g = gpd.read_file(gpkg, layer="tiles").sort_values(["row", "col"])
    assert len(g) == 12 - 1  # 3 x 4 windows; the all-nodata one at (0, 0) is skipped
    # the window at columns 32-63 of rows 0-31 is half nodata: scored over its valid half
    half = g[(g.row_off == 0) & (g.col_off == 32)].iloc[0]
    assert half.valid_fraction == pytest.approx(0.5)
    assert half.predicted_iou == pytest.approx(0.5)
    assert (g.predicted_iou == g.valid_fraction).all()
