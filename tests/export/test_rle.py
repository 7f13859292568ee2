"""COCO RLE decoding refuses what it cannot decode exactly (sam2elnet.export.rle_decode).

A run-length list that does not cover H x W pixels decoded silently to a wrong mask before:
too short left the rest background, too long was cut off."""

from __future__ import annotations

import numpy as np
import pytest

from sam2elnet.errors import DataError
from sam2elnet.export import rle_decode, rle_encode
from sam2elnet.export.coco import counts_to_string, rle_counts, string_to_counts


def test_rle_decode_known_mask() -> None:
    # 2 x 3, column-major, background first: column 0 empty, columns 1-2 full
    m = rle_decode({"size": [2, 3], "counts": [2, 4]})
    np.testing.assert_array_equal(m, [[False, True, True], [False, True, True]])
    assert m.dtype == bool


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [2, 3], "counts": [2, 3]}, "its runs cover 5 pixels, the image has 6"),
        ({"size": [2, 3], "counts": [2, 4, 1]}, "its runs cover 7 pixels, the image has 6"),
        ({"size": [2, 3], "counts": [8, -2]}, "a negative size or run length"),
        ({"size": [2, 3], "counts": "0P8"}, "unreadable RLE"),
        ({"size": [2, 3]}, "unreadable RLE (KeyError"),
        ({"counts": [6]}, "unreadable RLE (KeyError"),
        ({"size": [6], "counts": [6]}, "unreadable RLE (ValueError"),
        ({"size": [2, 3], "counts": ["a"]}, "unreadable RLE (ValueError"),
    ],
)
def test_rle_decode_refuses_a_malformed_rle(rle: dict, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        rle_decode(rle)


def test_rle_encode_needs_a_2d_mask() -> None:
    with pytest.raises(ValueError, match=r"2-D \(H, W\) mask, got shape \(2, 2, 2\)"):
        rle_encode(np.zeros((2, 2, 2), bool))
    assert rle_encode(np.zeros((0, 3), bool)) == {"size": [0, 3], "counts": "0"}


def test_rle_roundtrip_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = rng.integers(1, 30, 2)
        m = rng.random((h, w)) < rng.random()
        c = rle_counts(m)
        assert sum(c) == h * w
        assert string_to_counts(counts_to_string(c)) == c
        np.testing.assert_array_equal(rle_decode(rle_encode(m)), m)


def test_rle_known_values():
    # column-major, starts with a zero run: a 2x2 all-ones mask is [0, 4]
    assert rle_counts(np.ones((2, 2), bool)) == [0, 4]
    assert counts_to_string([0, 4]) == "04"
    m = np.array([[0, 1], [0, 1]], bool)  # first column zeros, second ones
    assert rle_counts(m) == [2, 2]
    # large and negative deltas survive the 5-bit encoding
    c = [5, 100000, 3, 2, 70000, 1]
    assert string_to_counts(counts_to_string(c)) == c
