"""How a folder job's images fit ``--max-memory``: which go window by window, the rest in chunks.

:class:`ChunkPlanner` reads each image's size from its header once and weighs it with the
predictor's whole-image estimate (:meth:`~sam2elnet.engine.predictor.Predictor.whole_bytes`):
an image over the budget is predicted window by window (:mod:`sam2elnet.engine.folder_large`),
the others are grouped into chunks for :func:`~sam2elnet.engine.folder_chunk.process_chunk`
that stay within it and end on whole forward batches (:func:`whole_batches`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from sam2elnet.engine import memory
from sam2elnet.engine.predictor import Predictor

__all__ = ["ChunkPlanner", "whole_batches"]


class ChunkPlanner:
    """A folder job's images weighed against its predictor's ``max_memory`` (sizes read once)."""

    def __init__(self, p: Predictor) -> None:
        self.p = p
        self._pixels: dict[Path, int | None] = {}  # header sizes, read once per file

    def tiled(self, f: Path, coarse: bool) -> bool:
        """True when ``f`` is too large to predict whole within the predictor's ``max_memory``
        (header read only; unreadable files are left to the whole-image reader to report)."""
        px = self.pixels(f)
        return px is not None and not self.p.fits_whole(px, coarse=coarse)

    def pixels(self, f: Path) -> int | None:
        """Height x width from ``f``'s header (:func:`memory.image_pixels`), read once."""
        if f not in self._pixels:
            self._pixels[f] = memory.image_pixels(f)
        return self._pixels[f]

    def chunks(self, files: Sequence[Path], coarse: bool) -> Iterator[list[Path]]:
        """Consecutive groups of at most ``4 x batch_size`` files whose summed whole-image
        estimate (:meth:`Predictor.whole_bytes` of their pixels) stays within ``max_memory``.

        A group of equally large images ends on a whole number of forward batches
        (:meth:`Predictor.fit_batch`) where it can, the rest starting the next group, so the job
        runs the full batches a plain loop over the images would: 16 images of 256 px in float32
        (4 per forward, 15 within the default budget) go as 12 + 4 (forwards of 4, 4, 4 | 4), not
        as 15 + 1 (4, 4, 4, 3 | 1)."""
        limit = max(1, self.p.batch_size * 4)
        group: list[Path] = []
        pixels = 0

        def over(px: int) -> bool:
            return self.p.whole_bytes(pixels + px, coarse=coarse) > self.p.max_memory

        for f in files:
            px = self.pixels(f) or 0
            if group and (len(group) >= limit or over(px)):
                keep = whole_batches(self.p, [self.pixels(g) for g in group], coarse)
                yield group[:keep]
                group = group[keep:]
                pixels = sum(self.pixels(g) or 0 for g in group)
                if group and over(px):  # the rest does not fit with f (a larger image)
                    yield group
                    group, pixels = [], 0
            group.append(f)
            pixels += px
        if group:
            yield group


def whole_batches(p: Predictor, pixels: Sequence[int | None], coarse: bool) -> int:
    """How many of a chunk's images (their header ``pixels``, None = unknown) it keeps when it is
    cut: the most whole forward batches (:meth:`Predictor.fit_batch`) when all are equally
    large, the rest (fewer than one batch) starting the next chunk; else all of them."""
    sizes = set(pixels)
    if len(sizes) != 1 or None in sizes:
        return len(pixels)
    step = p.fit_batch(int(sizes.pop() or 0), coarse=coarse)
    return len(pixels) - len(pixels) % step or len(pixels)
