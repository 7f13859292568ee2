"""``engine.eval_stream.both_unusable``: the other file of a pair is read as the pair reads it
(the prediction without ``positive_values``, the ground truth with them)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from sam2elnet.data.masks import read_mask_valid
from sam2elnet.engine.eval_stream import both_unusable
from sam2elnet.errors import DataError


def test_the_prediction_is_checked_without_the_truths_positive_values(tmp_path: Path) -> None:
    """A corrupt class-index truth read with ``--positive-values 1`` and a prediction holding
    5 values: the pair reads the prediction without them, so it cannot be used either. Before,
    the prediction was checked with the truth's values, passed, and only the truth was named."""
    truth, pred = tmp_path / "t.png", tmp_path / "p.png"
    truth.write_bytes(b"garbage")
    cv2.imwrite(str(pred), np.arange(40, dtype=np.uint8).reshape(5, 8) % 5)
    with pytest.raises(DataError) as caught:
        read_mask_valid(truth, positive_values=(1.0,))
    with pytest.raises(DataError, match="different values"):
        read_mask_valid(pred)  # as the pair reads the prediction
    err = both_unusable(caught.value, pred, truth, positive_values=(1.0,))
    assert err.path == pred
    msg = str(err)
    assert msg.startswith(f"{pred}: mask holds 5 different values") and "cannot decode" in msg
    assert f"; its ground truth {truth}: cannot decode image" in msg, msg
