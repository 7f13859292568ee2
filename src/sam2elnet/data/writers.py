"""Writing rasters: label masks (0 / 127 / 255), probability maps and images, atomically.

PNG for plain images (deterministic bytes), GeoTIFF (``.tif``) keeping the source's georeference
(:mod:`sam2elnet.data.georef`). Every file goes through :func:`~sam2elnet.utils.atomic.atomic_path`
with a check before the rename, so a full disk never leaves a half-written file under the final
name: :func:`verify_written` (read back) for what a library writes to disk itself, the exact byte
count for PNG labels, which are encoded in memory and written by :func:`write_encoded`.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data.georef import georeference, write_georeference
from sam2elnet.data.images import RasterImage
from sam2elnet.data.mask_values import LABEL_NODATA, LABEL_OBJECT
from sam2elnet.data.naming import CV2_SUFFIXES, GEO_SUFFIXES
from sam2elnet.errors import DataError
from sam2elnet.utils.atomic import atomic_path
from sam2elnet.utils.quiet import quiet_native_stderr

LABEL_PNG_LEVEL = 3
"""zlib level of label PNGs. Against level 6 (PIL's and OpenCV's default): 0.58 instead of
0.96 ms per 256 px label, files ~20 % larger (3.3 vs 2.7 KiB; sos-dev masks 0.36 vs 0.59 ms,
1.7 vs 1.4 KiB); the pixels are the same (docs/benchmarks.md, AMX CPU)."""


def verify_written(path: str | Path) -> bool:
    """Check that an image file just written reads back.

    PNG/JPEG must decode again; a GeoTIFF must open with its last pixel readable. This is the
    check :func:`~sam2elnet.utils.atomic.atomic_path` runs before renaming into place, because
    ``cv2.imwrite`` and GDAL can report success on a full disk.

    Args:
        path: The file just written (its temporary name).

    Returns:
        True when it reads back, False when a PNG/JPEG does not decode.

    Raises:
        rasterio.errors.RasterioError: a GeoTIFF that does not open (``atomic_path`` treats
            that as a failed write).
    """
    p = Path(path)
    if p.suffix.lower() in CV2_SUFFIXES:
        buf = np.fromfile(str(p), dtype=np.uint8)
        with quiet_native_stderr():
            return buf.size > 0 and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) is not None
    import rasterio
    from rasterio.windows import Window

    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore")
        with rasterio.open(p) as src:
            src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
    return True


def _write_label_png(path: Path, arr: np.ndarray) -> None:
    """Write a uint8 (H, W) label (0 / 255 / :data:`LABEL_NODATA`) as a grey PNG whose ``tRNS``
    chunk marks :data:`LABEL_NODATA` transparent: GDAL (QGIS, rasterio) reads it as nodata = 127,
    as for the GeoTIFF labels, and :func:`read_mask` tells it from a {0, 127} binary mask.

    The PNG is encoded in memory (zlib level :data:`LABEL_PNG_LEVEL`) and written with plain
    ``os.write`` calls, which raise on a full disk; the temporary file must then hold exactly the
    encoded bytes before it is renamed (:func:`write_encoded`). Decoding it again (:func:`verify_written`, ~1 ms) would check
    nothing more: the bytes are the encoder's own output."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "L").save(
        buf, format="PNG", transparency=LABEL_NODATA, compress_level=LABEL_PNG_LEVEL
    )
    write_encoded(path, buf.getvalue(), "PNG")


def write_encoded(path: Path, data: bytes, what: str) -> None:
    """Write already encoded file bytes atomically; the temporary file must hold exactly
    ``len(data)`` bytes before the rename (no fsync, like the other image writers).

    Raises:
        DiskFullError: ENOSPC / EDQUOT while writing (from :func:`atomic_path`).
        DataError: the file cannot be written for another reason (names ``what`` and the fix).
    """

    def _complete(tmp: Path) -> bool:
        return tmp.stat().st_size == len(data)

    with atomic_path(path, verify=_complete) as tmp:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    if n <= 0:  # a regular file takes at least one byte or raises
                        raise OSError(errno.EIO, "write() wrote nothing")
                    view = view[n:]
            finally:
                os.close(fd)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # atomic_path reports it as "disk full"
            raise DataError(
                f"cannot write {what} ({err}); check the folder is writable", path
            ) from None


def _write_png(path: Path, arr: np.ndarray) -> None:
    """Write (H, W) or (H, W, C RGB) uint8 as PNG atomically (deterministic bytes)."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    with atomic_path(path, verify=verify_written) as tmp, quiet_native_stderr():
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 6]):
            raise DataError("cannot write PNG; check the folder is writable", path)


def _geotiff_profile(
    like: RasterImage | None, shape: tuple[int, int], dtype: str
) -> dict[str, Any]:
    profile: dict[str, Any] = {"driver": "GTiff", "compress": "deflate"}
    if like is not None:
        profile.update({k: v for k, v in georeference(like.profile).items() if k != "gcps"})
        if "gcps" in georeference(like.profile):
            profile.pop("crs", None)
    profile.update(height=shape[0], width=shape[1], count=1, dtype=dtype)
    return profile


def _write_tif(path: Path, arr: np.ndarray, like: RasterImage | None, nodata: float | None) -> None:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    profile = _geotiff_profile(like, arr.shape, str(arr.dtype))
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings(), atomic_path(path, verify=verify_written) as tmp:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr[None])
            write_georeference(dst, like.profile if like is not None else None)


def write_mask(
    path: str | Path,
    mask: np.ndarray,
    like: RasterImage | None = None,
    nodata: np.ndarray | None = None,
) -> Path:
    """Write a mask in the project's label convention, atomically.

    uint8, 0 = background, 255 = object, 127 = nodata: PNG with a ``tRNS`` chunk marking 127
    transparent (GDAL's PNG nodata), or GeoTIFF (``.tif``) keeping ``like``'s georeference (CRS +
    transform, or its ground control points) with the ``nodata=127`` tag, so GIS tools show nodata
    as transparent; :func:`~sam2elnet.data.masks.read_mask` reads 127 back as "ignore".

    Args:
        path: Output file; ``.tif`` / ``.tiff`` for GeoTIFF, anything else is PNG.
        mask: (H, W) bool or numbers (> 0 is object).
        like: Image whose georeference (and nodata, when ``nodata`` is None) the label takes.
        nodata: bool (H, W), True where there is no measurement.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``mask`` is not 2-D.
        DataError: the file cannot be written (disk full, folder not writable).
        UserError: ``path`` is a folder or lies under a file (nothing is written); a full
            disk is its subclass :class:`~sam2elnet.errors.DiskFullError`.
    """
    p = Path(path)
    arr = (np.asarray(mask) > 0).astype(np.uint8) * LABEL_OBJECT
    if arr.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {arr.shape}")
    if nodata is None and like is not None and like.nodata is not None:
        if like.nodata.shape == arr.shape:
            nodata = like.nodata
    if nodata is not None:
        arr[np.asarray(nodata, dtype=bool)] = LABEL_NODATA
    if p.suffix.lower() in GEO_SUFFIXES:
        _write_tif(p, arr, like, LABEL_NODATA)
    else:
        _write_label_png(p, arr)
    return p


def write_probability(path: str | Path, prob: np.ndarray, like: RasterImage | None = None) -> Path:
    """Write a probability map, atomically.

    Args:
        path: ``.tif`` / ``.tiff`` for a float32 GeoTIFF (values 0-1, ``like``'s georeference;
            ``like``'s nodata pixels NaN with the ``nodata=NaN`` tag, as ``elnet scene`` and
            the window-by-window path write them); anything else for an 8-bit PNG (value x 255,
            rounded; nodata pixels as the model's value, a PNG has no nodata).
        prob: (H, W) probabilities; clipped to [0, 1].
        like: Image whose georeference (and nodata mask) the GeoTIFF takes.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``prob`` is not 2-D.
        DataError: the file cannot be written.
        UserError: ``path`` is a folder or lies under a file (nothing is written); a full
            disk is its subclass :class:`~sam2elnet.errors.DiskFullError`.
    """
    p = Path(path)
    arr = np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)
    if arr.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {arr.shape}")
    if p.suffix.lower() in GEO_SUFFIXES:
        nodata = like.nodata if like is not None else None
        if nodata is not None and nodata.shape == arr.shape and nodata.any():
            arr = np.where(nodata, np.float32(np.nan), arr)  # not "certain background" in a GIS
            _write_tif(p, arr, like, float("nan"))
        else:
            _write_tif(p, arr, like, None)
    else:
        _write_png(p, np.round(arr * 255).astype(np.uint8))
    return p


def write_image(
    path: str | Path,
    data: np.ndarray,
    like: RasterImage | None = None,
    nodata: float | None = None,
) -> Path:
    """Write an image, atomically.

    Args:
        path: ``.tif`` / ``.tiff`` for GeoTIFF (any dtype and band count, ``like``'s
            georeference); ``.png`` / ``.jpg`` for uint8 with 1 or 3 bands (JPEG quality 95).
        data: (C, H, W) or (H, W) array.
        like: Image whose georeference the GeoTIFF takes.
        nodata: the GeoTIFF's nodata tag (a pixel is nodata where every band holds it), or None.

    Returns:
        ``path`` as a Path.

    Raises:
        DataError: PNG / JPEG asked for data that is not uint8 with 1 or 3 bands, or the file
            cannot be written.
        UserError: ``path`` is a folder or lies under a file (nothing is written); a full
            disk is its subclass :class:`~sam2elnet.errors.DiskFullError`.
    """
    p = Path(path)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if p.suffix.lower() in GEO_SUFFIXES:
        import rasterio

        profile = _geotiff_profile(like, arr.shape[1:], str(arr.dtype))
        profile["count"] = arr.shape[0]
        if nodata is not None:
            profile["nodata"] = nodata
        with atomic_path(p, verify=verify_written) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with rasterio.open(tmp, "w", **profile) as dst:
                    dst.write(arr)
                    write_georeference(dst, like.profile if like is not None else None)
        return p
    if arr.dtype != np.uint8 or arr.shape[0] not in (1, 3):
        raise DataError("PNG/JPEG output needs uint8 with 1 or 3 bands; use a .tif name", p)
    hwc = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, 2)
    if p.suffix.lower() == ".png":
        _write_png(p, hwc)
    else:
        if hwc.ndim == 3:
            hwc = hwc[:, :, ::-1]
        with atomic_path(p, verify=verify_written) as tmp, quiet_native_stderr():
            cv2.imwrite(str(tmp), np.ascontiguousarray(hwc), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return p
