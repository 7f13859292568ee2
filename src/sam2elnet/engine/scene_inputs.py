"""Scene inputs: the open source raster, read window by window, normalised, with its coarse label.

:class:`SceneInputs` is what :func:`sam2elnet.engine.scene.predict_scene` reads windows from:
it opens the scene (:func:`open_scene`), says how it is georeferenced, freezes the predictor's
normalisation into scene-global statistics (:func:`sam2elnet.engine.scene_norm.
make_scene_normalizer`, so neighbouring windows see identical pixel values), opens the optional
coarse label (:class:`sam2elnet.engine.scene_coarse.CoarseSource`: a raster placed on the scene
grid, or a vector file rasterised per window) and yields normalised windows with their
valid-pixel masks.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.georef import MIN_GCPS
from sam2elnet.data.grid_cover import FootprintMissed
from sam2elnet.data.grids import GcpGrid
from sam2elnet.data.tiling import Window
from sam2elnet.data.validity import ALL_NODATA_FLAG, dataset_valid
from sam2elnet.data.vector_shared import SharedVector
from sam2elnet.data.windowed import gdal_env
from sam2elnet.engine.scene_coarse import CoarseSource
from sam2elnet.engine.scene_norm import (
    SceneNormalizer,
    ValueSpread,
    make_scene_normalizer,
    raw_flag,
    row_strips,
    scan_flag,
    unusable_scene_error,
)
from sam2elnet.errors import DataError
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit
from sam2elnet.utils.advice import plural
from sam2elnet.utils.run_warnings import quiet, warn_once

log = logging.getLogger(__name__)

__all__ = [
    "CoarseSource",  # re-exported: engine.scene_coarse
    "SceneInputs",
    "SceneNormalizer",  # re-exported: engine.scene_norm
    "make_scene_normalizer",  # re-exported: engine.scene_norm
    "coarse_options",
    "open_scene",
    "precheck_coarse",
    "precheck_scene",
    "scene_gdal_env",
]

_GDAL_ENV = gdal_env(128)
"""``gdal_env``: GDAL's block cache capped at 128 MB (not 5 % of RAM, past a gigabyte for a
20,000 px scene's blocks); ``GDAL_CACHEMAX`` in the environment overrides the cap."""


def scene_gdal_env() -> dict[str, Any]:
    """The GDAL options scenes are read with (``rasterio.Env(**scene_gdal_env())``):
    :data:`_GDAL_ENV`, less ``GDAL_CACHEMAX`` when the environment sets it."""
    env: dict[str, Any] = dict(_GDAL_ENV)
    if "GDAL_CACHEMAX" in os.environ:
        env.pop("GDAL_CACHEMAX")
    return env


def open_scene(path: Path) -> Any:
    """Open a scene raster for reading.

    Args:
        path: a raster file GDAL can read (GeoTIFF, VRT, ...).

    Returns:
        An open ``rasterio`` dataset (the caller closes it).

    Raises:
        DataError: the file is missing, empty, corrupt or not a raster.
    """
    import rasterio

    if not path.exists():
        raise DataError("scene does not exist; check the path", path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError("scene file is empty (0 bytes); re-export it or remove it", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            return rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise DataError(raster_error_text("scene", err), path) from None


# --------------------------------------------------------------------------------------------
# the scene, opened


def precheck_scene(path: str | Path, bands: list[int] | None = None) -> tuple[int, int]:
    """Refuse, before any model is loaded, a scene that every model refuses: all nodata, or a
    constant image (every valid pixel of every band read one value in the file). What a model
    would do to the pixels does not matter for those two (each scaling maps a band by one
    function), so ``elnet scene`` refuses such a scene in about a second instead of after
    loading the model and starting workers. "Constant after scaling" needs the model's
    normalisation: :meth:`SceneInputs.check_usable` decides it (and confirms these) later.

    The bands looked at are ``bands`` (``--bands``; out-of-range numbers are left to the model
    path's error) or every file band but an alpha one, so a scene is refused only when the
    bands any model would read are flat. Reads full-resolution strips until the valid pixels
    vary (:func:`~sam2elnet.engine.scene_norm.raw_flag`): a scene with content costs its first
    strips, a flat one one pass. Pixels are valid by the windows' rule
    (:func:`~sam2elnet.data.validity.dataset_valid`, finite values).

    Args:
        path: the scene file.
        bands: 1-based file bands to read, or None.

    Returns:
        The scene's (height, width), px, from the header read here (the caller's later checks
        need not open it again).

    Raises:
        DataError: the scene cannot be opened (:func:`open_scene`), or its flag
            (:func:`~sam2elnet.engine.scene_norm.unusable_scene_error`, the words of
            ``elnet scene``'s later check). A read error during the check raises nothing here:
            the prediction path reports it in its words.
    """
    import rasterio

    p = Path(path)
    with rasterio.Env(**scene_gdal_env()):
        src = open_scene(p)
        shape = (int(src.height), int(src.width))
        try:
            flag, stale = raw_flag(src, bands)
        except rasterio.errors.RasterioError:
            return shape
        finally:
            src.close()
    if flag:
        raise unusable_scene_error(flag, p, stale_overviews=stale)
    return shape


_COARSE_OPTIONS = ("line_width", "line_width_unit", "labels_pixel_coords", "coarse_positive_values")


def coarse_options(options: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` (keyword arguments of
    :func:`~sam2elnet.engine.scene.predict_scene`) that decide how its coarse label is read:
    those :func:`precheck_coarse` takes."""
    return {k: options[k] for k in _COARSE_OPTIONS if k in options}


def precheck_coarse(
    path: str | Path,
    coarse: str | Path | SharedVector,
    *,
    line_width: float | None = None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    labels_pixel_coords: bool = False,
    coarse_positive_values: tuple[float, ...] | None = None,
) -> None:
    """Refuse, before any model is loaded, the coarse label ``coarse`` (``elnet scene --labels
    FILE`` of one scene) that :class:`CoarseSource` refuses for the scene ``path`` when the
    scene is predicted: a vector file none of whose features overlaps the scene
    (:func:`~sam2elnet.data.vector_grid.no_overlap_message`), a raster on another grid whose
    footprint does not overlap the scene (:func:`~sam2elnet.data.grid_cover.no_overlap_error`),
    a raster of another size when one side has no georeference, a label that cannot be read or
    placed. The same reader and the
    same words as in :func:`~sam2elnet.engine.scene.predict_scene`, in about a second instead
    of after the model loaded and Ray workers started. A raster on another grid is not
    resampled here (that is done once, when the scene is predicted); what the reader warns
    about is said then, not here (:func:`~sam2elnet.utils.run_warnings.quiet`).

    Args:
        path: the scene file.
        coarse: the label file, or a vector file read once
            (:class:`~sam2elnet.data.vector_shared.SharedVector`, not read again).
        line_width / line_width_unit / labels_pixel_coords / coarse_positive_values: as
            :func:`~sam2elnet.engine.scene.predict_scene` takes them.

    Raises:
        DataError: the scene cannot be opened (:func:`open_scene`), or what
            :class:`CoarseSource` raises for the label.
    """
    import rasterio

    with rasterio.Env(**scene_gdal_env()), quiet():
        src = open_scene(Path(path))
        try:
            CoarseSource(
                coarse,
                src,
                line_width=line_width,
                line_width_unit=line_width_unit,
                pixel_coords=labels_pixel_coords,
                positive_values=coarse_positive_values,
                place=False,
            ).close()
        finally:
            src.close()


GCPS_KEPT_KIND = "image georeferenced by GCPs only, outputs keep the GCPs"
"""The :func:`~sam2elnet.utils.run_warnings.warn_once` kind of :func:`gcps_kept_note`: one
warning per run, the other images counted (``elnet scene`` folders, annotate / enhance)."""


def gcps_kept_note(path: Path, n_gcps: int, crs: Any, footprints: bool = False) -> str:
    """The warning of an image georeferenced by ground control points only (Sentinel-1 GRD: no
    CRS, no transform; at least :data:`~sam2elnet.data.georef.MIN_GCPS` GCPs with a CRS) whose
    outputs keep the GCPs (no ``--warp-to``), with what to do for map-grid outputs: the one text
    of ``elnet scene`` and of annotate / enhance, whole images
    (:func:`sam2elnet.engine.folder_chunk.process_chunk`) or window by window.

    Args:
        path: the image, named first.
        n_gcps: its number of GCPs; ``crs``: their CRS (as ``str`` shows it, e.g. ``EPSG:4326``).
        footprints: also say where the ``--quality-gpkg`` / ``tiles/`` window footprints are
            placed (the window-by-window path writes them).
    """
    where = (
        f"; tile footprints are in {crs}, placed with the affine fit to the GCPs that elnet "
        "export places the label's polygons with"
        if footprints
        else ""
    )
    return (
        f"{path} is georeferenced by {n_gcps} ground control points only (GCPs, in {crs}): the "
        f"output GeoTIFFs keep the GCPs{where}. For map-grid outputs use --warp-to utm (or a CRS "
        "such as EPSG:32635), or warp the scene first (e.g. gdalwarp -tps)"
    )


UNPLACEABLE_GCPS_KIND = "image whose GCPs cannot place it, outputs without a usable georeference"
"""The :func:`~sam2elnet.utils.run_warnings.warn_once` kind of :func:`unplaceable_gcps_note`: one
warning per run, the other images counted (``elnet scene``, annotate / enhance)."""


def unplaceable_gcps_note(path: Path, n_gcps: int, crs: Any, axes: str | None = None) -> str:
    """The warning of an image whose ground control points cannot place it
    (:func:`~sam2elnet.data.georef.grid_kind` ``"none"``: fewer than
    :data:`~sam2elnet.data.georef.MIN_GCPS`, or GCPs without a CRS): it has no usable
    georeference, why, and what to do: the one text of ``elnet scene`` and of annotate /
    enhance, whole images (:func:`sam2elnet.engine.folder_chunk.process_chunk`) or window by
    window.

    Args:
        path: the image, named first.
        n_gcps: its number of GCPs; ``crs``: their CRS (None when the file gives none).
        axes: the pixel convention of the tile footprints, in words, for an image predicted
            window by window (it writes footprints and reads vector labels: both are said);
            None for a whole image.
    """
    why = [f"{plural(n_gcps, 'ground control point')} < {MIN_GCPS}"] if n_gcps < MIN_GCPS else []
    if crs is None:
        why.append("its GCPs have no CRS")
    used = (
        f"it is used as a scene without a CRS; the output GeoTIFFs copy its GCPs as they are; "
        f"tile footprints use pixel coordinates {axes}; vector labels are read as pixel "
        "coordinates (y = -row as drawn in QGIS over the image, or y = row)"
        if axes is not None
        else "it is used as an image without a CRS: its labels are in pixel coordinates (the "
        "output GeoTIFFs copy its GCPs as they are)"
    )
    return (
        f"{path} has no usable georeference ({', '.join(why)}; placing it needs at least "
        f"{MIN_GCPS} GCPs with a CRS): {used}. For outputs on a map, georeference it with at "
        f"least {MIN_GCPS} GCPs and their CRS (QGIS georeferencer, or gdal_translate -a_srs "
        "EPSG:4326 -gcp ...) and run again"
    )


class SceneInputs:
    """An open scene ready for window-by-window prediction (use as a context manager).

    Args:
        path: the scene raster.
        predictor: a :class:`~sam2elnet.engine.executors.WindowPredictor` (its ``normalization``
            and ``in_bands`` decide the normalisation and the bands read).
        bands: 1-based band indexes to read (None: chosen from the predictor's band count).
        coarse: coarse label file (raster on any grid with a CRS, or a vector file, also one
            already read: :class:`~sam2elnet.data.vector_shared.SharedVector`), or None.
        line_width: width of vector line labels (roads), in ``line_width_unit``.
        line_width_unit: ``"map"`` (CRS units) or ``"px"``.
        pixel_coords: vector label coordinates are pixels (x = column, y = -row, QGIS's).
        warp_to: the ``--warp-to`` target the outputs will be warped to (only for the note).
        coarse_positive_values: object value(s) of a class-index coarse raster label.
        footprint_coords: ``"gdal"`` or ``"qgis"``: the pixel convention of the
            ``--quality-gpkg`` tile footprints of a scene without a CRS (only for the note).

    Raises:
        DataError: unreadable scene, all-nodata scene, band mismatch, unreadable label.

    Attributes:
        src: the open rasterio dataset.
        normalizer: the frozen :class:`SceneNormalizer`.
        bands: band indexes read from ``src``.
        coarse: the :class:`CoarseSource` or None (no ``coarse``, or :attr:`coarse_missed`).
        coarse_missed: ``coarse``, one raster for several scenes, misses this one: no coarse
            label, predicted as without ``coarse`` (said once per run;
            :class:`~sam2elnet.data.grid_cover.FootprintMissed`).
        notes: things a user should know (no CRS, vector-label remarks).
    """

    def __init__(
        self,
        path: str | Path,
        predictor: Any,
        *,
        bands: list[int] | None = None,
        coarse: str | Path | SharedVector | None = None,
        line_width: float | None = None,
        line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
        pixel_coords: bool = False,
        warp_to: str | None = None,
        coarse_positive_values: tuple[float, ...] | None = None,
        footprint_coords: str = "gdal",
    ) -> None:
        import rasterio

        self.path = Path(path)
        self.notes: list[str] = []
        self.coarse: CoarseSource | None = None
        self.coarse_missed = False
        self.spread = ValueSpread()  # the valid pixels' value ranges, gathered by read_windows
        self.src = open_scene(self.path)
        # the --quality-gpkg windows' convention (option_values.PIXEL_COORDS)
        axes = (
            "(x = column, y = -row, as QGIS shows the image)"
            if footprint_coords == "qgis"
            else "(x = column, y = row)"
        )
        try:
            gcp_grid = GcpGrid.of(self.src, self.path)  # its GCPs checked
            if gcp_grid is not None and not gcp_grid.placeable:
                # georef.grid_kind "none": every reader uses it as if it had no georeference
                self.notes.append(
                    unplaceable_gcps_note(self.path, len(gcp_grid.gcps), gcp_grid.crs, axes)
                )
                warn_once(log, UNPLACEABLE_GCPS_KIND, self.notes[-1])
            elif gcp_grid is not None and warp_to:
                self.notes.append(
                    f"{self.path} is georeferenced by {len(gcp_grid.gcps)} ground control points "
                    f"only (GCPs, in {gcp_grid.crs}): the label / probability GeoTIFFs are warped to a map "
                    f"grid (--warp-to {warp_to}); tile footprints are placed the same way"
                )
            elif gcp_grid is not None:
                self.notes.append(
                    gcps_kept_note(self.path, len(gcp_grid.gcps), gcp_grid.crs, footprints=True)
                )
                warn_once(log, GCPS_KEPT_KIND, self.notes[-1])
            elif self.src.crs is None:
                self.notes.append(
                    f"{self.path} has no CRS: outputs carry no georeference; tile footprints use "
                    f"pixel coordinates {axes}; vector labels are read as pixel "
                    "coordinates (y = -row as drawn in QGIS over the image, or y = row)"
                )
                warn_once(log, "scene without a CRS", self.notes[-1])
            try:
                self.normalizer = make_scene_normalizer(self.src, predictor, bands)
            except rasterio.errors.RasterioError as err:
                raise DataError(raster_error_text("scene", err), self.path) from None
            self.bands = self.normalizer.bands or list(range(1, self.src.count + 1))
            if coarse is not None:
                try:
                    self.coarse = CoarseSource(
                        coarse, self.src, line_width=line_width, line_width_unit=line_width_unit,
                        pixel_coords=pixel_coords, positive_values=coarse_positive_values,
                    )  # fmt: skip
                    self.notes.extend(self.coarse.notes)
                except FootprintMissed:  # a shared raster missing the scene: no coarse label
                    self.coarse_missed = True
            dtype = np.dtype(self.src.dtypes[self.bands[0] - 1])
            self._is_float = np.issubdtype(dtype, np.floating)
        except BaseException:
            self.close()
            raise

    @property
    def height(self) -> int:
        return int(self.src.height)

    @property
    def width(self) -> int:
        return int(self.src.width)

    def valid(self, window: Any, data: np.ndarray | None = None) -> np.ndarray:
        """bool (h, w) pixels of a rasterio ``window`` holding data: the readers' one rule
        (:func:`~sam2elnet.data.validity.dataset_valid`) and finite values (``data``: bands read)."""
        valid = dataset_valid(self.src, self.normalizer.alpha, window=window)
        if self._is_float:
            if data is None:
                data = self.src.read(self.bands, window=window)
            valid &= np.all(np.isfinite(data), axis=0)
        return valid

    def read_windows(
        self, windows: Sequence[Window]
    ) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield ``(window, x, valid, coarse)`` per window, in the given order.

        ``x`` is the normalised (C, h, w) float32 window, ``valid`` the (h, w) bool mask of pixels
        holding data (dataset mask, and finite values for float rasters), ``coarse`` the (h, w)
        uint8 0/1 coarse label or None. A window without any valid pixel yields ``valid.any() ==
        False`` and the raw data (it is not normalised; callers skip it).

        Raises:
            DataError: a window cannot be read (corrupt or truncated file).
        """
        for w in windows:
            data, valid = self._read(
                w.to_rasterio(), f"scene window at row {w.row_off}, col {w.col_off}"
            )
            if not valid.any():
                yield w, data, valid, None  # skipped marker
                continue
            x = self.normalizer(data, valid)
            self.spread.add(data, x, valid)
            c = self.coarse.read(w) if self.coarse is not None else None
            yield w, x, valid, c

    def check_usable(self) -> None:
        """Refuse an unusable scene (all nodata, constant image, constant after scaling) before
        any window is predicted, by the rule :meth:`quality_flag` applies after them.

        Cheap first: when the decimated overview that fixed the normalisation already varies
        after scaling (``normalizer.overview_varies``), the scene is not constant and nothing
        more is read. An overview can only prove "not constant" (it may miss a small patch of
        content), so a flat-looking scene is confirmed by a full-resolution strip-by-strip pass
        of per-band value ranges (:func:`~sam2elnet.engine.scene_norm.scan_flag`: it reads, never
        predicts, and stops at the first strip with content).

        Raises:
            DataError: the scene's flag (:func:`~sam2elnet.engine.scene_norm.
                unusable_scene_error`), or a strip that cannot be read.
        """
        if self.normalizer.overview_varies:
            return
        if flag := scan_flag(self.normalizer, self._strips()):
            # "all nodata" here: the overview that fixed the statistics had valid pixels that
            # no full-resolution strip holds (overviews out of date)
            stale = flag == ALL_NODATA_FLAG and bool(self.src.overviews(self.bands[0]))
            raise unusable_scene_error(flag, self.path, stale_overviews=stale)

    def _strips(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Raw (C, h, w) pixels and (h, w) valid mask of full-width strips (:func:`row_strips`)."""
        for rw in row_strips(self.src):
            yield self._read(rw, f"scene rows {rw.row_off}-{rw.row_off + rw.height}")

    def _read(self, rw: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw (C, h, w) pixels of the bands read and the (h, w) bool valid mask of rasterio
        window ``rw``.

        Raises:
            DataError: the window cannot be read (corrupt or truncated file); the message says
                ``where`` in the file.
        """
        import rasterio

        try:
            data = self.src.read(self.bands, window=rw)
            return data, self.valid(rw, data)
        except rasterio.errors.RasterioError as err:
            raise DataError(raster_error_text(where, err), self.path) from None

    def quality_flag(self, keep_unusable: bool) -> str:
        """The scene's ``quality_flag`` once every window was read (:class:`ValueSpread`; the
        whole-image rule, :func:`sam2elnet.model.quality_features.spread_flag`): ``""`` when
        usable.

        Raises:
            DataError: a flagged scene (constant image, constant after scaling) unless
                ``keep_unusable`` (annotate/enhance keep its label in rejected/ with the flag).
        """
        flag = self.spread.flag
        if flag and not keep_unusable:
            raise unusable_scene_error(flag, self.path)
        return flag

    def close(self) -> None:
        """Close the coarse label and the scene."""
        if self.coarse is not None:
            self.coarse.close()
        self.src.close()

    def __enter__(self) -> SceneInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
