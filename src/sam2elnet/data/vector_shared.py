"""One vector label file for many images, read once: :class:`SharedVector`.

``elnet enhance --labels lines.gpkg`` gives one GeoPackage / GeoJSON / Shapefile of polygons or
road lines for every image, and the report of such a run draws that file on each card. Reading
and parsing the file (pyogrio, :func:`sam2elnet.data.vector.read_vector`) is the same work for
every image, and for a large file most of it; :func:`share_vectors` reads each file that several
images name once, and the readers place that parsed frame on each image
(``frame=`` of :func:`~sam2elnet.data.vector.rasterize_vector` and
:meth:`~sam2elnet.data.vector.VectorLabels.from_file`, :func:`frame_of`): the same pixels as
reading the file again.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from sam2elnet.data.vector_names import (
    IMAGE_NAME_ATTRIBUTES,
    feature_images,
    feature_stems,
    unplaceable_message,
    unplaceable_reason,
    unplaced_note,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.advice import none_of
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "FILE_NOTE_KINDS",
    "SHARED_EMPTY_KIND",
    "SharedRaster",
    "SharedVector",
    "check_placeable",
    "check_raster_placeable",
    "frame_of",
    "is_shared",
    "say_file_notes",
    "share_raster",
    "share_vectors",
    "warn_no_features",
    "warn_no_width",
]


@dataclass(frozen=True)
class SharedVector:
    """A vector label file read once for the many images it labels.

    ``path`` is the file, ``frame`` its features as :func:`~sam2elnet.data.vector.read_vector`
    returns them (a GeoDataFrame, never changed by the readers). It stands where the file's
    path stands: ``os.fspath``, ``str`` and ``Path(...)`` give ``path`` (``quality.csv``'s
    ``coarse`` column, messages, suffix checks), and the readers given one take ``frame``
    instead of reading the file (:func:`frame_of`). Equal (and hashed) by ``path``; picklable,
    so a Ray worker gets the frame with the chunk instead of reading the file per image.

    ``many``: the file serves several images (the readers then place it as one file for many,
    :func:`is_shared`); False: one image's own file, read here only for its layer (``--layer``),
    placed as a file of its own (pixel coordinates on an image without georeference, no
    feature on the image an error). ``images``: the stems of the run's images (a ``label``
    naming none of them is a class name,
    :func:`~sam2elnet.data.vector_names.feature_images`); None: unknown.
    """

    path: Path
    frame: Any = field(compare=False, repr=False)
    many: bool = field(default=True, compare=False)
    images: frozenset[str] | None = field(default=None, compare=False, repr=False)
    command: str = field(default="enhance", compare=False, repr=False)
    """The command sharing the file, whose words say that it cannot be placed on a raster
    without georeference and what to do (:data:`~sam2elnet.data.vector_names.UNPLACEABLE`)."""

    def serving(self, images: Iterable[str | Path], command: str | None = None) -> SharedVector:
        """This file as the one label file of ``images`` (their stems become ``images``);
        ``command``: as :attr:`command` (None: kept)."""
        stems = frozenset(Path(p).stem for p in images)
        new = replace(self, images=stems, command=command or self.command)
        if "names" in self.__dict__:  # the same frame: its names are not worked out again
            new.__dict__["names"] = self.__dict__["names"]
        return new

    @cached_property
    def names(self) -> tuple[list[tuple[str, str]], bool]:
        """:func:`~sam2elnet.data.vector_names.feature_stems` of ``frame``: which image each
        feature names, and whether the layer has name attributes; worked out once for the
        file, not once per image it is placed on."""
        return feature_stems(self.frame)

    def unplaced_note(self, where: str | Path) -> str | None:
        """The one note on this file's features that name an image not among :attr:`images` (a
        tile left out of ``--images``, not predicted): they are placed on no image
        (:func:`~sam2elnet.data.vector_names.feature_images`) and skipped, e.g. ``"2 features
        name no image in IMAGES (their source / label: d, e): skipped"``
        (:func:`~sam2elnet.data.vector_names.unplaced_note`). ``where``: those images' folder as
        the user gave it. None when every named image is there. Used by ``elnet enhance --labels
        FILE`` and ``elnet evaluate`` with one polygon file of ground truth."""
        owner = feature_images(self.names[0], self.images)
        return unplaced_note(owner, self.images or (), where)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class SharedRaster:
    """One raster label file for several scenes or images (``elnet scene --image FOLDER --labels
    region.tif``, :func:`~sam2elnet.pipeline.scene_files.shared_coarse`; ``elnet enhance
    --images FOLDER --labels region.tif``; :func:`share_raster`): a regional label, not one
    scene's own, placed on each by map position. It stands where the file's path stands (``os.fspath``, ``str`` and
    ``Path(...)`` give ``path``); picklable. A scene or image whose footprint it misses is not
    refused (:func:`~sam2elnet.data.grid_cover.no_overlap_error`, the rule for one scene's own
    label) but, with the one warning per run of a shared file (:func:`warn_no_features`),
    predicted without a coarse label, as ``annotate`` predicts it (whole images, images
    predicted window by window and scenes alike:
    :class:`~sam2elnet.data.grid_cover.FootprintMissed`), where a :class:`SharedVector` gives
    such an image an empty coarse label."""

    path: Path

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)


def share_raster(labels: str | Path, images: Sequence[object]) -> SharedRaster | None:
    """``labels`` as one raster label for all ``images`` (:class:`SharedRaster`): a raster file
    (not a folder, not a vector file) given for two or more images. None otherwise (a folder of
    labels, a vector file: :func:`share_vectors`; one image's own label; a missing file, which
    the reader names)."""
    from sam2elnet.data.vector import is_vector_path

    p = Path(labels)
    if len(images) < 2 or not p.is_file() or is_vector_path(p):
        return None
    return SharedRaster(p)


def check_raster_placeable(
    shared: SharedRaster, images: Sequence[Path], what: str = "image"
) -> None:
    """Refuse, before the model loads, one raster label for several images (``shared``) when
    none of ``images`` has a georeference (CRS + transform, or GCPs;
    :func:`~sam2elnet.data.georef.georeferenced`): it is placed by map position only. In a
    folder mixing georeferenced and plain images each plain one is skipped by the job with the
    reason (:func:`~sam2elnet.data.grid_cover.check_shared_georef`).

    Raises:
        UserError: no image of ``images`` is georeferenced, naming ``shared.path`` and what to
            do.
    """
    from sam2elnet.data.georef import georeferenced

    if images and not any(georeferenced(p) for p in images):
        raise UserError(
            f"is one raster label for all {what}s, placed on each by map position, but "
            f"{none_of(len(images), what, 'has a georeference', 'has no georeference')} "
            "(CRS + transform, or ground control points); georeference them, or give a folder "
            f"of labels named like the {what}s",
            shared.path,
        )


def is_shared(label: object) -> bool:
    """Whether ``label`` is one label file for several images: a :class:`SharedVector` with
    ``many`` (placed by :func:`~sam2elnet.data.vector_names.image_frame`) or a
    :class:`SharedRaster`. An image it does not touch takes an empty label
    (:func:`warn_no_features`)."""
    return (isinstance(label, SharedVector) and label.many) or isinstance(label, SharedRaster)


def frame_of(label: object) -> Any:
    """The parsed features of a :class:`SharedVector` (``frame``); None for anything else
    (a path: the reader reads the file itself)."""
    return label.frame if isinstance(label, SharedVector) else None


def share_vectors(
    paths: Iterable[str | Path],
    strict: bool = False,
    layer: str | None = None,
    where: str | Path | None = None,
) -> dict[Path, SharedVector]:
    """Each vector file (:func:`~sam2elnet.data.vector.is_vector_path`) that ``paths`` name two
    or more times, read once: file -> :class:`SharedVector`. Files named once and raster files
    are left out.

    ``layer`` (``elnet enhance --layer``): the layer read from each vector file, which is then
    read here even when named once (the readers take its frame, never the file's default
    layer; such a file is one image's own, ``many`` False); a file without that layer is a
    DataError listing its layers (:func:`~sam2elnet.data.vector_layers.check_layer`), raised
    with ``strict``. ``where``: the ``--labels`` given (a folder), named by the error of
    ``layer`` with raster labels (None: the first label).

    A file that cannot be read (unreadable, no features): with ``strict`` (a job whose images
    all take their coarse labels from it, ``enhance --labels FILE.gpkg``, ``scene`` with a
    folder of scenes) the reader's DataError is raised here, once, before any image is
    predicted; it made every image fail with the same message (one warning per image, then
    the closing error listing it again). Without ``strict`` (the report's cards) it is left
    out: each item that names it reads it itself and reports the error.

    Raises:
        DataError: ``strict`` and a file several images name (any, with ``layer``) cannot be
            read.
        UserError: ``layer`` and no vector file among ``paths`` (raster coarse labels).
    """
    from sam2elnet.data.vector import is_vector_path, read_vector

    paths = list(paths)
    uses = Counter(Path(p) for p in paths if is_vector_path(p))
    if layer is not None and not uses and paths:
        raise UserError(
            f"--layer {layer!r} applies to vector coarse labels (GeoPackage / Shapefile / "
            "GeoJSON); these are raster masks: drop --layer",
            Path(where if where is not None else paths[0]),
        )
    shared: dict[Path, SharedVector] = {}
    for p, n in uses.items():
        if n < 2 and layer is None:
            continue
        try:
            shared[p] = SharedVector(p, read_vector(p, layer=layer), many=n > 1)
        except DataError:
            if strict:
                raise
    return shared


def warn_no_width(label: object, line_width: float | None) -> None:
    """Say once per run that the line (and point) features of one vector file for several
    images (:func:`is_shared`: ``enhance --labels roads.gpkg``, ``scene`` with a folder of
    scenes) are read without a line width: lines burnt 1 px wide, points skipped
    (:func:`~sam2elnet.data.vector_kinds.layer_no_width_notes`, counted over the whole file).
    The readers collect these notes for a shared file without saying them (each image would
    repeat them); a file of one image's own says them itself. No-op with a ``line_width`` or for anything
    but a shared file."""
    if line_width is not None or not is_shared(label) or frame_of(label) is None:
        return  # a shared raster has no lines
    from sam2elnet.data.vector_kinds import layer_no_width_notes

    for msg, kind in layer_no_width_notes(Path(label), frame_of(label)):
        warn_once(log, kind, msg)


FILE_NOTE_KINDS = frozenset(
    {
        "vector labels without a CRS, assumed in the image CRS",
        "invalid vector geometries repaired",
        "vector features that cannot be placed in the image CRS",
    }
)
"""The reader's notes (:meth:`~sam2elnet.data.vector.VectorLabels.from_file` kinds) that say
something about a shared file itself, not about one image's part of it: said once for the file
by :func:`say_file_notes`."""


def say_file_notes(label: object, notes: Iterable[tuple[str, str]]) -> None:
    """Say the notes of the reader of one vector file for several images (:func:`is_shared`:
    ``enhance --labels slicks.gpkg`` with a folder, ``scene`` with a folder of scenes) that are
    about the file itself (:data:`FILE_NOTE_KINDS`: no CRS, so taken to be in the images' CRS;
    invalid geometries repaired; features that cannot be placed), once per run and file
    (``warn_once`` keyed by the file, so the chunks of a folder job say it once too). The
    readers collect them for a shared file without saying them; before, nobody did, and a
    folder job took a CRS-less layer to be in its images' CRS without a word.

    Args:
        label: the shared file (a path or :class:`SharedVector`).
        notes: ``(text, kind)`` pairs, as ``rasterize_vector(note_kinds=...)`` gives them or
            ``zip(VectorLabels.notes, VectorLabels.note_kinds)``.
    """
    key = str(Path(label))  # type: ignore[arg-type]  # a SharedVector gives its path
    for text, kind in notes:
        if kind in FILE_NOTE_KINDS:
            warn_once(log, kind, text, key=key)


SHARED_EMPTY_KIND = "images that the one coarse-label file does not touch"
"""The kind :func:`warn_no_features` is counted by (once per run, the rest counted)."""


def warn_no_features(
    image: str | Path,
    vector_path: str | Path,
    by_name: bool | None = None,
    raster: bool = False,
    annotated: bool = False,
) -> None:
    """Say, once per run (the others counted), that ``image`` got an empty coarse label because
    no feature of ``vector_path``, one label file for several images (``enhance --labels
    FILE.gpkg`` with a folder of images, ``scene`` with a folder of scenes), lies on it; with
    ``raster``, because the footprint of ``vector_path``, one raster label for a folder of scenes
    or images (:class:`SharedRaster`, ``scene`` / ``enhance --labels region.tif``), does not
    overlap it (:func:`~sam2elnet.data.grid_cover.footprint_missed`).

    The run's closing note names the first few such images and counts the rest
    (``the warning above (...) applied to 5 images in all (a.tif, b.tif, c.tif (+2))``,
    :func:`~sam2elnet.utils.run_warnings.repeated_notes`).

    Such an image is enhanced from the empty label (a whole image's label then stays empty
    unless ``--new-objects keep``; an image or scene a shared raster misses: ``annotated``,
    below), as ``elnet evaluate`` scores a prediction outside a shared truth file against an
    empty truth; before, it was skipped with "none of the label features overlaps the image;
    check the label CRS", which blamed the CRS for an image nobody drew on (a raster: "does not
    overlap the scene at all"). An image without
    georeference takes the features whose ``source`` / ``label`` names it
    (:func:`~sam2elnet.data.vector.rasterize_vector`): there no CRS is involved, and the
    warning says to check those names instead. ``by_name``: whether that is the case (None:
    ``image`` is an image file, worked out from it; a scene is never placed by name; never
    with ``raster``). ``annotated`` (with ``raster``: an ``enhance`` image or a scene, whose
    coarse label is then absent, not empty, :class:`~sam2elnet.data.grid_cover.FootprintMissed`): the
    warning says the image is predicted without a coarse label, as ``elnet annotate`` predicts
    it.
    """
    if raster:
        what = f"{vector_path} (one label file for all images) does not overlap this image"
        check = "the label's CRS and georeference (gdalinfo)"
    elif _placed_by_name(image) if by_name is None else by_name:
        what = (
            f"no feature of {vector_path} (one label file for all images) names this image (no "
            "georeference: the features are matched by their "
            f"{' / '.join(IMAGE_NAME_ATTRIBUTES)} attribute, the image's file name)"
        )
        check = f"the {' / '.join(IMAGE_NAME_ATTRIBUTES)} names of its features"
    else:
        what = f"no feature of {vector_path} (one label file for all images) lies on this image"
        check = "the label CRS"
    then = (
        "predicted without a coarse label (as elnet annotate predicts it)"
        if raster and annotated
        else "enhanced from an empty coarse label (nothing drawn there)"
    )
    warn_once(
        log,
        SHARED_EMPTY_KIND,
        f"{image}: {what}, so it is {then}; if the file should cover it, check {check}",
        item=Path(image).name,
    )


def _placed_by_name(image: str | Path) -> bool:
    """Whether a shared file is placed on ``image`` by name: an image file without
    georeference (CRS + transform, or GCPs; :func:`~sam2elnet.data.vector_grid.image_grid`),
    the case of :func:`~sam2elnet.data.vector.rasterize_vector`; False when it cannot be
    opened."""
    import rasterio

    from sam2elnet.data.vector_grid import image_grid

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(image) as ds:
                return image_grid(ds)[0] is None
    except Exception:  # noqa: BLE001 - only the wording depends on it
        return False


def check_placeable(shared: SharedVector, images: Sequence[Path]) -> list[Path]:
    """Refuse, before any image is read, a file that serves ``images`` and can be placed on none
    of them: every image lacks a georeference (CRS + transform, or GCPs;
    :func:`~sam2elnet.data.georef.georeferenced`) and the layer has a CRS (map coordinates, no
    map to put them on), no ``source`` / ``label`` attributes (its pixel coordinates would put
    the same polygons on every image), or features naming none of them (by stem). The
    georeferenced images take the file by map position. In a folder mixing georeferenced and
    plain images the plain ones the file cannot be placed on are returned: each is skipped by
    the job with the same reason (:func:`~sam2elnet.data.vector_names.image_frame`, the
    per-image form of the message; batch jobs skip bad items), in the words of
    ``shared.command``.

    Returns:
        The images of ``images`` the file cannot be placed on (empty: all can).

    Raises:
        UserError: no image can take the file, naming ``shared.path``, how many images, why,
            and what to do (:func:`~sam2elnet.data.vector_names.unplaceable_message`).
    """
    from sam2elnet.data.georef import georeferenced

    plain = [p for p in images if not georeferenced(p)]
    if not plain:
        return []
    gdf, n = shared.frame, len(images)
    crs = gdf.crs.to_string() if gdf.crs is not None else None
    stems, named = shared.names
    why = None if crs is not None else unplaceable_reason(stems, named, [p.stem for p in plain])
    if crs is None and why is None:
        return []  # by name, in pixel coordinates
    if len(plain) == n:
        raise UserError(
            unplaceable_message(shared.path, why or "", plain, n, crs, shared.command),
            shared.path,
        )
    return plain
