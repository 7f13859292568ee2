"""A synthetic scene and the rough noise field both synthetic tasks draw with.

:class:`Scene` is what :func:`sam2elnet.data.synthetic.make_scene` returns (image, exact mask,
what was drawn); :func:`fractal_field` gives the self-similar texture and edges of the slicks
(:mod:`sam2elnet.data.synthetic_sar`) and of fields, roofs, asphalt and tree crowns
(:mod:`sam2elnet.data.synthetic_roads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2elnet.data.coarse_ops import smooth_field

__all__ = ["Scene", "fractal_field"]


@dataclass
class Scene:
    """A synthetic image (C, H, W) uint8 with its exact bool mask (H, W) and what was drawn."""

    image: np.ndarray
    mask: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    distractor: np.ndarray | None = None
    """Bool (H, W) where a look-alike (not the object) was drawn, for tests and analysis."""


def fractal_field(
    rng: np.random.Generator, shape: tuple[int, int], scales: tuple[float, ...], decay: float = 0.6
) -> np.ndarray:
    """Sum of smooth fields at several scales: rough, self-similar edges when thresholded."""
    out = np.zeros(shape, dtype=np.float32)
    amp = 1.0
    for s in scales:
        out += amp * smooth_field(rng, shape, s)
        amp *= decay
    std = float(out.std())
    return out / std if std > 0 else out
