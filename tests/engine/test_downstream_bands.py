"""The downstream model's images follow the band rule of every prediction path (data.band_match).

One band into a VV+VH (2-band SAR) U-Net is the BandCountError ``elnet annotate`` gives, naming
the image, in evaluation and in training; a grey image into an RGB U-Net is repeated to R, G, B
as annotate repeats it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import write_tif

from sam2elnet.data.load_cache import LoadCache
from sam2elnet.data.normalize import NormalizationConfig, normalize_for_model
from sam2elnet.data.raster import read_image
from sam2elnet.engine.downstream import DownstreamConfig, evaluate_downstream, train_downstream
from sam2elnet.engine.downstream_data import load_pair
from sam2elnet.engine.downstream_train import build_downstream_model
from sam2elnet.errors import BandCountError

S = 32


def _cfg(**kw) -> DownstreamConfig:
    base = dict(
        model_options={"width": 4, "depth": 2, "norm": "batch"},
        steps=1,
        image_size=S,
        batch_size=2,
        progress=False,
    )
    return DownstreamConfig(**(base | kw))


def _tif(path: Path, bands: int, seed: int = 0) -> Path:
    data = np.random.default_rng(seed).uniform(0.01, 0.2, (bands, S, S)).astype(np.float32)
    return write_tif(path, data, georef=False)


def _mask(path: Path) -> Path:
    m = np.zeros((S, S), np.uint8)
    m[8:20, 8:20] = 255
    cv2.imwrite(str(path), m)
    return path


SAR = NormalizationConfig(method="stats", sar=True, to_db=True, low=[-25.0], high=[-5.0])


def test_one_band_into_a_two_band_model_is_annotates_error(tmp_path: Path) -> None:
    one = _tif(tmp_path / "vv.tif", 1)
    mask = _mask(tmp_path / "m.png")
    model = build_downstream_model(_cfg(), in_bands=2)
    with pytest.raises(BandCountError, match="image has 1 band but the model was trained on 2"):
        evaluate_downstream(model, [(one, mask)], _cfg(), SAR)
    # the same error as the prediction paths' rule for this image
    with pytest.raises(BandCountError) as direct:
        normalize_for_model(read_image(one, sar=True), SAR, 2, one)
    with pytest.raises(BandCountError) as ours:
        load_pair(one, mask, SAR, 2)
    assert str(ours.value) == str(direct.value) and "vv.tif" in str(ours.value)


def test_one_band_among_two_band_training_images_is_that_error(tmp_path: Path) -> None:
    two = [_tif(tmp_path / f"vvvh{i}.tif", 2, seed=i) for i in range(3)]
    one = _tif(tmp_path / "vv.tif", 1)
    mask = _mask(tmp_path / "m.png")
    pairs = [(p, mask) for p in [*two, one]]
    with pytest.raises(BandCountError, match="vv.tif"):
        train_downstream(pairs, _cfg(steps=2, batch_size=4), norm_cfg=SAR)


def test_grey_image_into_an_rgb_model_is_repeated_as_annotate_does(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.random.default_rng(0).integers(0, 255, (S, S), dtype=np.uint8))
    mask = _mask(tmp_path / "m.png")
    optical = NormalizationConfig.for_modality("optical")
    x, m, valid = load_pair(grey, mask, optical, 3)
    expected = normalize_for_model(read_image(grey, sar=False), optical, 3, grey)
    assert x.shape == (3, S, S) and np.array_equal(x, expected)
    assert m is not None and m.sum() == 144 and valid.all()
    model = build_downstream_model(_cfg(), in_bands=3)
    scores = evaluate_downstream(model, [(grey, mask)], _cfg(), optical)
    assert scores["tp"] + scores["fp"] + scores["fn"] + scores["tn"] == S * S


def test_a_model_without_in_bands_is_refused_unless_given(tmp_path: Path) -> None:
    """The band check is never skipped: a model with no ``in_bands`` is a clear error (was: no
    band matching at all); given ``in_bands``, a grey image into a 3-band model is repeated."""
    import torch

    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.random.default_rng(0).integers(0, 255, (S, S), dtype=np.uint8))
    mask = _mask(tmp_path / "m.png")
    optical = NormalizationConfig.for_modality("optical")
    bare = torch.nn.Conv2d(3, 1, 1)
    with pytest.raises(ValueError, match="Conv2d has no in_bands attribute: pass in_bands"):
        evaluate_downstream(bare, [(grey, mask)], _cfg(), optical)
    scores = evaluate_downstream(bare, [(grey, mask)], _cfg(), optical, in_bands=3)
    assert scores["tp"] + scores["fp"] + scores["fn"] + scores["tn"] == S * S


def test_training_cache_keeps_each_band_count(tmp_path: Path) -> None:
    """One cache across settings: a grey image read for a 1-band then a 3-band setting is
    decoded for each (was: the 1-band array returned for the 3-band setting)."""
    from sam2elnet.engine.downstream_data import make_train_dataset

    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.random.default_rng(0).integers(0, 255, (S, S), dtype=np.uint8))
    mask = _mask(tmp_path / "m.png")
    optical = NormalizationConfig.for_modality("optical")
    cache = LoadCache()
    shapes = []
    for bands in (1, 3):
        ds = make_train_dataset([(grey, mask)], optical, S, augment=False, cache=cache)
        ds.bands = bands
        shapes.append(ds.load(0)[0].shape)
    assert shapes == [(1, S, S), (3, S, S)]


def test_training_cache_keeps_each_normalisation(tmp_path: Path) -> None:
    """One cache passed to two settings normalised differently: each gets its own arrays
    (was: the first setting's normalised array returned for the second)."""
    from sam2elnet.engine.downstream_data import make_train_dataset

    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (S, S), dtype=np.uint8))
    mask = _mask(tmp_path / "m.png")
    default = NormalizationConfig.for_modality("optical")  # percentile 1-99
    stretched = NormalizationConfig(method="percentile", p_low=10.0, p_high=90.0)
    cache = LoadCache()
    arrays = []
    for norm in (default, stretched):
        ds = make_train_dataset([(img, mask)], norm, S, augment=False, cache=cache)
        ds.bands = 1
        arrays.append(ds.load(0)[0])
        alone = make_train_dataset([(img, mask)], norm, S, augment=False, cache=LoadCache())
        alone.bands = 1
        np.testing.assert_array_equal(arrays[-1], alone.load(0)[0])
    assert not np.array_equal(arrays[0], arrays[1])
