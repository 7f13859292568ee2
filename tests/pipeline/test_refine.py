"""Tests for the classical label-refinement baselines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from sam2elnet.pipeline.refine import REFINERS, guided_filter, refine


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture()
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright ellipse on noise, and a sloppy coarse label (dilated, with a blob and a hole)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    truth = ((yy - 45) ** 2 / 600 + (xx - 50) ** 2 / 300) < 1
    image = (0.3 + 0.4 * truth + rng.normal(0, 0.05, truth.shape)).astype(np.float32)[None]
    coarse = ndi.binary_dilation(truth, iterations=5)
    coarse[5:8, 5:8] = True
    coarse[44:47, 49:52] = False
    return image, coarse, truth


@pytest.mark.parametrize("method", list(REFINERS))
def test_every_refiner_returns_bool_mask_of_same_shape(method: str, scene) -> None:
    image, coarse, _ = scene
    out = refine(method, image, coarse)
    assert out.dtype == bool and out.shape == coarse.shape
    # inputs are not modified
    assert coarse[5, 5] and not coarse[45, 50]


@pytest.mark.parametrize("method", list(REFINERS))
def test_empty_and_full_masks_pass_through(method: str) -> None:
    img = np.random.default_rng(1).random((3, 32, 40)).astype(np.float32)
    for m in (np.zeros((32, 40), bool), np.ones((32, 40), bool)):
        assert np.array_equal(refine(method, img, m), m)


def test_no_change_is_identity(scene) -> None:
    image, coarse, _ = scene
    assert np.array_equal(refine("no_change", image, coarse), coarse)


def test_morphological_removes_specks_and_fills_holes(scene) -> None:
    image, coarse, _ = scene
    out = refine("morphological", image, coarse)
    assert not out[6, 6]  # small blob removed
    assert out[45, 50]  # hole filled


def test_image_guided_methods_improve_a_dilated_label(scene) -> None:
    image, coarse, truth = scene
    base = _iou(coarse, truth)
    assert _iou(refine("grabcut", image, coarse), truth) > base + 0.1
    assert _iou(refine("guided", image, coarse), truth) >= base


def test_guided_filter_preserves_constant_and_edges() -> None:
    g = np.zeros((32, 32), np.float32)
    g[:, 16:] = 1.0
    p = np.full_like(g, 0.7)
    assert np.allclose(guided_filter(g, p, 3, 1e-3), 0.7, atol=1e-4)
    q = guided_filter(g, g, 3, 1e-4)  # the guide itself passes through (edge kept)
    assert np.abs(q - g).max() < 0.05


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown refinement"):
        refine("crf", np.zeros((1, 4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="do not match"):
        refine("guided", np.zeros((1, 4, 5)), np.zeros((4, 4), bool))


def test_grabcut_handles_two_and_many_bands(scene) -> None:
    _, coarse, _ = scene
    for c in (2, 6):
        img = np.random.default_rng(c).random((c, 96, 96)).astype(np.float32)
        assert refine("grabcut", img, coarse).shape == coarse.shape
