"""Deprecated ``(windows, coarse)`` 2-tuples to ``LocalExecutor.map_batches`` (the form before
:data:`~sam2elnet.engine.executors.WindowBatch`; docs/changes.md): one DeprecationWarning naming
the 3-tuple and the release that removes them, and the 3-tuples' result. The Ray executor's is in
tests/engine/test_ray.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sam2elnet.engine import LocalExecutor, SmoothingPredictor
from sam2elnet.engine.executors import window_batches

WARNING = (
    r"\(windows, coarse\) are deprecated: pass \(windows, coarse, valid\)"
    r".*removed in sam2elnet 0\.2\.0"
)


def _pairs() -> list[tuple[np.ndarray, np.ndarray | None]]:
    rng = np.random.default_rng(0)
    x = [rng.random((2, 1, 20, 24), dtype=np.float32) for _ in range(3)]
    coarse = (rng.random((2, 20, 24)) > 0.5).astype(np.float32)
    return [(x[0], coarse), (x[1], None), (x[2], coarse)]


def test_pairs_warn_once_and_give_the_window_batches_result() -> None:
    pairs = _pairs()
    ex = LocalExecutor(SmoothingPredictor(score=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 3-tuples: no warning
        want = list(ex.map_batches([(b, c, None) for b, c in pairs]))
    with pytest.warns(DeprecationWarning, match=WARNING) as caught:
        got = list(ex.map_batches(pairs))
    assert len(caught) == 1  # once per call, not per item
    assert caught[0].filename == __file__  # at the caller's loop
    assert len(got) == len(want) == 3
    for (probs, iou), (want_probs, want_iou) in zip(got, want, strict=True):
        assert probs.shape == (2, 20, 24)
        np.testing.assert_array_equal(probs, want_probs)
        np.testing.assert_array_equal(iou, want_iou)


def test_window_batches_adds_valid_none_to_pairs_only() -> None:
    a, b = np.zeros((1, 1, 4, 4), np.float32), np.ones((1, 4, 4), np.float32)
    valid = np.ones((1, 4, 4), bool)
    with pytest.warns(DeprecationWarning, match=WARNING):
        got = list(window_batches([(a, None), (a, b, valid)]))
    assert [len(t) for t in got] == [3, 3]
    assert got[0][2] is None and got[1][2] is valid
