"""Polygon files of ``elnet evaluate`` (ground truth, baseline labels, valid areas) placed on each
prediction's grid (:class:`VectorTruth`), with the per-CRS cache of a file shared by many
predictions; :class:`PolygonFiles` holds every polygon file of one evaluation.

``--pred FOLDER --truth labels.gpkg`` scores every prediction against the polygons in its
footprint. The reader (:func:`sam2elnet.data.vector.rasterize_vector`) reprojects a label file
to the image's CRS and repairs invalid geometries every time it places it; for one file shared
by many tiles that is the same work once per tile. :class:`VectorTruth` therefore reprojects and
repairs the shared file once per prediction CRS, keeps a spatial index of the result, and hands
the reader only the features whose bounding boxes meet a prediction's footprint, which the
reader then places exactly as before (the same pixels: it keeps only what meets the footprint).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import georeferenced
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit
from sam2elnet.utils.advice import none_of, plural

log = logging.getLogger(__name__)

__all__ = ["PolygonFiles", "VectorTruth", "layer_check", "need_georeference"]


@dataclass
class VectorTruth:
    """Polygon ground truth (GeoPackage / Shapefile / GeoJSON) rasterised onto each prediction's
    grid by :func:`sam2elnet.data.vector.rasterize_vector` (the reader of vector labels for
    training and enhance: CRS reprojection, GCP-only images, pixel coordinates of images
    without georeference as QGIS draws them, repaired geometries; lines burnt 1 px wide).

    ``path``: the one file shared by every prediction (``--truth labels.gpkg`` with a prediction
    folder), read once into ``frame``; a prediction whose footprint no polygon of it meets gets
    an all-background truth, and the reader's notes are logged once (``notes``). None: one file
    per prediction, where no polygon on the prediction is an error naming the file.

    ``line_width`` / ``line_width_unit``: line (and point) features are buffered to that total
    width, in ``"map"`` units of the prediction's CRS or ``"px"``, before rasterising (None:
    lines burnt 1 px wide, points dropped; :meth:`~sam2elnet.data.vector.VectorLabels.from_file`).

    ``reuse`` (shared file only): reproject and repair ``frame`` once per prediction CRS and
    pass each prediction only the features near its footprint (:meth:`_part`); False places
    the whole file on every prediction (the same masks, more work: for measurements).
    """

    path: Path | None = None
    frame: Any = None
    notes: list[str] = field(default_factory=list)
    line_width: float | None = None
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT
    reuse: bool = True
    layer: str | None = None
    #: the stems of the rasters it is placed on (a feature whose ``source`` / ``label`` names
    #: another of them is not this one's, :func:`~sam2elnet.data.vector_names.image_frame`)
    images: frozenset[str] | None = None
    #: ``frame`` is one pair's own file (``--pred FILE --truth FILE --truth-layer``): placed as
    #: a file of its own (no feature on the prediction: error; pixel coordinates without
    #: georeference), not as one file for many predictions
    own: bool = False
    _placed: dict[str, tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False)
    _kinds: set[str] = field(default_factory=set, init=False, repr=False)
    _sv: Any = field(default=None, init=False, repr=False)

    @classmethod
    def shared(cls, path: Path, layer: str | None = None) -> VectorTruth:
        """Read ``path`` once (DataError naming it when it cannot be read or has no features);
        ``layer``: that layer (None: :func:`~sam2elnet.data.vector_layers.default_layer`), kept
        in :attr:`layer` for the messages that describe it."""
        from sam2elnet.data.vector import read_vector

        return cls(path, read_vector(path, layer=layer), layer=layer)

    @classmethod
    def truth_layer(cls, truth: Path, layer: str | None) -> VectorTruth | None:
        """``elnet evaluate --truth-layer``: the ``layer`` of the polygon file ``truth``, read
        once (None without ``layer``). It names the ground truth's layer only (``--baseline`` /
        ``--valid`` / ``--pred`` polygon files are read from their default layer).

        Raises:
            UserError: ``layer`` with a ``truth`` that is not one polygon file (a folder).
            DataError: ``truth`` has no such layer (the message lists its layers) or cannot be
                read.
        """
        from sam2elnet.data.vector import is_vector_path, read_vector

        if layer is None:
            return None
        if not (truth.is_file() and is_vector_path(truth)):
            raise UserError(
                f"--truth-layer {layer!r} names a layer of one --truth polygon file "
                "(GeoPackage / Shapefile / GeoJSON); this is not one: drop --truth-layer",
                truth,
            )
        return cls(truth, read_vector(truth, layer, option="--truth-layer"), layer=layer)

    def on_grid(self, truth: Path, pred: Path) -> np.ndarray:
        """bool (H, W) on ``pred``'s grid, True inside a polygon of ``truth``.

        Raises:
            DataError: unreadable file, no feature on the prediction (a file of its own), or a
                shared file with a prediction without georeference (names the prediction).
        """
        from sam2elnet.data.vector import VectorLabels, rasterize_vector
        from sam2elnet.data.vector_names import image_frame

        held = self.path is not None and Path(truth) == self.path
        shared = held and not self.own
        width = {"line_width": self.line_width, "line_width_unit": self.line_width_unit}
        notes: list[str] = []
        grid = self._grid(pred) if shared and self.reuse else None
        if grid is not None and grid[0][0] is not None and self.frame.crs is not None:
            (crs, transform, gcps), h, w = grid  # the grid read once: placed as the reader does
            part = self._part(crs, transform, gcps, h, w)
            part = image_frame(self.as_shared(), part, pred, True)  # as import takes them
            labels = VectorLabels.from_file(
                truth, crs=crs, transform=transform, gcps=gcps, height=h, width=w,
                frame=part, shared=True, **width,
            )  # fmt: skip
            notes, mask = labels.notes, labels.rasterize().astype(bool)
        else:  # a file per prediction, or what the reader alone says (no CRS: its error)
            frame = self.frame if held else None
            src = self.as_shared() if shared else truth  # its image names worked out once
            mask = rasterize_vector(src, pred, frame=frame, shared=shared, notes=notes, **width)
        for n in notes if shared else ():
            self._note(n)
        return mask

    def _note(self, msg: str) -> None:
        """Log a reader note once per kind: notes that differ only in their numbers (counts of
        one tile's part of the file, '1 line feature' / '3 line features') are one kind; the
        first, of the whole file, is said."""
        kind = re.sub(r"s\b", "", re.sub(r"\d+", "#", msg))  # plural or singular: one kind
        if kind not in self._kinds:
            self._kinds.add(kind)
            log.warning("%s", msg)
            self.notes.append(msg)

    @staticmethod
    def _grid(pred: Path) -> tuple[tuple[Any, Any, Any], int, int] | None:
        """((crs, transform, gcps), height, width) of ``pred``
        (:func:`sam2elnet.data.vector_grid.image_grid`); None when it cannot be opened (the reader
        then raises the DataError that names it)."""
        import rasterio

        from sam2elnet.data.vector_grid import image_grid

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with rasterio.open(pred) as src:
                    return image_grid(src), src.height, src.width
        except Exception:  # noqa: BLE001
            return None

    def as_shared(self) -> Any:
        """The shared file and ``frame`` as a :class:`~sam2elnet.data.vector_shared.SharedVector`
        (made once): the reader then works out which image each feature names once."""
        from sam2elnet.data.vector_shared import SharedVector

        sv = self._sv  # in evaluate's words; made again when frame or images were replaced
        if sv is None or sv.frame is not self.frame or sv.images is not self.images:
            self._sv = SharedVector(self.path, self.frame, images=self.images, command="evaluate")
        return self._sv

    def _part(self, crs: Any, transform: Any, gcps: Any, h: int, w: int) -> Any:
        """The shared ``frame`` as a prediction on this grid needs it: in its CRS, repaired
        (both once per CRS, :meth:`_place`) and, on a CRS + transform grid, only the features
        whose bounding boxes meet its footprint grown by ``line_width`` and a pixel (the reader
        keeps exactly those meeting the footprint, so the mask is the same). The first
        prediction of each CRS, GCP-only grids and a file that cannot be reprojected (the reader
        says why) get the whole frame."""
        from shapely.geometry import box

        key = crs.to_wkt()
        first = key not in self._placed
        if first:
            self._placed[key] = self._place(crs)
        frame, tree = self._placed[key]
        # the first prediction of a CRS takes the whole file, so the reader's notes count the
        # whole file (points dropped, lines burnt 1 px wide); GCP-only: no affine footprint
        if first or tree is None or gcps is not None:
            return frame
        xs, ys = zip(*(transform * (c, r) for c in (0, w) for r in (0, h)), strict=True)
        pix = max(np.hypot(transform.a, transform.d), np.hypot(transform.b, transform.e))
        grow = pix
        if self.line_width is not None:
            grow += self.line_width * (pix if self.line_width_unit == "px" else 1.0)
        near = tree.query(box(min(xs) - grow, min(ys) - grow, max(xs) + grow, max(ys) + grow))
        return frame.iloc[np.sort(near)]

    def _place(self, crs: Any) -> tuple[Any, Any]:
        """``frame`` in ``crs`` (:func:`~sam2elnet.data.vector_grid.in_image_crs`), features that
        cannot be placed there dropped and invalid geometries repaired
        (:func:`~sam2elnet.data.vector.clean_placed`): the reader's own steps, with its notes
        said once; and an STRtree of the geometries. A reprojection that fails leaves the frame
        and no tree (the reader raises per prediction)."""
        import shapely

        from sam2elnet.data.vector import clean_placed
        from sam2elnet.data.vector_grid import in_image_crs

        try:
            gdf = in_image_crs(self.frame, crs, self.path)
        except DataError:  # the reader's DataError says it per prediction
            return self.frame, None
        original = np.asarray(gdf.geometry.values, dtype=object)
        geoms, kept = clean_placed(original, self.path, lambda msg, _kind: self._note(msg))
        if geoms is not original:  # features dropped or repaired
            gdf = gdf[kept].set_geometry(list(geoms), crs=gdf.crs)
        return gdf, shapely.STRtree(geoms)


@dataclass
class PolygonFiles:
    """Every polygon file of one evaluation, placed on the predictions' grids by one placement
    (:meth:`VectorTruth.on_grid`): ground truth (``--truth``), baseline labels (``--baseline``)
    and valid areas (``--valid``). A file given for a whole prediction folder is ``shared``
    (path -> its :class:`VectorTruth`, read once, placed once per CRS; features outside a
    prediction ignored); any other polygon file is one prediction's, placed on its own
    (no feature on it: DataError naming the file). ``line_width`` / ``line_width_unit``: as
    :class:`VectorTruth`, for every file.
    """

    shared: dict[Path, VectorTruth] = field(default_factory=dict)
    line_width: float | None = None
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT

    def share(self, path: Path, layer: VectorTruth | None = None) -> VectorTruth:
        """Register ``path`` as a file shared by every prediction (``layer``: already read; else
        read here, DataError naming it when it cannot be read or has no features). Returns the
        registered :class:`VectorTruth`, whose ``line_width`` / ``line_width_unit`` are set to
        this object's (a ``layer`` handed in is changed in place: every file of one evaluation
        is placed with one line width)."""
        key = Path(path)
        if key not in self.shared:
            self.shared[key] = layer if layer is not None else VectorTruth.shared(key)
        got = self.shared[key]
        got.line_width, got.line_width_unit = self.line_width, self.line_width_unit
        return got

    def on_grid(self, path: Path, pred: Path) -> np.ndarray:
        """bool (H, W) on ``pred``'s grid, True inside a polygon of ``path``
        (:meth:`VectorTruth.on_grid`). Raises DataError as it."""
        vt = self.shared.get(Path(path))
        if vt is None:
            vt = VectorTruth(line_width=self.line_width, line_width_unit=self.line_width_unit)
        return vt.on_grid(path, pred)


def need_georeference(
    files: Sequence[Path], noun: str, remedy: str, path: Path, where: str = ""
) -> None:
    """UserError naming ``path`` (the one polygon file) when none of ``files`` (the rasters it
    would be placed on; none: no error) is :func:`~sam2elnet.data.georef.georeferenced`: one polygon file shared by
    many rasters is placed by map position only. ``noun``: one raster as the message names it
    (e.g. ``"prediction"``; counted: ``"none of the 2 predictions"``, ``"the only
    prediction"``); ``where``: where they are (e.g. ``"in preds/"``; '' for nothing);
    ``remedy``: what to do instead (the message's end, after ``"; "``)."""
    if files and not any(georeferenced(f) for f in files):
        w = f"{where} " if where else ""
        why = "(CRS + transform, or GCPs), so the polygons of one file cannot be placed on"
        said = none_of(
            len(files),
            noun,
            f"{w}has a georeference {why} them",
            f"{w}has no georeference {why} it",
        )
        raise UserError(f"{said}; {remedy}", path)


def layer_check(
    path: Path,
    confusions: Sequence[Any],
    role: str = "truth",
    names: Sequence[str] = (),
    layer: str | None = None,
) -> None:
    """After scoring every pair against one shared polygon file (:class:`VectorTruth`):
    DataError naming ``path`` when no polygon covered a counted pixel of any pair (almost
    always a CRS mix-up or another area; ``confusions``: the pairs'
    :class:`~sam2elnet.engine.metrics.Confusion`, of the baseline for ``"baseline"``), else,
    when some pairs have none, one warning saying how many (all background, or for a valid area
    no pixel counted). ``role``: ``"truth"`` (the file is
    the ground truth: its pixels are TP + FN; the predictions' false positives count),
    ``"baseline"`` (the baseline labels: their pixels are the baseline's TP + FP),
    ``"prediction"`` (the predictions, placed on each truth's grid: their pixels are TP + FP)
    or ``"valid"`` (the valid area, ``--valid``: the pixels it leaves counted are every
    pixel of the confusion, :attr:`~sam2elnet.engine.metrics.Confusion.total`; a pair with none
    has no score, so the warning lists those pairs by ``names``, the pairs' names in the
    order of ``confusions``). ``layer``: the layer of ``path`` that was read (None: its default
    layer), whose CRS and extent the error gives.

    Raises:
        DataError: no pair has a pixel of the file (see above).
        KeyError: ``role`` is none of the four.
    """
    mine = {
        "truth": "",
        "baseline": "baseline ",
        "prediction": "predicted ",
        "valid": "valid-area ",
    }[role]
    pixels = {
        "truth": lambda c: c.tp + c.fn,
        "baseline": lambda c: c.tp + c.fp,
        "prediction": lambda c: c.tp + c.fp,
        "valid": lambda c: c.total,
    }[role]
    covered = [pixels(c) for c in confusions]
    on = "ground truth" if role == "prediction" else "prediction"
    if not any(covered):
        counted = "counted pixel" if role == "valid" else "pixel"
        from sam2elnet.data.vector_layers import layer_crs_extent

        own = layer_crs_extent(path, layer)
        raise DataError(
            f"none of its {mine}polygons covers a {counted} of the "
            f"{plural(len(covered), 'evaluated ' + on)}; check the layer's "
            f"CRS{f' ({own})' if own else ''} and that it covers the "
            f"{'truths' if role == 'prediction' else 'predictions'}' area (polygons are placed "
            "by map position)",
            path,
        )
    empty = [i for i, t in enumerate(covered) if t == 0]
    if not empty:
        return
    one = len(empty) == 1
    if role == "valid":  # no pixel counted: the pair has no score; say which pairs
        shown = ", ".join(names[i] for i in empty[:10]) if names else ""
        more = f", ... ({len(empty) - 10} more)" if names and len(empty) > 10 else ""
        log.warning(
            "%s: %d of %s %s no counted pixel inside its valid-area polygons, so %s no score%s",
            path, len(empty), plural(len(covered), on), "has" if one else "have",
            "it has" if one else "they have", f": {shown}{more}" if shown else "",
        )  # fmt: skip
        return
    then = {
        "truth": "scored as all background",
        "baseline": f"{'its' if one else 'their'} baseline label is all background",
        "prediction": "predicted as all background",
    }[role]
    log.warning(
        "%s: %d of %s %s no %spolygon in %s footprint: %s",
        path, len(empty), plural(len(covered), on), "has" if one else "have", mine,
        "its" if one else "their", then,
    )  # fmt: skip
