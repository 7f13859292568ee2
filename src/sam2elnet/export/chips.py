"""Image/mask PNG chips cut from labelled scenes, for training models elsewhere.

Why: most training code wants fixed-size PNG pairs, not 10,000 px GeoTIFFs. Chips are cut on a
non-overlapping grid (the last row/column shifted inward, so every chip is full-size and made of
real pixels), chips without any valid image pixel are skipped, image chips keep uint8 data as is
and scale other dtypes with scene-global 1st/99th percentiles (the same scaling for every chip of
a scene), masks follow the project's label convention (:data:`sam2elnet.data.raster.LABEL_NODATA`:
0 = background, 255 = object, 127 = nodata where the label is nodata / ignore or the image has
no measurement, with the PNG ``tRNS`` chunk GDAL reads as nodata), so training code that skips
127 (or the nodata value) never learns background from pixels nobody labelled.

Files: ``DIR/images/<label stem>_r<row>_c<col>.png`` and ``DIR/masks/<same name>.png``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.tiling import overview_alpha, plan_windows
from sam2elnet.data.validity import dataset_valid
from sam2elnet.data.writers import verify_written, write_mask
from sam2elnet.errors import DataError
from sam2elnet.export.labels import CocoItem, LabelRaster, find_image
from sam2elnet.option_checks import option_default
from sam2elnet.options import ExportOptions
from sam2elnet.utils.atomic import atomic_path

__all__ = ["iter_chips"]


def _write_png(path: Path, arr: np.ndarray) -> None:
    if arr.ndim == 3:
        arr = arr[:, :, ::-1]  # RGB -> BGR for OpenCV

    with atomic_path(path, verify=verify_written) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(arr)):
            raise DataError("cannot write PNG chip; check the folder is writable", path)


def _scaler(src: Any, bands: list[int]) -> Any:
    """uint8 passthrough, else a scene-global percentile stretch to uint8."""
    # looked up per call, not at module import: tests replace data.tiling.decimated_read
    from sam2elnet.data.tiling import decimated_read

    if all(src.dtypes[b - 1] == "uint8" for b in bands):
        return lambda x: x.astype(np.uint8)
    ov = decimated_read(src, bands, 1_000_000)[0].astype(np.float32)
    valid = np.all(np.isfinite(ov), axis=0)
    if src.nodata is not None and np.isfinite(src.nodata):
        valid &= ~np.all(ov == np.float32(src.nodata), axis=0)  # nodata stays out of the stretch
    pix = ov[:, valid] if valid.any() else np.zeros((len(bands), 1), np.float32)
    lo, hi = np.percentile(pix, [1, 99], axis=1)
    scale = np.maximum(hi - lo, 1e-6)

    def apply(x: np.ndarray) -> np.ndarray:
        y = (np.nan_to_num(x.astype(np.float32)) - lo[:, None, None]) / scale[:, None, None]
        return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)

    return apply


def iter_chips(
    labels: Iterable[Path],
    images: str | Path | None,
    out_dir: Path,
    *,
    chip_size: int = option_default(ExportOptions, "chip_size"),
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    skipped: int = 0,
) -> Iterator[CocoItem]:
    """Write chips lazily: each iteration writes one image/mask pair and yields its CocoItem.

    Lazy so a COCO file can describe the chips without holding every mask in memory; exhaust the
    iterator to write them all. ``skipped``: labels of the export skipped before these
    (unreadable, ...): counted in the ``chips`` progress bar's total and its closing line
    (``chips: 3/3 labels in ..., skipped 1``).

    Raises:
        DataError: ``chip_size`` under 16 px, no source image for a label (give ``images``),
            an unreadable image or label, an image whose size differs from its label's, or a
            chip that cannot be written (raised when the iteration reaches it).
        UserError: a chip path in ``out_dir`` that is a folder or one of the inputs.
    """
    import rasterio

    from sam2elnet.utils.progress import track

    if chip_size < 16:
        raise DataError(f"chip size must be at least 16 px, got {chip_size}", out_dir)

    def gen() -> Iterator[CocoItem]:
        for f in track(list(labels), "chips", "label", progress, skipped=skipped):
            lab = LabelRaster(f, positive_values)
            src_img = find_image(f, images, lab.source if lab.source != f.name else None)
            if src_img is None:
                lab.close()
                raise DataError(
                    "no source image found for the chips; give --images (folder with images named "
                    "like the labels, or the image file)",
                    f,
                )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                    src = rasterio.open(src_img)
            except rasterio.errors.RasterioError as err:
                lab.close()
                raise DataError(raster_error_text("image", err), src_img) from None
            try:
                if (src.height, src.width) != (lab.height, lab.width):
                    raise DataError(
                        f"image {src_img.name} is {src.width}x{src.height} px but the label is "
                        f"{lab.width}x{lab.height}; chips need both on the same grid",
                        f,
                    )
                bands = [1] if src.count < 3 else [1, 2, 3]
                scale = _scaler(src, bands)
                alpha = overview_alpha(src)
                for w in plan_windows(lab.height, lab.width, chip_size, 0):
                    rw = w.to_rasterio()
                    try:
                        raw = src.read(bands, window=rw)
                    except rasterio.errors.RasterioError as err:
                        raise DataError(raster_error_text("image", err), src_img) from None
                    valid = dataset_valid(src, alpha, window=rw)
                    if np.issubdtype(raw.dtype, np.floating):
                        valid &= np.all(np.isfinite(raw), axis=0)  # NaN / inf: no measurement
                    if not valid.any():
                        continue
                    img = scale(raw)
                    mask, ignore = lab.read_mask_ignore(w.row_off, w.height, w.col_off, w.width)
                    nodata = ~valid if ignore is None else (ignore | ~valid)
                    mask = mask & ~nodata
                    name = f"{f.stem}_r{w.row_off}_c{w.col_off}.png"
                    _write_png(
                        out_dir / "images" / name,
                        img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1),
                    )
                    write_mask(out_dir / "masks" / name, mask, nodata=nodata)
                    yield CocoItem(file_name=f"images/{name}", mask=mask, key=f.stem)
            finally:
                src.close()
                lab.close()

    return gen()
