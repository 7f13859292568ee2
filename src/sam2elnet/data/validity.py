"""Which pixels of a raster hold data: the alpha and nodata rule of every reader.

One rule for the whole-image reader (:func:`sam2elnet.data.images.read_image`), the training
window reader (:mod:`sam2elnet.data.windowed_image`) and the window path of ``scene`` /
``annotate`` / ``enhance`` / ``export --chips``: a last band GDAL tags as alpha is alpha only when
it holds only 0 and the dtype's maximum (:func:`is_alpha_band`), and a pixel is nodata where alpha
is 0, where the nodata tag holds in every data band, or where the file's own mask band says so
(docs/data.md, "Alpha is dropped only when it is alpha").
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ALL_NODATA_FLAG",
    "NO_VALID_PIXEL",
    "alpha_tagged",
    "band_nodata",
    "dataset_valid",
    "finish_pixels",
    "internal_mask",
    "is_alpha_band",
]

ALL_NODATA_FLAG = "all nodata"
"""The flag of an input without any valid pixel by this module's rule
(:func:`sam2elnet.model.input_flags.spread_flag`'s word, a ``quality_flag`` value)."""

NO_VALID_PIXEL = "no valid pixel: every pixel is the file's nodata value, NaN, +-inf or masked"
"""What :data:`ALL_NODATA_FLAG` means, in the one wording of every message that refuses such an
input (:func:`sam2elnet.model.input_flags.unusable_text`, ``elnet stats`` / training statistics
in :func:`sam2elnet.data.norm_fit.compute_stats`)."""


def is_alpha_band(tagged: bool, band: np.ndarray) -> bool:
    """The alpha rule of every reader: the last band is alpha when GDAL tags it so (``tagged``)
    and, for integer data, it holds only 0 (transparent) and the dtype's maximum (opaque).

    GDAL tags the 4th band of any 4-band uint8 TIFF as alpha; a NIR band tagged that way holds
    measurements and stays a band. Checked on all pixels by the whole-image reader, strip by strip
    by :mod:`sam2elnet.data.windowed` and on the decimated overview by the scene path.

    Args:
        tagged: GDAL's colour interpretation of the last band is ``alpha``.
        band: the last band's values (any shape); float bands are alpha whenever tagged.
    """
    if not tagged:
        return False
    if np.issubdtype(band.dtype, np.integer):
        top = np.iinfo(band.dtype).max
        return bool(np.all((band == 0) | (band == top)))
    return True


def alpha_tagged(src: Any) -> bool:
    """GDAL's colour interpretation of the last band of an open rasterio dataset is alpha (and
    the file has more than one band): the first half of :func:`is_alpha_band`'s rule."""
    from rasterio.enums import ColorInterp

    return bool(src.count > 1 and src.colorinterp[-1] == ColorInterp.alpha)


def band_nodata(raw: np.ndarray, nodata_value: float | None, alpha: bool) -> np.ndarray | None:
    """The nodata rule of every reader (whole image, training windows, scene windows), on all
    file bands of some pixels.

    A pixel is nodata where the file's nodata tag holds in every data band (GDAL's per-dataset
    nodata mask; the alpha band is not a data band) or, when the last band is alpha
    (:func:`is_alpha_band`), where alpha is 0 (transparent). NaN / +-inf in the bands kept are
    added by the callers (they depend on ``--bands``).

    Args:
        raw: (C, ...) all file bands, alpha included, in the file's dtype.
        nodata_value: the file's nodata tag (NaN allowed), or None.
        alpha: the last band is alpha (decided once per file by :func:`is_alpha_band`).

    Returns:
        bool (...) True where there is no measurement, or None when the rule marks nothing.
    """
    data = raw[:-1] if alpha else raw
    nodata = None
    if nodata_value is not None and len(data):
        nd = float(nodata_value)
        nodata = (
            np.all(np.isnan(data), axis=0)
            if np.isnan(nd)
            else np.all(data == np.asarray(nd).astype(data.dtype), axis=0)
        )
    if alpha:
        transparent = raw[-1] == 0
        nodata = transparent if nodata is None else (nodata | transparent)
    return nodata


def dataset_valid(
    src: Any,
    alpha: bool,
    window: Any = None,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """bool (h, w): pixels of an open rasterio dataset holding data, by :func:`band_nodata`'s rule
    (NaN / +-inf in the bands read are the caller's, as there).

    A file whose last band GDAL does not tag as alpha is read through GDAL's own dataset mask
    (``dataset_mask``: the nodata tag in every band, or the file's internal / ``.msk`` mask). With
    an alpha tag GDAL would use that band as the mask whatever it holds, so a NIR band tagged alpha
    (``PHOTOMETRIC=RGB`` exports) would hide its dark pixels; there the rule is applied to the bands
    themselves and ``alpha`` (this file's :func:`is_alpha_band` decision) says whether the last band
    is a mask or data.

    Args:
        src: an open rasterio dataset.
        alpha: the last band is alpha (:func:`is_alpha_band` on the file, its strips or overview).
        window: a rasterio ``Window`` (None: the whole raster).
        out_shape: (h, w) of a decimated read (nearest neighbour), or None.

    Returns:
        bool (h, w), True where the pixel holds data.
    """
    from rasterio.enums import Resampling

    kw: dict[str, Any] = {"window": window}
    if out_shape is not None:
        kw.update(out_shape=out_shape, resampling=Resampling.nearest)
    if not alpha_tagged(src):
        return src.dataset_mask(**kw) > 0
    if out_shape is not None:
        kw["out_shape"] = (src.count, *out_shape)
    nodata = band_nodata(src.read(**kw), src.nodata, alpha)
    shape = out_shape or (
        (src.height, src.width) if window is None else (int(window.height), int(window.width))
    )
    return np.ones(shape, bool) if nodata is None else ~nodata


def internal_mask(src: Any) -> bool:
    """The file carries its own per-dataset mask band (internal GeoTIFF mask or ``.msk``), which
    GDAL's ``dataset_mask`` applies on the window path: the whole-image reader applies it too."""
    from rasterio.enums import MaskFlags

    flags = src.mask_flag_enums[0] if src.count else ()
    return MaskFlags.per_dataset in flags and not {MaskFlags.alpha, MaskFlags.nodata} & set(flags)


def finish_pixels(
    data: np.ndarray, nodata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The last step of every image read, whole (:func:`sam2elnet.data.images.read_image`) or
    by windows (:class:`sam2elnet.data.windowed_image.ImagePlan`), so both give the same values.

    Args:
        data: (C, H, W) pixels of the kept bands, any dtype.
        nodata: bool (H, W) no-measurement mask so far, or None.

    Returns:
        ``(data, nodata)``: non-finite float pixels (NaN, +inf, -inf) join ``nodata``, float64
        becomes float32, and a ``nodata`` mask without a True pixel becomes None.
    """
    if np.issubdtype(data.dtype, np.floating):
        bad = np.any(~np.isfinite(data), axis=0)  # NaN, +inf, -inf: no measurement
        if bad.any():
            nodata = bad if nodata is None else (nodata | bad)
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    if nodata is not None and not nodata.any():
        nodata = None
    return data, nodata
