"""COCO instance-segmentation JSON from label rasters, with our own RLE encoder/decoder.

Why our own: pycocotools is not a dependency (and needs a compiler). The format is small:

* one ``images`` entry per image (or chip), one ``annotations`` entry per connected foreground
  region (4-connectivity, matching the polygon export), one category;
* ``segmentation`` is a polygon list (pixel-corner coordinates, x = column, y = row) for regions
  without holes, and compressed RLE for regions with holes (a COCO polygon cannot express a
  hole) or for every region when ``rle=True``;
* compressed RLE: run lengths of the column-major (Fortran order) flattened mask, starting with a
  run of zeros, each count stored as the difference to the count two places earlier (from the
  third on) in 5-bit groups with a continuation bit, offset by 48 into printable ASCII.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.export.labels import CocoItem, LabelRaster, find_image

__all__ = [
    "CocoItem",
    "rle_counts",
    "rle_encode",
    "rle_decode",
    "counts_to_string",
    "string_to_counts",
    "label_items",
    "build_coco",
]


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO run lengths of a bool (H, W) mask (column-major, zeros first)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return [int(c) for c in counts]


def _sparse_counts(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> list[int]:
    """Run lengths from foreground pixel coordinates, O(pixels) instead of O(H x W)."""
    pos = np.sort(cols.astype(np.int64) * height + rows.astype(np.int64))
    total = height * width
    if pos.size == 0:
        return [total]
    breaks = np.flatnonzero(np.diff(pos) != 1) + 1
    starts = pos[np.concatenate(([0], breaks))]
    ends = pos[np.concatenate((breaks - 1, [pos.size - 1]))] + 1
    counts: list[int] = []
    prev = 0
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        counts.append(s - prev)
        counts.append(e - s)
        prev = e
    if prev < total:
        counts.append(total - prev)
    return counts


def counts_to_string(counts: list[int]) -> str:
    """Compress run lengths to the COCO RLE string."""
    out: list[str] = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end at -1
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def string_to_counts(s: str) -> list[int]:
    """Inverse of :func:`counts_to_string`."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = 0
        k = 0
        more = True
        while more:
            ch = ord(s[p]) - 48
            x |= (ch & 0x1F) << (5 * k)
            more = bool(ch & 0x20)
            p += 1
            k += 1
            if not more and (ch & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE ``{"size": [H, W], "counts": str}`` of a bool mask."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(rle_counts(mask))}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Bool (H, W) mask from a COCO RLE (compressed string or uncompressed list counts)."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    flat = np.zeros(h * w, dtype=bool)
    pos = 0
    for i, c in enumerate(counts):
        if i % 2 == 1:
            flat[pos : pos + c] = True
        pos += c
    return flat.reshape((h, w), order="F")


def label_items(
    files: Iterable[Path],
    images: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
) -> Iterator[CocoItem]:
    """One COCO image per label file; the image name comes from ``images`` or the label's tags;
    label values are decoded by the shared mask rule (``positive_values`` for class indices)."""
    for f in files:
        lab = LabelRaster(f, positive_values)
        try:
            mask = lab.read_mask()
        finally:
            lab.close()
        img = find_image(f, images, lab.source if lab.source != f.name else None)
        yield CocoItem(file_name=img.name if img is not None else f.name, mask=mask, key=f.stem)


def _polygon(comp: np.ndarray, r0: int, c0: int) -> list[list[float]] | None:
    """COCO polygon of one 4-connected component crop; None when it has holes."""
    from affine import Affine
    from rasterio import features

    polys = [
        g
        for g, _v in features.shapes(
            comp.astype(np.uint8), mask=comp, transform=Affine.translation(c0, r0), connectivity=4
        )
    ]
    if len(polys) != 1 or len(polys[0]["coordinates"]) != 1:
        return None
    ring = polys[0]["coordinates"][0][:-1]
    return [[float(v) for xy in ring for v in xy]]


def build_coco(
    items: Iterable[CocoItem],
    *,
    quality: dict[str, float] | None = None,
    category: str = "foreground",
    rle: bool = False,
    model_id: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """COCO dict with one annotation per connected foreground region of every item."""
    from scipy import ndimage
    from tqdm import tqdm

    quality = quality or {}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for img_id, item in enumerate(tqdm(items, desc="coco", disable=not progress, leave=False), 1):
        h, w = item.mask.shape
        q = quality.get(item.key)
        entry: dict[str, Any] = {
            "id": img_id,
            "file_name": item.file_name,
            "width": int(w),
            "height": int(h),
        }
        if q is not None:
            entry["predicted_quality"] = q
        images.append(entry)
        lab, n = ndimage.label(item.mask)
        if n == 0:
            continue
        for k, sl in enumerate(ndimage.find_objects(lab), 1):
            if sl is None:
                continue
            comp = lab[sl] == k
            r0, c0 = sl[0].start, sl[1].start
            area = int(comp.sum())
            seg: Any = None if rle else _polygon(comp, r0, c0)
            if seg is None:
                rr, cc = np.nonzero(comp)
                seg = {
                    "size": [int(h), int(w)],
                    "counts": counts_to_string(_sparse_counts(rr + r0, cc + c0, h, w)),
                }
            ann = {
                "id": len(anns) + 1,
                "image_id": img_id,
                "category_id": 1,
                "segmentation": seg,
                "area": area,
                "bbox": [int(c0), int(r0), int(comp.shape[1]), int(comp.shape[0])],
                "iscrowd": 0,
            }
            if q is not None:
                ann["score"] = q
            anns.append(ann)
    info = {
        "description": "exported by sam2elnet",
        "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if model_id:
        info["model_id"] = model_id
    return {
        "info": info,
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": category, "supercategory": category}],
    }
