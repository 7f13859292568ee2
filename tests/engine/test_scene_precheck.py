"""An unusable scene (constant, all nodata, all NaN) is refused BEFORE any window is predicted.

It was refused only after every window had gone through the model: on a 20,000^2 px all-zero
scene a user waited the whole prediction for the error. Now the overview read that fixes the
normalisation says "not constant" at once for a scene with content; a flat-looking one is
confirmed by a full-resolution strip pass that reads but never predicts
(``SceneInputs.check_usable``). The overview is decimated here (``_OVERVIEW_PIXELS`` lowered), so
a small patch of content between its sampled rows and columns must not make a scene "constant".
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import write_tif
from rasterio.enums import Resampling

from sam2elnet.engine import scene_norm
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.scene import predict_scene
from sam2elnet.errors import DataError

os.environ.setdefault("SAM2ELNET_THREADS", "1")

H = W = 128
#: Overview pixels: a 128^2 scene is decimated by 7 (rows and columns 0, 7, ..., 126 seen).
OVERVIEW = 400


class Counting(SmoothingPredictor):
    """The smoothing stand-in, counting the batches it is asked to predict."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        self.calls += 1
        return super().predict_arrays(batch, coarse)


@pytest.fixture(autouse=True)
def _small_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scene_norm, "_OVERVIEW_PIXELS", OVERVIEW)


def _run(src: Path, out: Path, pred: SmoothingPredictor, **kw):  # type: ignore[no-untyped-def]
    return predict_scene(src, out, pred, tile=64, overlap=16, progress=False, **kw)


def _patch(data: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (h, w) put at rows 61.., columns 40.. : off every 7th row and the 64 rows
    spread over the scene that the nodata fallback samples (every 2nd row from 0)."""
    h, w = values.shape
    data[:, 61 : 61 + h, 40 : 40 + w] = values
    return data


@pytest.mark.parametrize(
    ("kind", "data", "nodata", "message"),
    [
        ("zeros", np.zeros((3, H, W), np.uint8), None, "constant image (every valid pixel"),
        ("saturated", np.full((1, H, W), 255, np.uint8), None, "constant image"),
        ("declared nodata", np.full((1, H, W), -9999, np.float32), -9999.0, "all nodata ("),
        ("NaN", np.full((1, H, W), np.nan, np.float32), None, "all nodata ("),
        (
            "flat valid patch",
            _patch(np.zeros((1, H, W), np.uint8), np.full((1, 3), 90)),
            0,
            "constant image",
        ),
    ],  # fmt: skip
)
def test_unusable_scene_is_refused_without_predicting_a_window(
    tmp_path: Path, kind: str, data: np.ndarray, nodata: float | None, message: str
) -> None:
    src = write_tif(tmp_path / "s.tif", data, nodata)
    pred = Counting()
    prefix = "s.tif: unusable scene, no label written: "
    with pytest.raises(DataError, match=re.escape(prefix + message)):
        _run(src, tmp_path / "o.tif", pred, prob_path=tmp_path / "p.tif")
    assert pred.calls == 0, kind
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "p.tif").exists()


@pytest.mark.parametrize(
    ("background", "nodata"),
    [(0, None), (0, 0), (np.nan, None)],
    ids=["zero background", "nodata background", "NaN background"],
)
def test_a_small_patch_of_content_the_overview_misses_is_not_refused(
    tmp_path: Path, background: float, nodata: float | None
) -> None:
    """A 1 x 4 px patch of two values on row 61: neither the decimated overview (rows 0, 7, ...)
    nor the 64 sampled rows (0, 2, ...) see it; the full-resolution pass does, so the scene is
    predicted, not refused (an all-nodata background was refused as "all nodata" before)."""
    dtype = np.float32 if np.isnan(background) else np.uint8
    data = _patch(np.full((1, H, W), background, dtype), np.array([[50, 50, 200, 200]]))
    src = write_tif(tmp_path / "s.tif", data, nodata)
    with rasterio.open(src) as ds:
        from sam2elnet.data.tiling import decimated_read

        _ov, ov_valid = decimated_read(ds, [1], OVERVIEW)
        assert not (_ov[:, ov_valid] > 0).any() if nodata is None else not ov_valid.any()
    pred = Counting()
    res = _run(src, tmp_path / "o.tif", pred)
    assert res.quality_flag == "" and pred.calls > 0 and res.n_predicted > 0
    with rasterio.open(tmp_path / "o.tif") as ds:
        lab = ds.read(1)
    if nodata is not None or np.isnan(background):  # only the patch is valid
        assert (lab != 127).sum() == 4 and (lab[61, 40:44] != 127).all()


def test_a_scene_with_content_is_not_read_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overview shows content: no full-resolution pass (its cost is the min/max of two
    pixels per band), the windows are predicted."""
    from sam2elnet.engine import scene_inputs

    def no_scan(*a: object) -> str:
        raise AssertionError("a scene whose overview varies was read again")

    monkeypatch.setattr(scene_inputs, "scan_flag", no_scan)
    data = np.random.default_rng(0).integers(1, 255, (1, H, W)).astype(np.uint8)
    pred = Counting()
    res = _run(write_tif(tmp_path / "s.tif", data), tmp_path / "o.tif", pred)
    assert res.quality_flag == "" and pred.calls > 0 and res.n_predicted == res.n_windows == 9


def test_keep_unusable_still_predicts_and_flags_a_constant_scene(tmp_path: Path) -> None:
    """annotate / enhance (keep_unusable) keep the label of a flat scene in rejected/: the
    early refusal is not theirs, the flag comes from the windows as before."""
    pred = Counting()
    src = write_tif(tmp_path / "s.tif", np.full((1, H, W), 7, np.uint8))
    res = _run(src, tmp_path / "o.tif", pred, keep_unusable=True)
    assert res.quality_flag == "constant image" and pred.calls > 0


def test_range_flag_is_the_window_rule(tmp_path: Path) -> None:
    """The flag from per-band (low, high) ends equals ValueSpread's over every scaled pixel,
    for a scaling that clips (constant after scaling) and one that does not."""
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.scene_norm import SceneNormalizer, ValueSpread, range_flag
    from sam2elnet.model.input_flags import CLIPPED_FLAG

    cfg = NormalizationConfig(method="fixed", low=[0, 0], high=[255, 255])
    norm = SceneNormalizer(low=np.zeros(0), high=np.zeros(0), cfg=cfg)
    valid = np.ones((8, 8), bool)
    for raw, want in (
        (np.random.default_rng(1).normal(-20, 5, (2, 8, 8)).astype(np.float32), CLIPPED_FLAG),
        (np.random.default_rng(1).normal(100, 5, (2, 8, 8)).astype(np.float32), ""),
        (np.full((2, 8, 8), 300, np.float32), "constant image"),
    ):
        spread = ValueSpread()
        spread.add(raw, norm(raw, valid), valid)
        ends = (raw.min((1, 2)).astype(np.float64), raw.max((1, 2)).astype(np.float64))
        assert range_flag(norm, ends, raw.dtype) == spread.flag == want
    assert range_flag(norm, None, np.uint8) == "all nodata"


def test_overviews_out_of_date_give_a_clear_all_nodata_error(tmp_path: Path) -> None:
    """The only way no window holds a valid pixel once the normalisation found some
    (``tiles.n == 0`` in predict_scene): overviews built from data later overwritten with nodata.
    The windows are read, none predicted, and the error says to rebuild the overviews."""
    rng = np.random.default_rng(0)
    src = write_tif(
        tmp_path / "s.tif", rng.integers(1, 255, (1, H, W)).astype(np.uint8), 0,
        tiled=True, blockxsize=64, blockysize=64,
    )  # fmt: skip
    with rasterio.open(src, "r+") as ds:
        ds.build_overviews([2, 4, 8], Resampling.nearest)
    with rasterio.open(src, "r+") as ds:
        ds.write(np.zeros((1, H, W), np.uint8))  # the overviews keep the old pixels
    pred = Counting()
    with pytest.raises(DataError) as err:
        _run(src, tmp_path / "o.tif", pred)
    assert str(err.value) == (
        f"{src}: unusable scene, no label written: all nodata (no valid pixel: every pixel is the "
        "file's nodata value, NaN, +-inf or masked); check the file's nodata value or mask; its "
        "overviews (the reduced-resolution copies GIS programs show when zoomed out) hold data "
        "its full-resolution pixels do not: they are out of date, rebuild them (gdaladdo -clean, "
        "then gdaladdo)"
    )
    assert pred.calls == 0 and not (tmp_path / "o.tif").exists()
