"""A scene's coarse label, read window by window on the scene's pixel grid.

:class:`CoarseSource` is what :class:`sam2elnet.engine.scene_inputs.SceneInputs` (``elnet scene
--labels``, large ``elnet enhance`` images) and the change maps read coarse labels with: a vector
file rasterised per window (:class:`sam2elnet.data.vector.VectorLabels`), or a raster placed on
the scene grid by the one rule of :mod:`sam2elnet.data.grids` (the rule of ``elnet evaluate`` and
of whole-image ``enhance``, :func:`sam2elnet.data.masks.read_mask_on_grid`): the same grid, or a
side without georeference, by pixel index; another grid by map position, nearest neighbour,
through the GCPs (thin plate spline) for a GCP-only scene or label: placed on the scene grid
once, when the label is opened, into a temporary compressed GeoTIFF (GDAL's chunked warp,
bounded memory; one GCP transformer for the scene), from which windows are then read.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.grid_cover import (
    FULL_COVER,
    PARTIAL_COVER_KIND,
    check_shared_georef,
    footprint_missed,
    footprint_share,
    partial_cover_note,
)
from sam2elnet.data.grids import dataset_header, other_grid, resample_nearest
from sam2elnet.data.mask_values import mask_encoding
from sam2elnet.data.masks import KIND_NO_GEOREF_LABEL, pixel_index_note
from sam2elnet.data.tiling import Window, decimated_read
from sam2elnet.data.vector_names import image_frame, in_map
from sam2elnet.data.vector_shared import (
    SharedVector,
    frame_of,
    is_shared,
    say_file_notes,
    warn_no_features,
)
from sam2elnet.errors import DataError
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = ["CoarseSource"]

_ENCODING_PIXELS = 250_000
"""Pixels of the decimated read of a coarse raster that decides its value encoding."""


class CoarseSource:
    """Coarse label per window of an open scene: a raster on any grid, or a vector file.

    A raster's values are decoded by :func:`sam2elnet.data.mask_values.mask_encoding` (decided
    on a decimated read of the whole label; ``positive_values``: the object value(s) of a
    class-index label, as ``--positive-values``). A raster on another grid than the scene
    (:func:`sam2elnet.data.grids.other_grid`) is resampled onto the scene grid once by
    :func:`sam2elnet.data.grids.resample_nearest` (a temporary GeoTIFF, removed by
    :meth:`close`); scene pixels outside its footprint are background. Such a raster whose
    footprint misses the scene is refused, one covering only part of it is warned about
    (:func:`sam2elnet.data.grid_cover.footprint_share`); one raster for several scenes (a
    :class:`~sam2elnet.data.vector_shared.SharedRaster`) that misses the scene gives the scene
    no coarse label at all: after the shared file's one warning per run it raises
    :class:`~sam2elnet.data.grid_cover.FootprintMissed`, and the scene is predicted as without
    ``--labels`` (:class:`~sam2elnet.engine.scene_inputs.SceneInputs`), as a whole ``enhance``
    image is (a shared vector file that misses it still gives an empty label).

    Args:
        path: the label file (raster, or GeoJSON / GPKG / SHP, :func:`~sam2elnet.data.vector.
            is_vector_path`), or a vector file already read
            (:class:`~sam2elnet.data.vector_shared.SharedVector`: not read again), or a raster
            serving several scenes (:class:`~sam2elnet.data.vector_shared.SharedRaster`).
        scene: the open rasterio dataset of the scene.
        line_width / line_width_unit / pixel_coords: vector labels only
            (:meth:`sam2elnet.data.vector.VectorLabels.from_file`).
        positive_values: object value(s) of a class-index raster label.
        quiet: no warning for a raster on another grid that covers only part of the scene, nor
            for a scene that a shared file (a
            :class:`~sam2elnet.data.vector_shared.SharedVector` or ``SharedRaster``, which
            serves several scenes or images: one it does not touch gets an empty label, or
            none, :func:`~sam2elnet.data.vector_shared.warn_no_features`) does not touch (said
            once already).
        place: False: a raster on another grid is checked (its size, georeference and values)
            but not resampled onto the scene, and :meth:`read` must not be called: the look
            before the model loads (:func:`sam2elnet.engine.scene_inputs.precheck_coarse`).

    Raises:
        DataError: missing or unreadable label; a raster of another size when the scene or the
            label has no georeference; a raster on another grid whose footprint does not
            overlap the scene (:func:`sam2elnet.data.grid_cover.no_overlap_error`; not for a
            :class:`~sam2elnet.data.vector_shared.SharedRaster`); a ``SharedRaster`` or scene
            without georeference (:func:`sam2elnet.data.grid_cover.check_shared_georef`); GCPs
            GDAL cannot place the label with.
        FootprintMissed: a ``SharedRaster`` whose footprint misses the scene, after the
            warning (:func:`sam2elnet.data.grid_cover.footprint_missed`; not an error: the
            scene has no coarse label).
    """

    def __init__(
        self,
        path: str | Path | SharedVector,
        scene: Any,
        *,
        line_width: float | None = None,
        line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
        pixel_coords: bool = False,
        positive_values: tuple[float, ...] | None = None,
        quiet: bool = False,
        place: bool = True,
    ) -> None:
        from sam2elnet.data.vector import VectorLabels, is_vector_path
        from sam2elnet.data.vector_grid import image_grid

        self.path = Path(path)
        self._scene_name = str(scene.name)
        self._ds: Any = None
        self._placed: Any = None  # the label on the scene grid (another grid only)
        self._tmp: Any = None
        self._vec = None
        self.notes: list[str] = []
        if not self.path.exists():
            raise DataError("coarse label file does not exist; check the path", self.path)
        if is_vector_path(self.path):
            crs, transform, gcps = image_grid(scene)  # GCP-only scenes: through their GCPs
            # one file for several scenes / images: one it does not touch gets an empty label
            shared = is_shared(path)
            frame = frame_of(path)
            if shared:  # the features that belong to this scene, as rasterize_vector takes them
                mapped = in_map(
                    frame.crs is not None, crs is not None, gcps is not None, pixel_coords
                )
                frame = image_frame(path, frame, Path(scene.name), crs is not None, mapped=mapped)
            self._vec = VectorLabels.from_file(
                self.path,
                frame=frame,
                crs=crs,
                transform=transform,
                gcps=gcps,
                height=scene.height,
                width=scene.width,
                line_width=line_width,
                line_width_unit=line_width_unit,
                pixel_coords=pixel_coords,
                shared=shared,
            )
            self.notes = list(self._vec.notes)
            if shared:  # no CRS, repairs: once for the file (the reader said nothing)
                say_file_notes(self.path, zip(self._vec.notes, self._vec.note_kinds, strict=True))
            if shared and not self._vec.geoms and not quiet:
                warn_no_features(self._scene_name, self.path, by_name=shared and crs is None)
            return
        import rasterio

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._ds = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as err:
            raise DataError(raster_error_text("coarse label raster", err), self.path) from None
        try:
            self._open_raster(scene, positive_values, place, quiet, is_shared(path))
        except BaseException:
            self.close()
            raise

    def _open_raster(
        self,
        scene: Any,
        positive_values: tuple[float, ...] | None,
        place: bool = True,
        quiet: bool = False,
        shared: bool = False,
    ) -> None:
        ds = self._ds
        lab, img = dataset_header(ds), dataset_header(scene)
        if shared:  # a regional label is placed by map position, or not at all
            check_shared_georef(self.path, self._scene_name, lab.geo, img.geo, "scene")
        grid = other_grid(lab, img)
        if grid is not None:
            self.notes.append(
                f"{self.path.name}: placed on the scene grid by map position ({grid.describe()})"
            )
            log.info(self.notes[-1])
            self._check_cover(grid, quiet, shared)
        elif lab.shape != img.shape:
            raise DataError(
                f"coarse label raster is {ds.width}x{ds.height} px but the scene is "
                f"{scene.width}x{scene.height} and one of them has no georeference (CRS + "
                "transform, or ground control points), so it cannot be aligned; give a label on "
                "the scene's grid",
                self.path,
            )
        elif (note := pixel_index_note(self.path, lab.geo, img.geo, "the scene")) is not None:
            self.notes.append(note)
            warn_once(log, KIND_NO_GEOREF_LABEL, note)
        self._nodata = ds.nodata
        ov = decimated_read(ds, [1], _ENCODING_PIXELS)[0][0]
        self._encoding = mask_encoding(
            ov, nodata=self._nodata, positive_values=positive_values, path=self.path
        )
        if grid is not None and place:
            self._place(grid, scene)

    def _check_cover(self, grid: Any, quiet: bool, shared: bool = False) -> None:
        """Refuse a label on another grid whose footprint misses the scene, or, ``shared`` (one
        raster for several scenes, :class:`~sam2elnet.data.vector_shared.SharedRaster`), raise
        :class:`~sam2elnet.data.grid_cover.FootprintMissed` after the shared file's warning
        (unless ``quiet``, :func:`~sam2elnet.data.vector_shared.warn_no_features`): the scene
        has no coarse label; warn (unless ``quiet``) when it covers only part of it
        (:func:`~sam2elnet.data.grid_cover.footprint_share`)."""
        share = footprint_share(grid, path=self.path, like=self._scene_name)
        if share <= 0:  # refused, or (shared) no coarse label: FootprintMissed
            footprint_missed(
                self.path, self._scene_name, grid, what="scene", shared=shared, quiet=quiet,
                annotated=True,
            )  # fmt: skip
        if share < FULL_COVER:
            self.notes.append(partial_cover_note(self.path, self._scene_name, share, "scene"))
            if not quiet:
                warn_once(log, PARTIAL_COVER_KIND, self.notes[-1])

    def _place(self, grid: Any, scene: Any) -> None:
        """Resample the label onto the scene grid once, into a temporary GeoTIFF."""
        import rasterio

        self._tmp = tempfile.TemporaryDirectory(prefix="elnet-coarse-")
        out = Path(self._tmp.name) / "coarse_on_scene.tif"
        fill = 0 if self._nodata is None else self._nodata  # outside the label: background
        src = rasterio.band(self._ds, 1)
        kw = {"fill": fill, "src_nodata": self._nodata, "path": self.path, "like": scene.name}
        resample_nearest(src, grid, out_path=out, **kw)
        self._placed = rasterio.open(out)

    def read(self, w: Window) -> np.ndarray:
        """uint8 (h, w) 0/1 coarse mask for window ``w`` of the scene."""
        if self._vec is not None:
            return self._vec.rasterize(w)
        a = (self._placed or self._ds).read(1, window=w.to_rasterio())
        return self._encoding.apply(a)[0].astype(np.uint8)

    def close(self) -> None:
        """Close the label raster and remove its placed copy (vector labels hold no file)."""
        for ds in (self._placed, self._ds):
            if ds is not None:
                ds.close()
        self._placed = self._ds = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
