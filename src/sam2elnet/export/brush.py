"""Label Studio brush masks: the ``BrushLabels`` run-length format, encoded and decoded here.

Why our own: the Label Studio SDK pins packages that clash with ours, and the format is small.
It is the bit-packed run-length scheme of the ``rle-pack`` package (thi.ng/umbrella) that the
Label Studio front end uses, applied to the mask as a flat RGBA byte image (H x W x 4, row-major,
every channel equal to the mask value 0 or 255; the front end reads the alpha channel):

* header: the number of values (32 bits), the word size minus 1 (5 bits; 8 for bytes) and the
  four run-length field widths minus 1 (4 bits each; ``3, 4, 8, 16``);
* then chunks: 1 bit *repeat* flag, 2 bits selecting one of the four widths, the chunk length
  minus 1 in that width, then one word (repeat: the value repeated) or ``length`` words
  (literal run); bits are written most significant first and the stream is padded to bytes.

The ``rle`` list of a ``BrushLabels`` result holds those bytes as integers 0-255.
"""

from __future__ import annotations

import numpy as np

__all__ = ["brush_encode", "brush_decode"]

_WORD = 8
_RLE_SIZES = (3, 4, 8, 16)
_MAX_RUN = 1 << _RLE_SIZES[-1]


class _BitWriter:
    """Collects (value, width) fields; packs them MSB first into bytes in one vectorised step."""

    def __init__(self) -> None:
        self.values: list[int] = []
        self.widths: list[int] = []

    def write(self, value: int, bits: int) -> None:
        self.values.append(value & ((1 << bits) - 1))
        self.widths.append(bits)

    def bytes(self) -> list[int]:
        widths = np.asarray(self.widths, dtype=np.int64)
        values = np.asarray(self.values, dtype=np.int64)
        field = np.repeat(np.arange(widths.size), widths)
        start = np.concatenate(([0], np.cumsum(widths)[:-1]))
        k = np.arange(field.size) - start[field]
        bits = (values[field] >> (widths[field] - 1 - k)) & 1
        return np.packbits(bits.astype(np.uint8)).tolist()


def _size_class(n: int) -> int:
    for i, s in enumerate(_RLE_SIZES):
        if n - 1 < (1 << s):
            return i
    raise AssertionError("run longer than the largest field")  # chunks are capped at _MAX_RUN


def brush_encode(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE (list of ints 0-255) of a bool or 0/1 (H, W) mask.

    Foreground pixels become value 255 in all four RGBA channels, background 0.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    # runs are found on the pixels (1 byte each) and scaled by the 4 RGBA channels, instead of
    # expanding the mask to its H x W x 4 byte image first (same runs, a quarter of the memory)
    px = (m > 0).ravel()
    out = _BitWriter()
    out.write(px.size * 4, 32)
    out.write(_WORD - 1, 5)
    for s in _RLE_SIZES:
        out.write(s - 1, 4)
    # runs of equal values; a mask is two-valued, so every run is written as a repeat chunk
    change = np.flatnonzero(px[1:] != px[:-1]) + 1
    starts = (np.concatenate(([0], change)) * 4).tolist()
    ends = (np.concatenate((change, [px.size])) * 4).tolist()
    for s, e in zip(starts, ends, strict=True):
        value = 255 if px[s // 4] else 0
        n = e - s
        while n > 0:
            k = min(n, _MAX_RUN)
            if k == 1:
                cls = _size_class(1)
                out.write(0, 1)  # a literal chunk of one word is as short as a repeat
                out.write(cls, 2)
                out.write(0, _RLE_SIZES[cls])
                out.write(value, _WORD)
            else:
                cls = _size_class(k)
                out.write(1, 1)
                out.write(cls, 2)
                out.write(k - 1, _RLE_SIZES[cls])
                out.write(value, _WORD)
            n -= k
    return out.bytes()


def brush_decode(rle: list[int] | bytes, height: int, width: int) -> np.ndarray:
    """Bool (H, W) mask from a Label Studio brush RLE (alpha channel > 0 is foreground).

    Raises ``ValueError`` when the stream is truncated or its value count is not ``H * W * 4``.
    """
    data = np.asarray(list(rle) if not isinstance(rle, bytes | bytearray) else bytearray(rle))
    bits = np.unpackbits(data.astype(np.uint8))
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > bits.size:
            raise ValueError("brush RLE is truncated")
        v = 0
        for b in bits[pos : pos + n].tolist():
            v = (v << 1) | b
        pos += n
        return v

    num = read(32)
    if num != height * width * 4:
        raise ValueError(
            f"brush RLE holds {num} values but a {width}x{height} RGBA image needs {height * width * 4}"
        )
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        n = read(sizes[read(2)]) + 1
        j = min(i + n, num)
        if repeat:
            out[i:j] = read(word)
        else:
            for k in range(i, j):
                out[k] = read(word)
        i = j
    return out.reshape(height, width, 4)[:, :, 3] > 0
