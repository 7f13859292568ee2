"""Which features of one vector layer of many images belong to which image: by name, else by
position.

``elnet export`` writes the labels of many images into one layer whose features name their
image (:data:`IMAGE_NAME_ATTRIBUTES`); ``elnet import --from vector`` burns each image's features
into its mask, ``elnet enhance --labels FILE.gpkg`` / ``elnet scene --labels FILE.gpkg`` read
each image's coarse label from them and ``elnet evaluate --truth FILE.gpkg`` each prediction's
ground truth (:func:`image_frame`). All take the features by :func:`image_features`, the one
rule: a feature whose ``source`` / ``label`` names one of the run's images belongs to that image
only; any other feature (no name, or a name that is none of the run's images: a class name, an
image not in the run) is placed by map position when the layer has a CRS, and belongs to no
image when it has none (pixel coordinates of every image share one frame).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.utils.advice import name_sample

__all__ = [
    "IMAGE_NAME_ATTRIBUTES",
    "feature_stems",
    "image_features",
    "image_frame",
    "image_name_attributes",
    "unplaceable_message",
    "unplaceable_reason",
]

_NO_GEOREF = "georeference (CRS + transform, or GCPs)"

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
    stems: list[set[str]],
    named: bool,
    georef: bool,
    stem: str,
    run: Collection[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which features of a layer of many images belong to the image ``stem``: the one rule of
    ``elnet import --from vector`` and of one label file for several images in ``enhance``,
    ``scene`` and ``evaluate`` (:func:`image_frame`).

    ``stems`` / ``named``: :func:`feature_stems` of the layer; ``georef``: the layer has a CRS;
    ``run``: the stems of every image of the run (None: every name counts as an image's).
    A name that is none of ``run`` (a class name in ``label``, an image not in the run) names
    no image. Returns bool ``(n_features,)`` arrays ``(own, mine)``: ``own`` the features
    whose ``source`` / ``label`` names the image; ``mine`` those and, when coordinates can
    place them (the layer has a CRS, or no name attribute at all), the features naming no
    image (drawn in QGIS without filling them in), placed by map position. In a layer without
    CRS but with name attributes such a feature belongs to no image: pixel coordinates of
    every image share one frame.
    """
    if run is not None:
        run = set(run)
        stems = [s & run for s in stems]
    own = np.array([stem in s for s in stems], dtype=bool)
    unnamed = np.array([not s for s in stems], dtype=bool)
    return own, (own | unnamed if (not named or georef) else own)


def image_frame(label: Any, frame: Any, image: str | Path, georef: bool) -> Any:
    """The rows of ``frame``, the features of ``label`` (one vector file for several images,
    or its :class:`~sam2elnet.data.vector_shared.SharedVector`, whose ``names`` and run
    ``images`` are then used), that belong to ``image`` (:func:`image_features`); ``frame``
    itself when all do, or when the run's images are unknown (no ``images``) and ``image``
    has a georeference (every feature by map position). ``georef``: ``image`` has a georeference (CRS + transform, or GCPs);
    without one the file must name its images (:func:`unplaceable_reason`). The one rule of
    :func:`~sam2elnet.data.vector.rasterize_vector`, the window path
    (:class:`~sam2elnet.engine.scene_coarse.CoarseSource`) and ``elnet evaluate``.

    Raises:
        DataError: naming ``image``: it has no georeference and the file no name attributes
            to place its features by (:func:`unplaceable_message`).
    """
    # a SharedVector of this frame (its names worked out once for the file)
    held = getattr(label, "frame", None) is frame
    stems, named = label.names if held else feature_stems(frame)
    if not georef:
        why = unplaceable_reason(stems, named)
        if why is not None:
            raise DataError(
                unplaceable_message(label, why, [Path(image)], 1, per_image=True), Path(image)
            )
    run = getattr(label, "images", None)
    if not named or (georef and run is None):  # run unknown: map position places every feature
        return frame
    mine = image_features(stems, named, frame.crs is not None, Path(image).stem, run)[1]
    return frame if mine.all() else frame[mine]


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


def unplaceable_message(
    path: Any,
    why: str,
    plain: Sequence[Path],
    n_images: int,
    crs: str | None = None,
    fix: str | None = None,
    what: str = "images",
    per_image: bool = False,
) -> str:
    """The one refusal of a label file for several images (``path``) that cannot be placed on
    the images of ``plain`` (those without georeference, of ``n_images``): ``why``
    (:func:`unplaceable_reason`), or ``crs``, the layer's CRS (map coordinates, no map to put
    them on). ``per_image``: the message of one image, which the caller names (a
    :class:`~sam2elnet.errors.DataError`: that image is skipped); else of the file, which
    the caller names (a :class:`~sam2elnet.errors.UserError` before anything is read). ``fix``:
    what to do (default: ``enhance``'s, georeference or import one mask per image); ``what``:
    the rasters as the message counts them (``"predictions"``).
    """
    fix = fix or (
        "georeference the images, or give one coarse label per image: "
        f"`elnet import --from vector {path} --images FOLDER --out MASKS` writes them, "
        "then `elnet enhance --labels MASKS`"
    )
    if per_image:
        head = f"has no {_NO_GEOREF}, and {path} is one label file for several images"
    elif len(plain) == n_images:
        head = f"none of the {n_images} {what} has a {_NO_GEOREF}"
    else:
        names = name_sample([p.name for p in plain], 5)
        head = f"{len(plain)} of the {n_images} {what} have no {_NO_GEOREF} ({names})"
    if crs is not None:
        why = f"its features are in map coordinates ({crs}), which cannot be placed on them"
    return f"{head}: {why}; or {fix}"
