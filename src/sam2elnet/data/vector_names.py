"""Which features of one vector layer of many images belong to which image: by name.

``elnet export`` writes the labels of many images into one layer whose features name their
image (:data:`IMAGE_NAME_ATTRIBUTES`); ``elnet import --from vector`` burns each image's features into
its mask, and ``elnet enhance --labels FILE.gpkg`` on images without georeference reads each
image's coarse label from them (:func:`sam2elnet.data.vector.rasterize_vector`). Both take
the features by :func:`image_features`, the one rule.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import PureWindowsPath
from typing import Any

import numpy as np

from sam2elnet.utils.advice import name_sample

__all__ = [
    "IMAGE_NAME_ATTRIBUTES",
    "feature_stems",
    "image_features",
    "image_name_attributes",
    "unplaceable_reason",
]

IMAGE_NAME_ATTRIBUTES = ("source", "label")
"""Attributes naming a feature's image (by file stem), as ``elnet export`` writes them: the
image (``source``) and its label file (``label``)."""


def image_name_attributes(source: str, label: str) -> dict[str, str]:
    """The :data:`IMAGE_NAME_ATTRIBUTES` of a feature ``elnet export`` writes for the label file
    ``label`` of the image ``source``: ``{"source": source, "label": label}``."""
    return dict(zip(IMAGE_NAME_ATTRIBUTES, (source, label), strict=True))


def feature_stems(gdf: Any) -> tuple[list[set[str]], bool]:
    """Per feature of ``gdf`` the image stems its :data:`IMAGE_NAME_ATTRIBUTES` give (empty: none filled
    in), and whether the layer has any such attribute. A name may be a path, with ``/`` or
    ``\\`` (a Windows path pasted in QGIS): its stem counts."""
    cols = [c for c in IMAGE_NAME_ATTRIBUTES if c in gdf.columns]
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


def unplaceable_reason(
    stems: list[set[str]], named: bool, image_stems: Collection[str] | None = None
) -> str | None:
    """Why the features of one layer for several images, without CRS, cannot be placed by name
    on images without georeference (CRS + transform, or GCPs); None: they can.

    ``stems`` / ``named``: :func:`feature_stems` of the layer. Refused: a layer without
    :data:`IMAGE_NAME_ATTRIBUTES` (its pixel coordinates would put the same polygons on every
    image) and, given ``image_stems`` (the stems of all the images), a layer whose features name
    none of them. The reason is one clause naming what to fill in or check; the caller names the
    file or image (``elnet enhance`` refuses the file once, the reader an image).
    """
    attrs = " / ".join(IMAGE_NAME_ATTRIBUTES)
    if not named:
        return (
            f"its features have no {attrs} attribute naming their image, so their pixel "
            "coordinates would put the same polygons on every image; fill in 'source' (the "
            "image name, as `elnet export` writes it)"
        )
    if image_stems is not None:
        known = sorted(set().union(*stems)) if stems else []
        if not set(known) & set(image_stems):
            return (
                f"no feature's {attrs} names one of the {len(image_stems)} images (they name "
                f"{name_sample(known, 5) or 'nothing'}); check --images and the file"
            )
    return None
