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


#: chunks packed at a time: the bit arrays of one block, not of the whole stream, are held
_BLOCK = 1 << 16


class _BitPacker:
    """Packs (value, width) fields MSB first into bytes, one block of fields at a time.

    The bits of a block are expanded vectorised (one uint8 per bit) and packed at once; the bits
    past the last whole byte are carried into the next block, so the bytes equal one packing of
    the whole stream while memory holds one block's bits, not the stream's (a noisy 6,000^2 px
    mask has some 10^8 bits: 1.85 GB when they were expanded as int64 in one step).
    """

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.carry = np.zeros(0, np.uint8)

    def add(self, values: np.ndarray, widths: np.ndarray) -> None:
        widths = np.asarray(widths, dtype=np.int64)
        values = np.asarray(values, dtype=np.int64) & ((np.int64(1) << widths) - 1)
        field = np.repeat(np.arange(widths.size), widths)
        start = np.cumsum(widths) - widths
        k = np.arange(field.size) - start[field]
        bits = ((values[field] >> (widths[field] - 1 - k)) & 1).astype(np.uint8)
        bits = np.concatenate((self.carry, bits))
        whole = bits.size - bits.size % 8
        self.parts.append(np.packbits(bits[:whole]))
        self.carry = bits[whole:]

    def bytes(self) -> list[int]:
        """The stream, padded with zero bits to whole bytes."""
        return np.concatenate([*self.parts, np.packbits(self.carry)]).tolist()


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
    out = _BitPacker()
    out.add([px.size * 4, _WORD - 1, *[s - 1 for s in _RLE_SIZES]], [32, 5, 4, 4, 4, 4])
    # runs of equal values; a mask is two-valued, so every run is written as repeat chunks of
    # at most _MAX_RUN values (a chunk of one value as a literal, as short as a repeat)
    starts = np.concatenate(([0], np.flatnonzero(px[1:] != px[:-1]) + 1))
    runs = np.diff(np.append(starts, px.size)) * 4
    values = np.where(px[starts], 255, 0)
    del px, starts
    n_chunks = -(-runs // _MAX_RUN)
    if (n_chunks > 1).any():
        run = np.repeat(np.arange(runs.size), n_chunks)
        nth = np.arange(run.size) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
        runs, values = np.minimum(runs[run] - nth * _MAX_RUN, _MAX_RUN), values[run]
    sizes = np.asarray(_RLE_SIZES)
    for b in range(0, runs.size, _BLOCK):
        k, v = runs[b : b + _BLOCK], values[b : b + _BLOCK]
        cls = (k > 1 << _RLE_SIZES[0]).astype(np.int64)  # smallest field holding k - 1
        cls += k > 1 << _RLE_SIZES[1]
        cls += k > 1 << _RLE_SIZES[2]
        fields = np.stack([k != 1, cls, k - 1, v], axis=1).ravel()
        widths = np.stack([np.ones_like(cls), np.full_like(cls, 2), sizes[cls],
                           np.full_like(cls, _WORD)], axis=1).ravel()  # fmt: skip
        out.add(fields, widths)
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
