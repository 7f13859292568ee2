"""Which features of one vector layer of many images belong to which image: by name.

``elnet export`` writes the labels of many images into one layer whose features name their
image (:data:`NAME_COLUMNS`); ``elnet import --from vector`` burns each image's features into
its mask, and ``elnet enhance --labels FILE.gpkg`` on images without georeference reads each
image's coarse label from them (:func:`sam2elnet.data.vector.rasterize_vector`). Both take
the features by :func:`image_features`, the one rule.
"""

from __future__ import annotations

from pathlib import PureWindowsPath
from typing import Any

import numpy as np

__all__ = ["NAME_COLUMNS", "feature_stems", "image_features", "shared_feature_stems"]

NAME_COLUMNS = ("source", "label")
"""Attributes naming a feature's image (by file stem), as ``elnet export`` writes them."""


def feature_stems(gdf: Any) -> tuple[list[set[str]], bool]:
    """Per feature of ``gdf`` the image stems its :data:`NAME_COLUMNS` give (empty: none filled
    in), and whether the layer has any such attribute. A name may be a path, with ``/`` or
    ``\\`` (a Windows path pasted in QGIS): its stem counts."""
    cols = [c for c in NAME_COLUMNS if c in gdf.columns]
    stems: list[set[str]] = [set() for _ in range(len(gdf))]
    for c in cols:
        for i, v in enumerate(gdf[c].tolist()):
            if isinstance(v, str) and v.strip():
                stems[i].add(PureWindowsPath(v.strip()).stem)  # a/b.png, C:\x\b.png: b
    return stems, bool(cols)


def image_features(
    stems: list[set[str]], named: bool, georef: bool, stem: str
) -> tuple[np.ndarray, np.ndarray]:
    """Which features of a layer of many images belong to the image ``stem``: the one rule of
    ``elnet import --from vector`` and of a shared coarse-label file on an image without
    georeference (:func:`~sam2elnet.data.vector.rasterize_vector`).

    ``stems`` / ``named``: :func:`feature_stems` of the layer; ``georef``: the layer has a CRS.
    Returns bool ``(n_features,)`` arrays ``(own, mine)``: ``own`` the features whose
    ``source`` / ``label`` names the image; ``mine`` those and, when coordinates can place
    them (the layer has a CRS, or no name attribute at all), the features naming no image
    (drawn in QGIS without filling them in). In a layer without CRS but with name attributes
    an unnamed feature belongs to no image: pixel coordinates of every image share one frame.
    """
    own = np.array([stem in s for s in stems], dtype=bool)
    unnamed = np.array([not s for s in stems], dtype=bool)
    return own, (own | unnamed if (not named or georef) else own)


_LAST: tuple[Any, list[set[str]], bool] | None = None  # (frame, its stems, named), frame held


def shared_feature_stems(gdf: Any) -> tuple[list[set[str]], bool]:
    """:func:`feature_stems` of a frame placed on many images in turn (one coarse-label file
    for a folder, :class:`~sam2elnet.data.vector_shared.SharedVector`): worked out once for
    the last frame given (held, so the identity check is safe), not once per image."""
    global _LAST
    last = _LAST
    if last is not None and last[0] is gdf:
        return last[1], last[2]
    stems, named = feature_stems(gdf)
    _LAST = (gdf, stems, named)
    return stems, named
