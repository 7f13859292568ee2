"""Centre lines of bool masks: the one skeleton of the project.

The road measures (:mod:`sam2elnet.engine.metrics.roads`, strip by strip in
:mod:`sam2elnet.engine.strip_metrics`) and the road centre-line export
(:mod:`sam2elnet.export.centrelines`) thin masks with :func:`centre_lines`, so a length the
evaluation reports and a line the export writes come from the same pixels. It lives in ``data``
(below both ``engine`` and ``export``, which never import each other; docs/architecture.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_ROAD_PIECE_PX", "centre_lines"]

MIN_ROAD_PIECE_PX = 10
"""Shortest centre-line piece treated as road, in pixels: the road connectivity measure ignores
true-skeleton components under this many pixels (``min_component_px`` of
:func:`sam2elnet.engine.metrics.roads.road_counts`), and the centre-line export drops spurs and
isolated pieces shorter than this (:data:`sam2elnet.export.centrelines.MIN_LENGTH_PX`)."""


def centre_lines(mask: np.ndarray) -> np.ndarray:
    """One-pixel centre lines of a bool mask: Guo & Hall (1989) parallel thinning
    (``skimage.morphology.thin``), run to its fixed point.

    Args:
        mask: bool ``(H, W)``.

    Returns:
        bool ``(H, W)``, True on the centre lines (all False for an empty mask); 8-connected
        lines one pixel wide.
    """
    from skimage.morphology import thin

    return thin(mask) if mask.any() else np.zeros(mask.shape, dtype=bool)
