"""Which features of one vector layer of many images belong to which image: by name, else by
position.

``elnet export`` writes the labels of many images into one layer whose features name their
image (:data:`IMAGE_NAME_ATTRIBUTES`); ``elnet import --from vector`` burns each image's features
into its mask, ``elnet enhance --labels FILE.gpkg`` / ``elnet scene --labels FILE.gpkg`` read
each image's coarse label from them and ``elnet evaluate --truth FILE.gpkg`` each prediction's
ground truth (:func:`image_frame`). All take the features by :func:`feature_images`, the one
rule: a feature with a ``source`` belongs to the image it names, and to no other (an image not
in the run: skipped); a feature without one whose ``label`` is the stem of one of the run's
images belongs to that image; any other feature (no name, a class name in ``label``) is placed
by map position when the layer has a CRS, and belongs to no image when it has none (pixel
coordinates of every image share one frame).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path, PureWindowsPath
from typing import Any, NamedTuple

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.utils.advice import name_sample, none_of, plural

__all__ = [
    "IMAGE_NAME_ATTRIBUTES",
    "UNPLACEABLE",
    "Unplaceable",
    "feature_images",
    "feature_stems",
    "image_features",
    "image_frame",
    "image_name_attributes",
    "in_map",
    "named_stems",
    "places_unnamed",
    "unplaced_note",
    "unplaceable_message",
    "unplaceable_reason",
]

_NO_GEOREF = "georeference (CRS + transform, or GCPs)"


class Unplaceable(NamedTuple):
    """How a command's messages word one vector file it cannot place on rasters without
    georeference (:func:`unplaceable_message`)."""

    rasters: str
    """One raster, as the file's refusal counts them (``"scene"``: ``"none of the 2 scenes"``)."""
    file: str
    """The file, as the message of one skipped raster names it."""
    fix: str
    """What to do, in the command's own option names; ``{path}``: the file."""


UNPLACEABLE = {
    "enhance": Unplaceable(
        "image",
        "one label file for several images",
        "georeference the images, or give one coarse label per image: `elnet import --from "
        "vector {path} --images FOLDER --out MASKS` writes them, then give --labels MASKS",
    ),
    "scene": Unplaceable(
        "scene",
        "one label file for several scenes",
        "georeference the scenes, or give --labels a folder of one label per scene",
    ),
    "evaluate": Unplaceable(
        "prediction",
        "one ground-truth file for several predictions",
        "georeference the predictions, or give a --truth folder of one polygon file per "
        "prediction, named like it, in pixel coordinates",
    ),
}
"""The words of each command sharing one vector file among rasters (``enhance --labels FILE``,
``scene --labels FILE`` with a folder of scenes, ``evaluate --truth FILE``). A
:class:`~sam2elnet.data.vector_shared.SharedVector` carries its command (``command``), so the
per-image message of :func:`image_frame` and the file's refusal
(:func:`~sam2elnet.data.vector_shared.check_placeable`) use the same words."""

IMAGE_NAME_ATTRIBUTES = ("source", "label")
"""Attributes naming a feature's image (by file stem), as ``elnet export`` writes them: the
image (``source``) and its label file (``label``)."""


def image_name_attributes(source: str, label: str) -> dict[str, str]:
    """The :data:`IMAGE_NAME_ATTRIBUTES` of a feature ``elnet export`` writes for the label file
    ``label`` of the image ``source``: ``{"source": source, "label": label}``."""
    return dict(zip(IMAGE_NAME_ATTRIBUTES, (source, label), strict=True))


def feature_stems(gdf: Any) -> tuple[list[tuple[str, str]], bool]:
    """Per feature of ``gdf`` the stems of its ``source`` and ``label`` (``""``: not filled in),
    and whether the layer has any :data:`IMAGE_NAME_ATTRIBUTES`. A name may be a path, with
    ``/`` or ``\\`` (a Windows path pasted in QGIS): its stem counts."""
    cols = [c if c in gdf.columns else None for c in IMAGE_NAME_ATTRIBUTES]
    values = [gdf[c].tolist() if c else [None] * len(gdf) for c in cols]
    stems = [
        tuple(
            PureWindowsPath(v.strip()).stem if isinstance(v, str) and v.strip() else "" for v in vs
        )
        for vs in zip(*values, strict=True)
    ]
    return stems, any(cols)  # type: ignore[return-value]


def named_stems(stems: list[tuple[str, str]]) -> list[str]:
    """Every stem :func:`feature_stems` found, sorted, once each."""
    return sorted({s for pair in stems for s in pair if s})


def feature_images(
    stems: list[tuple[str, str]], run: Collection[str] | None, stem: str | None = None
) -> list[str | None]:
    """The one rule: per feature the stem of the image it belongs to, None for a feature placed
    by map position. ``stems``: :func:`feature_stems`; ``run``: the stems of the run's images
    (``import``: ``--images`` and the export's review record). A non-empty ``source`` always
    names an image: the feature belongs to it only (not in the run: to no image, skipped). A
    ``label`` names an image only when it is one of ``run`` (it may be a class name, ``oil``);
    ``run`` None (unknown): only when it is ``stem``, the image being placed. Anything else:
    None."""
    known = set(run) if run is not None else {stem}
    return [src or (lab if lab and lab in known else None) for src, lab in stems]


def unplaced_note(
    owner: Sequence[str | None], images: Collection[str], where: str | Path
) -> str | None:
    """The note on the features of a layer of many images that name an image not among
    ``images`` (their stems; a tile left out of ``--images``): such a feature is placed on no
    image (:func:`feature_images`), and the user is told so once: ``"2 features name no image
    in IMAGES (their source / label: d, e): skipped"`` (``"1 feature names ..."`` for one). ``owner``: :func:`feature_images` of
    the layer; ``where``: the images' folder, as the user gave it. None when every named image
    is there. Used by ``elnet import --from vector`` and ``elnet enhance --labels FILE``."""
    lost = [o for o in owner if o is not None and o not in images]
    if not lost:
        return None
    which = plural(len(lost), "feature names", "features name")
    return (
        f"{which} no image in {where} (their source / label: "
        f"{name_sample(sorted(set(lost)), 5)}): skipped"
    )


def image_features(
    stems: list[tuple[str, str]],
    georef: bool,
    stem: str,
    run: Collection[str] | None = None,
    *,
    alone: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Which features of a layer of many images belong to the image ``stem``
    (:func:`feature_images`): the rule of ``elnet import --from vector`` and of one label file
    for several images in ``enhance``, ``scene`` and ``evaluate`` (:func:`image_frame`).

    ``stems``: :func:`feature_stems` of the layer (the rule is the same with and without name
    attributes); ``georef``: the features are in map coordinates (:func:`in_map`: the layer has
    a CRS, or it has none and ``stem`` has a CRS + transform, the layer then being read in the
    image's CRS);
    ``run``: as :func:`feature_images`; ``alone``: ``stem`` is the only image of the run.
    Returns bool ``(n_features,)`` arrays ``(own, mine)``: ``own`` the features that name the
    image; ``mine`` those and, when their coordinates tell the image
    (:func:`places_unnamed`: map coordinates, or the run has this one image), the features
    naming no image (drawn in QGIS without filling them in, or a class name in ``label``),
    placed by position. In pixel coordinates (a layer without CRS over an image without a
    CRS + transform) such a feature belongs to no image of a run of several, with or without
    name attributes: pixel coordinates of every image share one frame
    (before, a layer without those attributes put its features on every image).
    """
    owner = feature_images(stems, run, stem)
    own = np.array([o == stem for o in owner], dtype=bool)
    free = np.array([o is None for o in owner], dtype=bool)
    return own, (own | free if places_unnamed(georef, alone) else own)


def in_map(layer_crs: bool, image_crs: bool, gcps: bool = False, pixel: bool = False) -> bool:
    """Whether the features of a layer are in map coordinates on an image, as the vector-label
    reader places them (:func:`~sam2elnet.data.vector_grid.place_labels`): the layer has a CRS
    (``layer_crs``), or it has none and the image has a CRS with its transform (``image_crs``
    and not ``gcps``, a GCP-only image): the layer is then read in the image's CRS, with a
    warning. Not with ``pixel`` (``--labels-pixel-coords``: pixel coordinates whatever the CRS).
    The ``georef`` of :func:`image_features` / :func:`places_unnamed` for every command
    (``elnet import --from vector``, ``enhance``, ``scene``, ``evaluate``)."""
    return not pixel and (layer_crs or (image_crs and not gcps))


def places_unnamed(georef: bool, alone: bool) -> bool:
    """Whether the features of a layer of many images that name no image
    (:func:`feature_images` None) can be placed: by map position when they are in map
    coordinates (``georef``, :func:`in_map`: the layer has a CRS, or the image has a CRS +
    transform the layer is read in), and in pixel coordinates (one frame for every image) only
    when the run has one image (``alone``): then they can only be meant for it. The one rule of
    :func:`image_features` and of the note of ``elnet import --from vector`` on the features it
    skips."""
    return georef or alone


def image_frame(
    label: Any, frame: Any, image: str | Path, georef: bool, *, mapped: bool | None = None
) -> Any:
    """The rows of ``frame``, the features of ``label`` (one vector file for several images,
    or its :class:`~sam2elnet.data.vector_shared.SharedVector`, whose ``names`` and run
    ``images`` are then used), that belong to ``image`` (:func:`image_features`); ``frame``
    itself when all do (a layer without names: every feature by map position); the run's
    images unknown (no ``images``): a ``label`` names ``image`` only. ``georef``: ``image`` has a georeference (CRS + transform, or GCPs);
    without one the file must name its images (:func:`unplaceable_reason`). ``mapped``: the
    features are in map coordinates on ``image`` (:func:`in_map`; None: the layer has a CRS),
    so those naming no image are placed by position. The one rule of
    :func:`~sam2elnet.data.vector.rasterize_vector`, the window path
    (:class:`~sam2elnet.engine.scene_coarse.CoarseSource`) and ``elnet evaluate``.

    Raises:
        DataError: naming ``image``: it has no georeference and the file has a CRS (map
            coordinates) or no name attributes to place its features by
            (:func:`unplaceable_message`, in the words of the command that shares the file,
            :data:`UNPLACEABLE`; the job skips the image).
    """
    # a SharedVector of this frame (its names worked out once for the file)
    held = getattr(label, "frame", None) is frame
    stems, named = label.names if held else feature_stems(frame)
    if not georef:
        crs = frame.crs.to_string() if frame.crs is not None else None
        why = unplaceable_reason(stems, named) if crs is None else ""
        if why is not None:  # in the words of the command sharing the file
            command = getattr(label, "command", "enhance")
            msg = unplaceable_message(label, why, [Path(image)], 1, crs, command, per_image=True)
            raise DataError(msg, Path(image))
    run = getattr(label, "images", None)
    if not named:  # no names: map position places every feature
        return frame
    mapped = frame.crs is not None if mapped is None else mapped
    mine = image_features(stems, mapped, Path(image).stem, run)[1]
    return frame if mine.all() else frame[mine]


def unplaceable_reason(
    stems: list[tuple[str, str]], named: bool, image_stems: Collection[str] | None = None
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
        known = named_stems(stems)
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
    command: str = "enhance",
    per_image: bool = False,
) -> str:
    """The one refusal of a label file for several rasters (``path``) that cannot be placed on
    the rasters of ``plain`` (those without georeference, of ``n_images``): ``why``
    (:func:`unplaceable_reason`), or ``crs``, the layer's CRS (map coordinates, no map to put
    them on). ``per_image``: the message of one raster, which the caller names (a
    :class:`~sam2elnet.errors.DataError`: that raster is skipped); else of the file, which
    the caller names (a :class:`~sam2elnet.errors.UserError` before anything is read).
    ``command``: whose words (:data:`UNPLACEABLE`: the rasters, the file, what to do).
    """
    words = UNPLACEABLE[command]
    fix, what = words.fix.format(path=path), words.rasters
    if per_image:
        head = f"has no {_NO_GEOREF}, and {path} is {words.file}"
    elif len(plain) == n_images:
        head = none_of(n_images, what, f"has a {_NO_GEOREF}", f"has no {_NO_GEOREF}")
    else:
        names = name_sample([p.name for p in plain], 5)
        have = "has" if len(plain) == 1 else "have"
        head = f"{len(plain)} of the {plural(n_images, what)} {have} no {_NO_GEOREF} ({names})"
    if crs is not None:
        them = "it" if n_images == 1 and not per_image else "them"
        why = f"its features are in map coordinates ({crs}), which cannot be placed on {them}"
    return f"{head}: {why}; or {fix}"
