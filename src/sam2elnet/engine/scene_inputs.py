"""Scene inputs: the open source raster, its scene-global normalisation and the coarse label.

:class:`SceneInputs` is what :func:`sam2elnet.engine.scene.predict_scene` reads windows from:
it opens the scene, freezes the predictor's normalisation into scene-global statistics
(:func:`make_scene_normalizer`, so neighbouring windows see identical pixel values), opens the
optional coarse label (:class:`CoarseSource`: a raster warped onto the scene grid, or a vector file
rasterised per window) and yields normalised windows with their valid-pixel masks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.masks import KIND_NO_GEOREF_LABEL
from sam2elnet.data.naming import SCENE_SUFFIXES
from sam2elnet.data.tiling import Window, decimated_read
from sam2elnet.data.validity import dataset_valid
from sam2elnet.errors import DataError
from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "SCENE_SUFFIXES",
    "CoarseSource",
    "SceneInputs",
    "SceneNormalizer",
    "make_scene_normalizer",
    "open_scene",
]

_OVERVIEW_PIXELS = 1_000_000
"""Pixels of the decimated overview read that fixes the normalisation statistics."""


# --------------------------------------------------------------------------------------------
# normalisation fixed for the whole scene


@dataclass
class SceneNormalizer:
    """Scene-global normalisation: the same scaling for every window.

    ``cfg`` is a NormalizationConfig whose statistics are fixed (``fixed``/``stats`` method), or
    None for the built-in fallback (per-band ``low``/``high`` linear stretch). Nodata pixels become
    0 after scaling, exactly as :func:`sam2elnet.data.normalize.normalize` treats single images in
    training and in ``elnet annotate``, so a scene window looks to the model like a chip would.
    """

    low: np.ndarray
    high: np.ndarray
    cfg: Any = None
    bands: list[int] | None = None  # 1-based band indexes read from the source (None: all)
    repeat: int = 0  # >0: the single band read is repeated to this many (band_layout "repeat")
    alpha: bool = False  # the last file band is alpha (a mask), by data.images.is_alpha_band

    def __call__(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = self._scale(data, valid)
        return np.repeat(out, self.repeat, axis=0) if self.repeat else out

    def _scale(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.cfg is not None:
            from sam2elnet.data.normalize import normalize

            return normalize(data, self.cfg, valid=valid)
        xf = np.nan_to_num(data.astype(np.float32))
        scale = np.maximum(self.high - self.low, 1e-6)
        out = (xf - self.low[:, None, None]) / scale[:, None, None]
        np.clip(out, 0.0, 1.0, out=out)
        out *= valid[None]
        return out.astype(np.float32, copy=False)


def _overview(
    src: Any, bands: list[int], max_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decimated (C, h, w) data and (h, w) valid mask of the scene (statistics, coarse checks)."""
    return decimated_read(src, bands, max_pixels or _OVERVIEW_PIXELS)


def _sample_valid(src: Any, bands: list[int], alpha: bool, want: int = 200_000) -> np.ndarray:
    """Full-resolution sample of valid pixels (C, n), for scenes whose overview shows none."""
    step = max(1, src.height // 64)
    chunks: list[np.ndarray] = []
    got = 0
    from rasterio.windows import Window as RioWindow

    for r in range(0, src.height, step):
        win = RioWindow(0, r, src.width, 1)
        d = src.read(bands, window=win)
        v = dataset_valid(src, alpha, window=win)
        if np.issubdtype(d.dtype, np.floating):
            v &= np.all(np.isfinite(d), axis=0)
        if v.any():
            chunks.append(d[:, v])
            got += int(v.sum())
            if got >= want:
                break
    if not chunks:
        return np.zeros((len(bands), 0))
    return np.concatenate(chunks, axis=1)


def _scene_bands(
    src: Any, cfg: Any, in_bands: int | None, bands: list[int] | None
) -> tuple[list[int], np.ndarray, np.ndarray, bool]:
    """The file bands (1-based) a scene is read with: the whole-image reader's rules applied to
    the decimated overview (:func:`sam2elnet.data.images.overview_bands`; ``bands`` or else the
    model's ``band_select``). Predictors without a normalisation config (``builtin:smoothing``, a
    dry run) take the first band when they take one and none is chosen. Returns the bands, the
    overview's (len(bands), h, w) data and (h, w) valid mask, and whether the last band is alpha."""
    from sam2elnet.data.images import overview_bands
    from sam2elnet.data.validity import alpha_tagged, is_alpha_band

    data, valid = _overview(src, list(range(1, src.count + 1)))
    if bands is None and getattr(cfg, "band_select", None):
        bands = list(cfg.band_select)  # the bands the model was trained on (train --bands)
    tagged = alpha_tagged(src)
    sar = bool(getattr(cfg, "sar", False))
    chosen = overview_bands(data, valid, tagged, bands, sar, src.name)
    if cfg is None and in_bands == 1 and len(chosen) > 1 and not bands:
        chosen = chosen[:1]
    return chosen, data[[b - 1 for b in chosen]], valid, is_alpha_band(tagged, data[-1])


def make_scene_normalizer(
    src: Any, predictor: Any, bands: list[int] | None = None
) -> SceneNormalizer:
    """Freeze the predictor's normalisation into scene-global statistics.

    * The bands read follow the whole-image reader (:func:`_scene_bands`); their count is matched
      to the model's by the one rule of every prediction path
      (:func:`sam2elnet.data.images.band_layout`): a single band is repeated to the model's band
      count, a grey image stored as identical bands feeds a one-band model its first band, any
      other mismatch is the same BandCountError as for a whole image.
    * ``percentile`` (per-image) configs become ``fixed`` with per-band low/high = the configured
      percentiles of a decimated overview read (after dB conversion when ``to_db``): per-window
      percentiles would give every tile a different brightness scale and visible seams.
    * ``fixed`` / ``stats`` configs are already global and are used as they are.
    * Without a config (simple predictors) the overview's 1st/99th percentiles stretch to [0, 1].

    Raises DataError when the scene holds no valid pixel at all, BandCountError for a band
    count the model cannot take.
    """
    from sam2elnet.data.images import IDENTICAL_NORMALISED_ATOL, band_layout

    cfg = getattr(predictor, "normalization", None)
    in_bands = getattr(predictor, "in_bands", None)
    bands, data, valid, alpha = _scene_bands(src, cfg, in_bands, bands)
    if valid.any():
        pix = data[:, valid]
    else:
        pix = _sample_valid(src, bands, alpha)
        if pix.shape[1] == 0:
            raise DataError(
                "scene is entirely nodata (no valid pixel); nothing to predict. Check the file's "
                "nodata value or mask",
                src.name,
            )
    norm = _normalizer_from_pixels(src, cfg, bands, pix)
    norm.alpha = alpha

    def identical() -> bool:
        x = norm(pix[:, None, :], np.ones((1, pix.shape[1]), bool))
        return bool(np.allclose(x, x[:1], atol=IDENTICAL_NORMALISED_ATOL))

    layout = band_layout(len(bands), in_bands, identical, src.name)
    if layout == "first":
        norm = _normalizer_from_pixels(src, cfg, bands[:1], pix[:1], warn=False)
        norm.alpha = alpha
    elif layout == "repeat":
        norm.repeat = int(in_bands)
    return norm


def _normalizer_from_pixels(
    src: Any, cfg: Any, bands: list[int], pix: np.ndarray, warn: bool = True
) -> SceneNormalizer:
    """The :class:`SceneNormalizer` of ``bands`` from valid raw pixels ``pix`` (C, n); ``warn``
    logs :func:`~sam2elnet.data.input_range.check_input_range`'s warning (once per run)."""
    from sam2elnet.data.input_range import INPUT_RANGE_KIND, check_input_range
    from sam2elnet.data.normalize import NormalizationConfig, to_db

    if warn and isinstance(cfg, NormalizationConfig):
        if msg := check_input_range(pix, src.dtypes[bands[0] - 1], cfg):
            warn_once(log, INPUT_RANGE_KIND, f"{src.name}: {msg}")
    pix = pix.astype(np.float32)
    if cfg is not None:
        method = getattr(cfg, "method", None)
        if method == "percentile":
            work = to_db(pix, cfg.db_floor) if getattr(cfg, "to_db", False) else pix
            lo, hi = np.percentile(work, [cfg.p_low, cfg.p_high], axis=1)
            cfg = cfg.model_copy(
                update={
                    "method": "fixed",
                    "low": [float(v) for v in lo],
                    "high": [float(v) for v in hi],
                }
            )
        return SceneNormalizer(low=np.zeros(0), high=np.zeros(0), cfg=cfg, bands=bands)
    lo, hi = np.percentile(pix, [1.0, 99.0], axis=1).astype(np.float32)
    return SceneNormalizer(low=lo, high=hi, cfg=None, bands=bands)


# --------------------------------------------------------------------------------------------
# coarse labels


class CoarseSource:
    """Coarse label per window: a raster (warped onto the scene grid if needed) or a vector file.

    A raster's values are decoded by :func:`sam2elnet.data.raster.mask_encoding`
    (``positive_values``: the object value(s) of a class-index label, as ``--positive-values``).
    """

    def __init__(
        self,
        path: str | Path,
        scene: Any,
        *,
        line_width: float | None = None,
        line_width_unit: str = "map",
        pixel_coords: bool = False,
        positive_values: tuple[float, ...] | None = None,
    ) -> None:
        from sam2elnet.data.vector import VectorLabels, image_grid, is_vector_path

        self.path = Path(path)
        self._ds = None
        self._vrt = None
        self._vec = None
        self.notes: list[str] = []
        if not self.path.exists():
            raise DataError("coarse label file does not exist; check the path", self.path)
        if is_vector_path(self.path):
            crs, transform, gcps = image_grid(scene)  # GCP-only scenes: through their GCPs
            self._vec = VectorLabels.from_file(
                self.path,
                crs=crs,
                transform=transform,
                gcps=gcps,
                height=scene.height,
                width=scene.width,
                line_width=line_width,
                line_width_unit=line_width_unit,
                pixel_coords=pixel_coords,
            )
            self.notes = list(self._vec.notes)
            return
        import rasterio
        from rasterio.vrt import WarpedVRT

        try:
            self._ds = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as err:
            raise DataError(raster_error_text("coarse label raster", err), self.path) from None
        ds = self._ds
        same_grid = ds.height == scene.height and ds.width == scene.width
        if same_grid and scene.crs is not None and ds.crs is not None:
            same_grid = ds.crs == scene.crs and ds.transform.almost_equals(scene.transform)
        if same_grid and (scene.crs is None) != (ds.crs is None):
            self.notes.append(
                f"{self.path.name}: {'the label' if ds.crs is None else 'the scene'} has no "
                "georeference, so the label is used by pixel index"
            )
            warn_once(log, KIND_NO_GEOREF_LABEL, self.notes[-1])
        if not same_grid:
            if scene.crs is None or ds.crs is None:
                raise DataError(
                    f"coarse label raster is {ds.width}x{ds.height} px but the scene is "
                    f"{scene.width}x{scene.height} and one of them has no CRS, so it cannot be "
                    "aligned; give a label on the scene's grid",
                    self.path,
                )
            from rasterio.enums import Resampling

            self._vrt = WarpedVRT(
                ds,
                crs=scene.crs,
                transform=scene.transform,
                width=scene.width,
                height=scene.height,
                resampling=Resampling.nearest,
            )
        reader = self._vrt or ds
        self._nodata = reader.nodata
        ov, _ = _overview(reader, [1], max_pixels=250_000)
        ov = ov[0]
        from sam2elnet.data.mask_values import mask_encoding

        self._encoding = mask_encoding(
            ov, nodata=self._nodata, positive_values=positive_values, path=self.path
        )

    def read(self, w: Window) -> np.ndarray:
        """uint8 0/1 coarse mask for window ``w``."""
        if self._vec is not None:
            return self._vec.rasterize(w)
        reader = self._vrt or self._ds
        a = reader.read(1, window=w.to_rasterio())
        return self._encoding.apply(a)[0].astype(np.uint8)

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        if self._ds is not None:
            self._ds.close()


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


class SceneInputs:
    """An open scene ready for window-by-window prediction (use as a context manager).

    Args:
        path: the scene raster.
        predictor: a :class:`~sam2elnet.engine.executors.WindowPredictor` (its ``normalization``
            and ``in_bands`` decide the normalisation and the bands read).
        bands: 1-based band indexes to read (None: chosen from the predictor's band count).
        coarse: coarse label file (raster on any grid with a CRS, or a vector file), or None.
        line_width: width of vector line labels (roads), in ``line_width_unit``.
        line_width_unit: ``"map"`` (CRS units) or ``"px"``.
        pixel_coords: vector label coordinates are pixels (x = column, y = -row, QGIS's).
        warp_to: the ``--warp-to`` target the outputs will be warped to (only for the note).
        coarse_positive_values: object value(s) of a class-index coarse raster label.

    Raises:
        DataError: unreadable scene, all-nodata scene, band mismatch, unreadable label.

    Attributes:
        src: the open rasterio dataset.
        normalizer: the frozen :class:`SceneNormalizer`.
        bands: band indexes read from ``src``.
        coarse: the :class:`CoarseSource` or None.
        notes: things a user should know (no CRS, vector-label remarks).
    """

    def __init__(
        self,
        path: str | Path,
        predictor: Any,
        *,
        bands: list[int] | None = None,
        coarse: str | Path | None = None,
        line_width: float | None = None,
        line_width_unit: str = "map",
        pixel_coords: bool = False,
        warp_to: str | None = None,
        coarse_positive_values: tuple[float, ...] | None = None,
    ) -> None:
        import rasterio

        self.path = Path(path)
        self.notes: list[str] = []
        self.coarse: CoarseSource | None = None
        self.src = open_scene(self.path)
        try:
            gcps, gcp_crs = self.src.gcps
            if self.src.crs is None and gcps and warp_to:
                self.notes.append(
                    f"{self.path} is georeferenced by {len(gcps)} ground control points only "
                    f"(GCPs, in {gcp_crs}): the label / probability GeoTIFFs are warped to a map "
                    f"grid (--warp-to {warp_to}); tile footprints use pixel coordinates "
                    "(x = column, y = row)"
                )
            elif self.src.crs is None and gcps:
                self.notes.append(
                    f"{self.path} is georeferenced by {len(gcps)} ground control points only "
                    f"(GCPs, in {gcp_crs}): the output GeoTIFFs keep the GCPs; tile footprints "
                    "use pixel coordinates (x = column, y = row). For map-grid "
                    "outputs use --warp-to utm (or a CRS such as EPSG:32635), or warp the scene "
                    "first (e.g. gdalwarp -tps)"
                )
                warn_once(log, "scene georeferenced by GCPs only", self.notes[-1])
            elif self.src.crs is None:
                self.notes.append(
                    f"{self.path} has no CRS: outputs carry no georeference; tile footprints use "
                    "pixel coordinates (x = column, y = row); vector labels are read as pixel "
                    "coordinates (y = -row as drawn in QGIS over the image, or y = row)"
                )
                warn_once(log, "scene without a CRS", self.notes[-1])
            try:
                self.normalizer = make_scene_normalizer(self.src, predictor, bands)
            except rasterio.errors.RasterioError as err:
                raise DataError(raster_error_text("scene", err), self.path) from None
            self.bands = self.normalizer.bands or list(range(1, self.src.count + 1))
            if coarse is not None:
                self.coarse = CoarseSource(
                    coarse,
                    self.src,
                    line_width=line_width,
                    line_width_unit=line_width_unit,
                    pixel_coords=pixel_coords,
                    positive_values=coarse_positive_values,
                )
                self.notes.extend(self.coarse.notes)
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
        import rasterio

        for w in windows:
            try:
                rw = w.to_rasterio()
                data = self.src.read(self.bands, window=rw)
                valid = self.valid(rw, data)
            except rasterio.errors.RasterioError as err:
                raise DataError(
                    raster_error_text(f"scene window at row {w.row_off}, col {w.col_off}", err),
                    self.path,
                ) from None
            if not valid.any():
                yield w, data, valid, None  # skipped marker
                continue
            x = self.normalizer(data, valid)
            c = self.coarse.read(w) if self.coarse is not None else None
            yield w, x, valid, c

    def close(self) -> None:
        """Close the coarse label and the scene."""
        if self.coarse is not None:
            self.coarse.close()
        self.src.close()

    def __enter__(self) -> SceneInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
