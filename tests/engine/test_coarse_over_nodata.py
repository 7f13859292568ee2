"""A coarse label over nodata carries no information.

A fresh-user trial drew a coarse polygon wholly inside a scene's nodata border: ~200 label
pixels changed far inside the valid area (a box 36 % over nodata flipped ~13,800 valid pixels
against the same box clipped to valid data). The image's nodata pixels are normalised to 0
(:func:`sam2elnet.data.normalize.normalize`) and the probabilities zeroed there; the coarse
label is now cleared there too before the network sees it (:func:`sam2elnet.engine.runtime.run_model`
for the ``Predictor`` / folder path, :func:`sam2elnet.engine.executors.run_batch` for scene
windows), so the output on valid pixels is the same with and without such a blob.

Fixture: a 96 x 128 px uint8 scene (:func:`helpers_data.make_scene`) whose columns 0..23 are
nodata (0); a coarse label over the central object, and the same plus a blob at rows 30..70,
columns 2..20 (all nodata); an untrained micro model (arbitrary but deterministic labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import make_scene, micro_model_file, write_tif

from sam2elnet.cli import main

H, W = 96, 128


def _coarse(blob: bool) -> np.ndarray:
    c = np.zeros((H, W), np.uint8)
    c[30:66, 44:84] = 1  # the central object
    if blob:
        c[30:70, 2:20] = 1  # wholly in the nodata border (columns 0..23)
    return c


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path]:
    img = make_scene(tmp_path / "s.tif", H, W, nodata_box=(0, 0, H, 24))
    return img, micro_model_file(tmp_path / "m.pt")


def test_the_predictor_ignores_a_coarse_blob_over_nodata(scene: tuple[Path, Path]) -> None:
    from sam2elnet.engine.predictor import Predictor

    img, model = scene
    pred = Predictor.from_file(model, precision="32", tta=0)
    _, x, valid = pred.read(img)
    assert not valid[:, :24].any() and valid[:, 24:].all()
    probs, _ = pred.predict([x, x], coarse=[_coarse(False), _coarse(True)], valid=[valid, valid])
    assert np.array_equal(probs[0][valid], probs[1][valid])  # was: ~200 pixels apart


def test_elnet_scene_ignores_a_coarse_blob_over_nodata(
    scene: tuple[Path, Path], tmp_path: Path
) -> None:
    img, model = scene
    labels = {}
    for blob in (False, True):
        lab = write_tif(tmp_path / f"c{int(blob)}.tif", _coarse(blob)[None] * 255, x0=500000)
        out = tmp_path / f"out{int(blob)}.tif"
        assert main(["scene", "--model", str(model), "--image", str(img), "--labels", str(lab),
                     "--out", str(out), "--no-progress"]) == 0  # fmt: skip
        with rasterio.open(out) as ds:
            labels[blob] = ds.read(1)
    valid = np.zeros((H, W), bool)
    valid[:, 24:] = True
    assert labels[False][valid].tobytes() == labels[True][valid].tobytes()
