"""COCO 1.0 instance segmentation (as CVAT exports it) back to one 0/255 mask per image.

The round trip for CVAT: ``elnet export --format coco --coco-rle`` writes a COCO file CVAT
imports with masks ("COCO 1.0"); after review CVAT exports "COCO 1.0" again and
:func:`import_coco` unions every annotation of an image (RLE - compressed or uncompressed - or
polygons; pixel centres inside a polygon are foreground) into a mask named like the image
(``<stem>.tif`` with the image's georeference when the image is a GeoTIFF found via ``images``,
else ``<stem>.png``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.coco import rle_decode
from sam2elnet.export.labelstudio_import import ImportResult, read_json_export
from sam2elnet.export.mask_folder import MaskFolder, removed_note

__all__ = ["annotation_mask", "import_coco"]


def annotation_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """Bool (H, W) mask of one COCO ``segmentation`` (RLE dict or list of polygons).

    Polygon coordinates are pixel-corner based (x = column, y = row), so a pixel is foreground
    when its centre lies inside (the rule ``rasterio.features.rasterize`` uses).
    Raises ``DataError`` for an RLE of another size or a malformed segmentation.
    """
    if isinstance(seg, dict):
        size = [int(v) for v in seg.get("size", [])]
        if size != [height, width]:
            raise DataError(f"RLE size {size} differs from the image size {[height, width]}")
        return rle_decode(seg)
    if not isinstance(seg, list):
        raise DataError("segmentation is neither RLE nor a polygon list")
    from rasterio import features
    from shapely.geometry import Polygon

    shapes = []
    for poly in seg:
        xy = np.asarray(poly, dtype=float).reshape(-1, 2)
        if len(xy) >= 3:
            shapes.append((Polygon(xy).buffer(0), 1))
    if not shapes:
        return np.zeros((height, width), dtype=bool)
    return features.rasterize(shapes, out_shape=(height, width), dtype=np.uint8) > 0


def import_coco(
    path: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    category: str | None = None,
    progress: bool = True,
) -> ImportResult:
    """Write one mask per COCO image into ``out`` (images without annotations get empty masks).

    ``category``: only annotations of that category name (default: all). ``out`` then holds
    exactly this import's masks, written whole or not at all
    (:class:`~sam2elnet.export.mask_folder.MaskFolder`). Raises :class:`DataError` for a file
    that is not COCO instance segmentation, :class:`UserError` for an unknown ``category`` or an
    ``out`` that is a file, the images' folder, or holds masks no import wrote.
    """
    p = Path(path)
    coco = read_json_export(p, "COCO file")
    if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
        raise DataError("not a COCO file (needs 'images' and 'annotations')", p)
    if not coco["images"]:
        raise DataError("the COCO file lists no images; export the task again", p)
    ipath = Path(images) if images is not None else None
    folder = MaskFolder(Path(out), p, ipath)
    cats = {c.get("id"): c.get("name") for c in coco.get("categories") or []}
    if category is not None and category not in cats.values():
        raise UserError(
            f"category {category!r} is not in the COCO file (has {sorted(map(str, cats.values()))})",
            p,
        )
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for a in coco["annotations"]:
        if category is None or cats.get(a.get("category_id")) == category:
            by_image.setdefault(a.get("image_id"), []).append(a)
    with folder:
        written, skipped = _import_images(coco["images"], by_image, folder, ipath, progress)
        if not written:
            why = f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else ""
            raise DataError(f"no image of the COCO file gave a mask{why}; check the file", p)
        removed = folder.commit()
    notes = [f"skipped {s}: {why}" for s, why in skipped] + removed_note(folder.out, removed)
    return ImportResult(folder.out, written, skipped, notes, removed)


def _import_images(
    images: list[dict[str, Any]],
    by_image: dict[Any, list[dict[str, Any]]],
    folder: MaskFolder,
    ipath: Path | None,
    progress: bool,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Each COCO image's mask written into ``folder``: (masks, images skipped with the reason)."""
    from sam2elnet.data.images import read_image
    from sam2elnet.utils.progress import track

    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for img in track(images, "import", "img", progress):
        name = Path(str(img.get("file_name", ""))).name
        stem = Path(name).stem
        h, w = int(img["height"]), int(img["width"])
        src = None
        if ipath is not None:
            src = (
                ipath
                if ipath.is_file()
                else next(
                    (
                        ipath / f"{stem}{s}"
                        for s in (".tif", ".tiff", ".png", ".jpg", ".jpeg")
                        if (ipath / f"{stem}{s}").exists()
                    ),
                    None,
                )
            )
        like = nodata = None
        if src is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raster = read_image(src)  # size, georeference, nodata (PNG alpha too)
            if raster.shape != (h, w):
                skipped.append((stem, f"image {src.name} is not {w}x{h} px as the COCO file says"))
                continue
            like = raster if src.suffix.lower() in (".tif", ".tiff") else None
            nodata = raster.nodata
        mask = np.zeros((h, w), dtype=bool)
        try:
            for a in by_image.get(img.get("id"), []):
                mask |= annotation_mask(a.get("segmentation"), h, w)
        except DataError as err:
            skipped.append((stem, str(err)))
            continue
        name = f"{stem}{'.tif' if like is not None else '.png'}"
        written.append(folder.write(name, mask, like=like, nodata=nodata))
    return written, skipped
