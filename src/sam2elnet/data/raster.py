"""Reading and writing rasters: images (C, H, W) and binary masks (H, W).

PNG and JPEG are decoded with OpenCV (fast, which matters in a training loop); TIFF / GeoTIFF and
anything else go through rasterio so georeference, nodata and odd dtypes survive. Every problem the
user can fix (missing file, corrupt file, wrong size, unsupported band count) becomes a
:class:`~sam2elnet.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.utils.atomic import atomic_path
from sam2elnet.utils.quiet import mentions_truncation, quiet_native_stderr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_CV2_SUFFIXES = (".png", ".jpg", ".jpeg")
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


def _check_file(path: Path, what: str) -> None:
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
    profile = {
        "driver": "PNG" if path.suffix.lower() == ".png" else "JPEG",
        "width": int(data.shape[2]),
        "height": int(data.shape[1]),
        "count": int(data.shape[0]),
        "dtype": str(data.dtype),
        "crs": None,
        "transform": None,
    }
    return data, profile, alpha


def check_complete(path: str | Path) -> None:
    """Raise :class:`DataError` when a PNG/JPEG file is truncated or damaged (GDAL reads such
    files without complaint, returning the missing rows as zeros); other formats pass."""
    p = Path(path)
    if p.suffix.lower() in _CV2_SUFFIXES:
        _check_file(p, "image")
        _read_cv2(p)


def _read_rasterio(path: Path) -> tuple[np.ndarray, dict[str, Any], bool, np.ndarray | None]:
    """Read any GDAL raster; return (data, profile, last_band_is_alpha, nodata_mask)."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
                data = src.read()
                profile = dict(src.profile)
                alpha = src.count > 1 and src.colorinterp[-1] == ColorInterp.alpha
                if alpha and np.issubdtype(data.dtype, np.integer):
                    # GDAL tags the 4th band of any 4-band uint8 TIFF as alpha; a real alpha band
                    # only holds "transparent" and "opaque", a NIR band holds measurements.
                    top = np.iinfo(data.dtype).max
                    alpha = bool(np.all((data[-1] == 0) | (data[-1] == top)))
                nodata = None
                nd = src.nodata
                if nd is not None:
                    nodata = np.all(data == np.asarray(nd, dtype=data.dtype), axis=0)
                    if np.isnan(nd):
                        nodata = np.all(np.isnan(data), axis=0)
    except RasterioError as err:
        raise DataError(
            f"cannot read raster ({err.__class__.__name__}: corrupt, truncated or unsupported "
            "format); re-export it as GeoTIFF/PNG or remove it",
            path,
        ) from None
    return data, profile, alpha, nodata


def _read_any(path: Path) -> tuple[np.ndarray, dict[str, Any], bool, np.ndarray | None]:
    if path.suffix.lower() in _CV2_SUFFIXES:
        data, profile, alpha = _read_cv2(path)
        return data, profile, alpha, None
    return _read_rasterio(path)


def _identical_channels(data: np.ndarray, tol: float = 0.0) -> bool:
    """True when all bands are (nearly) equal: a grey image stored as RGB."""
    if data.shape[0] < 2:
        return False
    ref = data[0].astype(np.float32)
    return all(
        float(np.max(np.abs(data[i].astype(np.float32) - ref))) <= tol
        for i in range(1, data.shape[0])
    )


def read_image(path: str | Path, sar: bool | None = None) -> RasterImage:
    """Read an image as (C, H, W) in its native dtype.

    Alpha bands are dropped (alpha == 0 becomes nodata). With ``sar=True`` a grey image stored as
    3 identical channels (as in the SOS JPEGs) collapses to one band; other values keep all bands.
    Float NaNs and the file's nodata value become ``nodata``.
    """
    p = Path(path)
    _check_file(p, "image")
    data, profile, alpha, nodata = _read_any(p)
    if data.ndim != 3 or data.shape[0] == 0 or data.shape[1] == 0 or data.shape[2] == 0:
        raise DataError("image has no pixels or no bands; re-export it", p)
    if alpha:
        a = data[-1]
        data = data[:-1]
        transparent = a == 0
        if transparent.any():
            nodata = transparent if nodata is None else (nodata | transparent)
    if data.shape[0] > MAX_BANDS:
        raise DataError(
            f"unsupported band count {data.shape[0]} (at most {MAX_BANDS}); "
            "select the bands you need into a new file",
            p,
        )
    if sar and data.shape[0] in (3, 4) and _identical_channels(data, tol=2.0):
        data = data[:1]
    if np.issubdtype(data.dtype, np.floating):
        nan = np.any(np.isnan(data), axis=0)
        if nan.any():
            nodata = nan if nodata is None else (nodata | nan)
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    if nodata is not None and not nodata.any():
        nodata = None
    profile.update(count=int(data.shape[0]), dtype=str(data.dtype))
    return RasterImage(data=np.ascontiguousarray(data), nodata=nodata, profile=profile, path=p)


def binarize(values: np.ndarray) -> np.ndarray:
    """Binarise one mask band: {0,1} -> 1 is foreground; anything else -> > 127 (0..255 greys).

    Float masks in [0, 1] (probabilities) use > 0.5.
    """
    if values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    vmax = (
        float(np.nanmax(values))
        if np.issubdtype(values.dtype, np.floating)
        else float(values.max())
    )
    if np.issubdtype(values.dtype, np.floating) and vmax <= 1.0:
        return np.nan_to_num(values, nan=0.0) > 0.5
    if vmax <= 1:
        return values >= 1
    return values > 127


def read_mask(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    image_path: str | Path | None = None,
) -> np.ndarray:
    """Read a label as bool (H, W).

    Accepts {0,1}, {0,255} and noisy greys (> 127); multi-channel masks whose channels agree.
    ``shape`` is the image's (H, W): a different size is a DataError naming both files.
    """
    p = Path(path)
    _check_file(p, "mask")
    palette = _read_palette_indices(p)
    if palette is not None:
        data, alpha = palette[None], False
    else:
        data, _profile, alpha, _nodata = _read_any(p)
    if alpha:
        data = data[:-1]
    if data.ndim != 3 or data.shape[0] == 0:
        raise DataError("mask has no bands; re-export it as a single-band PNG", p)
    if shape is not None and tuple(data.shape[1:]) != tuple(shape):
        other = f" but image {image_path} is" if image_path is not None else ", expected"
        raise DataError(
            f"mask size {data.shape[2]}x{data.shape[1]}{other} {shape[1]}x{shape[0]} (WxH); "
            "re-export the mask at the image's size or remove the pair",
            p,
        )
    bands = [binarize(b) for b in data]
    mask = bands[0]
    if len(bands) > 1:
        votes = np.sum(bands, axis=0)
        disagree = float(np.mean((votes > 0) & (votes < len(bands))))
        if disagree > 0.01:
            raise DataError(
                f"mask has {len(bands)} channels that differ ({disagree:.1%} of pixels); "
                "save it as a single-band mask (0 = background, 255 = object)",
                p,
            )
        mask = votes * 2 > len(bands)
    return np.ascontiguousarray(mask)


def _read_palette_indices(path: Path) -> np.ndarray | None:
    """Class indices of a palette ("P" mode) PNG, as 0/255 uint8; None for any other file.

    VOC-style masks store class 1 with a colour, so reading their RGB would see three differing
    channels. Index 0 is background; 255 is "void" unless it is the only foreground value.
    """
    if path.suffix.lower() != ".png":
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode != "P":
                return None
            idx = np.asarray(im)
    except OSError:
        return None  # let the regular reader report the damage
    values = set(np.unique(idx).tolist())
    fg = idx == 255 if values <= {0, 255} else (idx > 0) & (idx != 255)
    return np.where(fg, 255, 0).astype(np.uint8)


def verify_written(path: str | Path) -> bool:
    """True when an image file just written decodes again (PNG/JPEG) or opens with its last
    pixel readable (GeoTIFF): the check :func:`~sam2elnet.utils.atomic.atomic_path` runs before
    renaming into place, because ``cv2.imwrite`` and GDAL can report success on a full disk."""
    p = Path(path)
    if p.suffix.lower() in _CV2_SUFFIXES:
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
    if like is not None and like.profile.get("crs") is not None:
        profile["crs"] = like.profile["crs"]
    if like is not None and like.profile.get("transform") is not None:
        profile["transform"] = like.profile["transform"]
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


def write_mask(path: str | Path, mask: np.ndarray, like: RasterImage | None = None) -> Path:
    """Write a bool mask as 0/255: PNG, or GeoTIFF (``.tif``) keeping ``like``'s georeference."""
    p = Path(path)
    arr = (np.asarray(mask) > 0).astype(np.uint8) * 255
    if arr.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {arr.shape}")
    if p.suffix.lower() in (".tif", ".tiff"):
        _write_tif(p, arr, like, None)
    else:
        _write_png(p, arr)
    return p


def write_probability(path: str | Path, prob: np.ndarray, like: RasterImage | None = None) -> Path:
    """Write a probability map in [0, 1]: float32 GeoTIFF for ``.tif``, else 8-bit PNG (x255)."""
    p = Path(path)
    arr = np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)
    if arr.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {arr.shape}")
    if p.suffix.lower() in (".tif", ".tiff"):
        _write_tif(p, arr, like, None)
    else:
        _write_png(p, np.round(arr * 255).astype(np.uint8))
    return p


def write_image(path: str | Path, data: np.ndarray, like: RasterImage | None = None) -> Path:
    """Write a (C, H, W) image: PNG/JPEG for uint8 with 1 or 3 bands, GeoTIFF otherwise."""
    p = Path(path)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if p.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        profile = _geotiff_profile(like, arr.shape[1:], str(arr.dtype))
        profile["count"] = arr.shape[0]
        with atomic_path(p, verify=verify_written) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with rasterio.open(tmp, "w", **profile) as dst:
                    dst.write(arr)
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
