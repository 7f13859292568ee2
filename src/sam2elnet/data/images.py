"""Reading images: any raster file -> :class:`RasterImage` (C, H, W) in its native dtype.

PNG and JPEG are decoded with OpenCV (fast, which matters in a training loop); TIFF / GeoTIFF and
anything else go through rasterio so georeference, nodata and odd dtypes survive. Every problem the
user can fix (missing file, corrupt file, wrong size, unsupported band count) becomes a
:class:`~sam2elnet.errors.DataError` naming the file and the fix. Masks are read by
:mod:`sam2elnet.data.masks`, files are written by :mod:`sam2elnet.data.writers`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.naming import CV2_SUFFIXES
from sam2elnet.data.validity import (
    alpha_tagged,
    band_nodata,
    finish_pixels,
    internal_mask,
    is_alpha_band,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.advice import plural
from sam2elnet.utils.quiet import mentions_truncation, quiet_native_stderr

MAX_BANDS = 16
"""More bands than this is almost certainly a hyperspectral cube or a wrongly read file."""


@dataclass
class RasterImage:
    """An image as read from disk.

    ``data`` keeps the file's dtype (uint8, uint16, float32 ...) so normalisation can decide how to
    scale it; ``nodata`` is True where a pixel carries no measurement (None when the file has none).
    """

    data: np.ndarray
    nodata: np.ndarray | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self) -> str:
        nodata = None if self.nodata is None else f"{int(np.count_nonzero(self.nodata))} px"
        crs = self.profile.get("crs")
        return (
            f"RasterImage(path={self.path!r}, data={self.data.dtype} {self.data.shape}, "
            f"nodata={'None' if nodata is None else nodata}, "
            f"crs={None if crs is None else str(crs)!r})"
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return int(self.data.shape[1]), int(self.data.shape[2])

    @property
    def bands(self) -> int:
        """Number of bands C."""
        return int(self.data.shape[0])

    @property
    def valid(self) -> np.ndarray:
        """Bool (H, W): True where the pixel holds data (the complement of ``nodata``)."""
        if self.nodata is None:
            return np.ones(self.shape, dtype=bool)
        return ~self.nodata


def check_file(path: Path, what: str) -> None:
    """Refuse a missing path or a folder where a file is expected.

    Args:
        path: The file to be read.
        what: What the file is, for the message (``"image"``, ``"mask"``).

    Raises:
        DataError: ``path`` does not exist or is a folder (the message names it).
    """
    if not path.exists():
        raise DataError(f"{what} does not exist; check the path", path)
    if path.is_dir():
        raise DataError(f"expected a {what} file but found a folder; pass the file itself", path)


def _read_cv2(path: Path) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Decode PNG/JPEG to (C, H, W); return (data, profile, last_band_is_alpha)."""
    buf = np.fromfile(str(path), dtype=np.uint8)
    with quiet_native_stderr() as native:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if arr is not None and mentions_truncation(native.text):
        raise DataError(
            "image is truncated or damaged (the decoder reported: "
            f"{native.text.strip().splitlines()[-1][:120]}); re-export it or remove it",
            path,
        )
    if arr is None:
        raise DataError(
            "cannot decode image (corrupt, truncated or not an image); re-export it or remove it",
            path,
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    if c == 3:
        arr = arr[:, :, ::-1]  # BGR -> RGB
    elif c == 4:
        arr = arr[:, :, [2, 1, 0, 3]]  # BGRA -> RGBA
    data = np.ascontiguousarray(np.moveaxis(arr, 2, 0))
    alpha = c in (2, 4)
    png = path.suffix.lower() == ".png"
    profile = {
        "driver": "PNG" if png else "JPEG",
        "width": int(data.shape[2]),
        "height": int(data.shape[1]),
        "count": int(data.shape[0]),
        "dtype": str(data.dtype),
        "crs": None,
        "transform": None,
        "nodata": _png_grey_nodata(buf) if png and c == 1 else None,
    }
    return data, profile, alpha


def _png_grey_nodata(buf: np.ndarray) -> float | None:
    """The grey value a single-band PNG marks transparent (its ``tRNS`` chunk), or None.

    GDAL's PNG driver reads and writes this chunk as the band's nodata value; label PNGs of this
    project carry ``tRNS`` = :data:`LABEL_NODATA` (:func:`write_mask`)."""
    from PIL import Image

    data = buf.tobytes()
    if b"tRNS" not in data:  # no such chunk (most images): no need to parse the file
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            t = im.info.get("transparency")
    except OSError:
        return None
    return float(t) if isinstance(t, int) else None


def check_complete(path: str | Path) -> None:
    """Refuse a truncated or damaged PNG/JPEG file (other formats pass).

    GDAL reads such files without complaint, returning the missing rows as zeros, so PNG/JPEG
    files are fully decoded once with OpenCV here.

    Args:
        path: The image file.

    Raises:
        DataError: missing file, folder, or an undecodable / truncated PNG or JPEG (the message
            names the file and quotes the decoder).
    """
    p = Path(path)
    if p.suffix.lower() in CV2_SUFFIXES:
        check_file(p, "image")
        _read_cv2(p)


def _read_rasterio(path: Path) -> tuple[np.ndarray, dict[str, Any], bool, np.ndarray | None]:
    """Read any GDAL raster; return (data, profile, last_band_is_alpha, nodata_mask)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
                data = src.read()
                profile = dict(src.profile)
                from sam2elnet.data.grids import GcpGrid

                gcp_grid = GcpGrid.of(src, path)  # its GCPs checked
                if gcp_grid is not None:
                    # GCP-only georeference (Sentinel-1 GRD): kept for every output
                    profile["gcps"] = gcp_grid.gcps
                    profile["gcp_crs"] = gcp_grid.crs
                tagged = alpha_tagged(src)
                alpha = is_alpha_band(tagged, data[-1])
                nodata = band_nodata(data, src.nodata, alpha)
                if not tagged and internal_mask(src):
                    masked = src.dataset_mask() == 0  # gdal_translate -mask / .msk: GDAL's mask
                    nodata = masked if nodata is None else (nodata | masked)
    except RasterioError as err:
        raise DataError(raster_error_text("raster", err), path) from None
    return data, profile, alpha, nodata


def read_pixels(path: Path) -> tuple[np.ndarray, dict[str, Any], bool, np.ndarray | None]:
    """Decode a raster file as it is stored (no band selection, alpha still attached).

    Args:
        path: PNG/JPEG (OpenCV) or any GDAL raster (rasterio).

    Returns:
        ``(data, profile, alpha, nodata)``: ``data`` (C, H, W) in the file's dtype; ``profile``
        the rasterio-style profile (``crs``/``transform`` None for PNG/JPEG, ``gcps``/``gcp_crs``
        for GCP-only rasters); ``alpha`` True when the last band is an alpha band; ``nodata``
        bool (H, W) where the file's nodata tag holds in every band, or None.

    Raises:
        DataError: the file is corrupt, truncated or not a raster.
    """
    if path.suffix.lower() in CV2_SUFFIXES:
        data, profile, alpha = _read_cv2(path)
        return data, profile, alpha, None
    return _read_rasterio(path)


def identical_channels(data: np.ndarray, tol: float = 0.0) -> bool:
    """True when all bands are (nearly) equal: a grey image stored as RGB.

    Args:
        data: (C, H, W) array, any dtype.
        tol: Largest absolute difference to the first band that still counts as equal (in the
            data's units, e.g. 2.0 for JPEG noise in uint8).

    Returns:
        False for a single band; else whether every band is within ``tol`` of band 0.
    """
    if data.shape[0] < 2:
        return False
    ref = data[0].astype(np.float32)
    return all(
        float(np.max(np.abs(data[i].astype(np.float32) - ref))) <= tol
        for i in range(1, data.shape[0])
    )


def parse_bands(text: str | Sequence[int] | None) -> list[int] | None:
    """Parse a ``--bands`` option: comma-separated 1-based file band numbers.

    Args:
        text: ``"4,3,2"``, a sequence of ints, or None / "" (no selection).

    Returns:
        The band numbers in the given order (1-based; a number may repeat: ``"1,1"`` reads band
        1 twice, for a two-band model given one band knowingly), or None when nothing was given.

    Raises:
        UserError: anything but positive integers.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    msg = f"--bands must be comma-separated band numbers (1-based, e.g. 4,3,2), got {text!r}"
    try:
        out = (
            [int(b) for b in text.split(",") if b.strip()]
            if isinstance(text, str)
            else [int(b) for b in text]
        )
    except (TypeError, ValueError):
        raise UserError(msg) from None
    if not out or min(out) < 1:
        raise UserError(msg)
    return out


def select_bands(data: np.ndarray, bands: Sequence[int] | None, path: Path | None) -> np.ndarray:
    """Keep bands ``bands`` of an image, in that order.

    Args:
        data: (C, H, W) array (alpha already removed).
        bands: 1-based band numbers, or None / empty for all.
        path: The file, for the message.

    Returns:
        (len(bands), H, W) view of ``data`` (``data`` itself when no selection).

    Raises:
        DataError: a band number is larger than C (the message names the file and the range).
    """
    if not bands:
        return data
    if max(bands) > data.shape[0]:
        raise DataError(
            f"--bands {','.join(map(str, bands))} asks for band {max(bands)} but the image has "
            f"{plural(data.shape[0], 'band')} (alpha excluded); choose bands 1..{data.shape[0]}",
            path,
        )
    return data[[b - 1 for b in bands]]


def overview_bands(
    data: np.ndarray,
    valid: np.ndarray,
    tagged_alpha: bool,
    bands: Sequence[int] | None,
    sar: bool,
    path: Path | str | None,
) -> list[int]:
    """The file bands (1-based) :func:`read_image` would keep, decided on a decimated overview of
    a scene too large to read whole (the window path of ``scene`` / ``annotate`` / ``enhance``).

    The last band is dropped when it is alpha (:func:`is_alpha_band` on the overview), ``bands``
    picks among the others (:func:`select_bands`: same errors), more than :data:`MAX_BANDS` is
    refused, and with ``sar`` a grey image stored as 3-4 identical bands (within 2 data units on
    the valid pixels) keeps its first band.

    Args:
        data: (C, h, w) overview of all file bands; ``valid``: (h, w) bool, pixels holding data.
        tagged_alpha: GDAL tags the last band as alpha.
        bands: 1-based non-alpha bands to keep (``--bands`` / the model's ``band_select``).
        sar: the model's normalisation is SAR (grey-as-RGB collapse).
        path: the scene, for messages.

    Raises:
        DataError: a band number out of range, or more than :data:`MAX_BANDS` bands.
    """
    count = data.shape[0]
    file_bands = list(range(1, count + 1))
    if is_alpha_band(tagged_alpha, data[-1]):
        file_bands = file_bands[:-1]
    idx = np.asarray(file_bands)[:, None, None]
    chosen = [int(b) for b in select_bands(idx, bands, path)[:, 0, 0]]
    if len(chosen) > MAX_BANDS:
        raise DataError(
            f"unsupported band count {len(chosen)} (at most {MAX_BANDS}); "
            "select the bands you need into a new file (or choose them with --bands)",
            path,
        )
    if sar and len(chosen) in (3, 4):
        sel = data[[b - 1 for b in chosen]]
        if identical_channels(sel[:, valid] if valid.any() else sel, tol=2.0):
            chosen = chosen[:1]
    return chosen


def read_image(
    path: str | Path, sar: bool | None = None, bands: Sequence[int] | None = None
) -> RasterImage:
    """Read an image as (C, H, W) in its native dtype.

    Alpha bands are dropped (alpha == 0 becomes nodata). With ``sar=True`` a grey image stored as
    3 identical channels (as in the SOS JPEGs) collapses to one band. Float NaN / +-inf, the file's
    nodata value and transparent alpha become ``nodata`` (a pixel is nodata when it is nodata in
    every band for the tag, in any band for NaN / inf). A GCP-only georeference (Sentinel-1 GRD)
    is kept in ``profile["gcps"]`` / ``profile["gcp_crs"]``.

    Args:
        path: PNG / JPEG (decoded by OpenCV) or any raster GDAL reads (GeoTIFF, ...).
        sar: Collapse identical RGB channels to one band (SAR stored as RGB); None / False keep all
            bands.
        bands: 1-based numbers of the file's non-alpha bands to keep, in that order (e.g.
            ``[4, 3, 2]``), applied before the band-count check.

    Returns:
        :class:`RasterImage`: ``data`` (C, H, W) in the file's dtype (float64 becomes float32),
        ``nodata`` bool (H, W) or None, ``profile`` (rasterio profile: driver, dtype, count, crs,
        transform, nodata, gcps), ``path``.

    Raises:
        DataError: missing, empty, corrupt or truncated file, a missing band in ``bands``, or more
            than :data:`MAX_BANDS` bands (each message names the file and the fix).
    """
    p = Path(path)
    check_file(p, "image")
    data, profile, alpha, nodata = read_pixels(p)
    if data.ndim != 3 or data.shape[0] == 0 or data.shape[1] == 0 or data.shape[2] == 0:
        raise DataError("image has no pixels or no bands; re-export it", p)
    if alpha:
        a = data[-1]
        data = data[:-1]
        transparent = a == 0
        if transparent.any():
            nodata = transparent if nodata is None else (nodata | transparent)
    data = select_bands(data, bands, p)
    if data.shape[0] > MAX_BANDS:
        raise DataError(
            f"unsupported band count {data.shape[0]} (at most {MAX_BANDS}); "
            "select the bands you need into a new file",
            p,
        )
    if sar and data.shape[0] in (3, 4) and identical_channels(data, tol=2.0):
        data = data[:1]
    data, nodata = finish_pixels(data, nodata)
    profile.update(count=int(data.shape[0]), dtype=str(data.dtype))
    return RasterImage(data=np.ascontiguousarray(data), nodata=nodata, profile=profile, path=p)
