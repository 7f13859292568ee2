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

Label rasters are read in row strips (:func:`~sam2elnet.export.regions.label_objects`), so memory does not grow with the
raster: each object is kept as its column runs only while it touches the current strip border,
and the JSON is written annotation by annotation (:func:`write_coco`).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.export.labels import CocoItem, LabelRaster, find_image
from sam2elnet.export.regions import label_objects, object_counts, object_crop
from sam2elnet.utils.atomic import atomic_path, json_text

__all__ = [
    "CocoItem",
    "CocoLabel",
    "POLYGON_CROP_PIXELS",
    "write_coco",
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
    """Compressed COCO RLE ``{"size": [H, W], "counts": str}`` of a bool (H, W) mask (any
    dtype: non-zero is foreground); runs in column-major order, background first, as
    pycocotools writes them.

    Raises:
        ValueError: ``mask`` is not 2-D.
    """
    if np.ndim(mask) != 2:
        raise ValueError(f"rle_encode needs a 2-D (H, W) mask, got shape {np.shape(mask)}")
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(rle_counts(mask))}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Bool (H, W) mask from a COCO RLE ``{"size": [H, W], "counts": ...}`` (compressed string
    or uncompressed list counts, column-major, background first).

    Raises:
        DataError: a malformed RLE (no ``size`` / ``counts``, a size that is not two integers,
            counts that do not decode or are negative) or runs that do not cover the H x W
            pixels exactly (a truncated or foreign RLE, which would decode to a wrong mask).
    """
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
        counts = string_to_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"unreadable RLE ({type(err).__name__}: {err})") from None
    if min(counts, default=0) < 0 or h < 0 or w < 0:
        raise DataError(f"unreadable RLE: a negative size or run length ({rle['size']}, {counts})")
    total = sum(counts)
    if total != h * w:
        raise DataError(f"unreadable RLE: its runs cover {total} pixels, the image has {h * w}")
    flat = np.zeros(h * w, dtype=bool)
    pos = 0
    for i, c in enumerate(counts):
        if i % 2 == 1:
            flat[pos : pos + c] = True
        pos += c
    return flat.reshape((h, w), order="F")


@dataclass
class CocoLabel:
    """One COCO image that is a whole label raster, read strip by strip when annotated."""

    file_name: str
    path: Path
    key: str
    positive_values: tuple[float, ...] | None = None
    strip_rows: int | None = None


#: an object whose bounding box holds more pixels than this gets an RLE segmentation even when
#: it has no hole (its polygon needs the bounding-box crop in memory; 16 Mpx = 16 MB as bool)
POLYGON_CROP_PIXELS = 16_000_000


def label_items(
    files: Iterable[Path],
    images: str | Path | None = None,
    positive_values: tuple[float, ...] | None = None,
    strip_rows: int | None = None,
    image_names: dict[str, Path] | None = None,
) -> Iterator[CocoLabel]:
    """One COCO image per label file, annotated strip by strip (:func:`~sam2elnet.export.regions.label_objects`).

    The image's ``file_name`` is the source image's name: found in ``images`` (folder or file),
    else ``image_names[label stem]`` (an annotate / enhance ``quality.csv``'s image column),
    else the label's ``SOURCE`` tag, else the label file's own name. Label values are decoded by
    the shared mask rule (``positive_values`` for class indices)."""
    for f in files:
        lab = LabelRaster(f, positive_values)
        lab.close()
        source = lab.source if lab.source != f.name else None
        img = find_image(f, images, source)
        if img is not None:
            name = img.name
        elif images is None and image_names and f.stem in image_names:
            name = image_names[f.stem].name
        else:
            name = Path(source).name if source else f.name
        yield CocoLabel(
            file_name=name,
            path=f,
            key=f.stem,
            positive_values=positive_values,
            strip_rows=strip_rows,
        )


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
    return _ring(polys[0]) if len(polys) == 1 else None


def _ring(geom: dict[str, Any]) -> list[list[float]] | None:
    """COCO polygon (flat x, y list of the outer ring) of a GDAL polygon; None with holes."""
    if len(geom["coordinates"]) != 1:
        return None
    ring = geom["coordinates"][0][:-1]
    return [[float(v) for xy in ring for v in xy]]


def _mask_annotations(mask: np.ndarray, rle: bool) -> Iterator[dict[str, Any]]:
    """Annotations (without ids) of a whole mask in memory (chips, :class:`CocoItem`)."""
    from scipy import ndimage

    h, w = mask.shape
    lab, n = ndimage.label(mask)
    if n == 0:
        return
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
        bbox = [int(c0), int(r0), int(comp.shape[1]), int(comp.shape[0])]
        yield {"segmentation": seg, "area": area, "bbox": bbox}


def _label_annotations(item: CocoLabel, rle: bool) -> Iterator[dict[str, Any]]:
    """Annotations (without ids) of a label raster read strip by strip; the same annotations as
    :func:`_mask_annotations` of the whole mask (in :func:`~sam2elnet.export.regions.label_objects` order)."""
    lab = LabelRaster(item.path, item.positive_values)
    try:
        h, w = lab.height, lab.width
        for obj in label_objects(lab, item.strip_rows, shapes=not rle):
            r0, c0, r1, c1 = obj.box
            seg: Any = None
            if not rle and obj.shape is not None:  # polygonised with its strip
                seg = _ring(obj.shape)
            elif not rle and (r1 - r0) * (c1 - c0) <= POLYGON_CROP_PIXELS:
                seg = _polygon(object_crop(obj), r0, c0)
            if seg is None:
                seg = {"size": [h, w], "counts": counts_to_string(object_counts(obj, h, w))}
            yield {"segmentation": seg, "area": obj.area, "bbox": [c0, r0, c1 - c0, r1 - r0]}
    finally:
        lab.close()


def _coco_parts(
    items: Iterable[CocoItem | CocoLabel],
    quality: dict[str, float],
    rle: bool,
    progress: bool,
    total: int | None = None,
    unit: str = "label",
    review: list[dict[str, Any]] | None = None,
    skipped: int = 0,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """("image", entry) and ("annotation", ann) in file order, ids from 1; a progress bar (or
    lines with ``progress`` False) counts ``unit`` out of ``total`` (None: ``len(items)`` when
    it has one, else unknown), and ``skipped`` items skipped before (counted as done, said
    last: ``coco: 3/3 labels in ..., skipped 1``). ``review`` receives one review-record entry
    per label file (:func:`_review_entry`)."""
    from sam2elnet.utils.progress import progress_bar

    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    bar = progress_bar(
        None if total is None else total + skipped, "coco", unit, progress, leave=False
    )
    if skipped:
        bar.set_postfix(skipped=skipped, refresh=False)
        bar.update(skipped)
    try:
        yield from _coco_entries(items, quality, rle, bar, review)
    finally:
        bar.close()


def _coco_entries(
    items: Iterable[CocoItem | CocoLabel],
    quality: dict[str, float],
    rle: bool,
    bar: Any,
    review: list[dict[str, Any]] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    n_ann = 0
    for img_id, item in enumerate(items, 1):
        if isinstance(item, CocoLabel):
            lab = LabelRaster(item.path, item.positive_values)
            lab.close()
            h, w = lab.height, lab.width
            anns = _label_annotations(item, rle)
        else:
            h, w = item.mask.shape
            anns = _mask_annotations(item.mask, rle)
        q = quality.get(item.key)
        entry: dict[str, Any] = {
            "id": img_id,
            "file_name": item.file_name,
            "width": int(w),
            "height": int(h),
        }
        if q is not None:
            entry["predicted_quality"] = q
        yield "image", entry
        first = n_ann
        for a in anns:
            n_ann += 1
            ann = {"id": n_ann, "image_id": img_id, "category_id": 1, **a, "iscrowd": 0}
            if q is not None:
                ann["score"] = q
            yield "annotation", ann
        if review is not None and isinstance(item, CocoLabel):
            review.append(_review_entry(item, n_ann - first, q, h, w))
        bar.update(1)


def _review_entry(item: CocoLabel, n: int, q: float | None, h: int, w: int) -> dict[str, Any]:
    """The review-record entry of one exported label (:mod:`~sam2elnet.export.review_set`):
    ``source`` (the COCO ``file_name``), ``label``, ``annotations``, ``quality`` and, up to
    :data:`~sam2elnet.export.review_edits.DIGEST_MAX_PIXELS`, the label's mask
    (:func:`~sam2elnet.export.review_edits.exported_fields`, no loose pixels): what the
    annotations decode to (RLE exactly; a polygon is written only for a 4-connected region
    without holes, whose pixel centres it holds, and pycocotools fills the same pixels)."""
    from sam2elnet.export.review_edits import exported_fields, mask_recorded

    entry: dict[str, Any] = {
        "source": item.file_name,
        "label": item.path.name,
        "annotations": n,
        "quality": q,
    }
    if mask_recorded(h, w):
        lab = LabelRaster(item.path, item.positive_values)
        try:
            entry.update(exported_fields(lab.read_mask()))
        finally:
            lab.close()
    return entry


def _one_gdal_env() -> Any:
    """One GDAL environment around the export: ``rasterio.features.shapes`` (one call per chip
    region, per region joined across strips) otherwise sets one up per call (~1 ms each)."""
    import rasterio

    return rasterio.Env()


def _coco_head(category: str, model_id: str | None) -> tuple[dict[str, Any], list[Any]]:
    info = {
        "description": "exported by sam2elnet",
        "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if model_id:
        info["model_id"] = model_id
    return info, [{"id": 1, "name": category, "supercategory": category}]


def build_coco(
    items: Iterable[CocoItem | CocoLabel],
    *,
    quality: dict[str, float] | None = None,
    category: str = "foreground",
    rle: bool = False,
    model_id: str | None = None,
    progress: bool = True,
    total: int | None = None,
    unit: str = "label",
) -> dict[str, Any]:
    """COCO dict with one annotation per connected foreground region of every item.

    Top-level keys: ``licenses`` (empty), ``info``, ``images``, ``annotations``, ``categories``:
    the five sections CVAT's streaming COCO reader (datumaro's page mapper) requires, each one
    (a file without ``licenses`` failed there: "Cannot find the licenses section").

    Holds every annotation; :func:`write_coco` writes the same JSON without doing so. Items are
    masks in memory (:class:`CocoItem`) or label rasters read by strips (:class:`CocoLabel`).
    The progress bar (``progress``; log lines without it) counts ``unit`` (e.g. ``label``,
    ``chip``) out of ``total`` (None: ``len(items)`` when known).

    Raises:
        DataError: a :class:`CocoLabel` raster that is missing, truncated or unreadable.
    """
    info, categories = _coco_head(category, model_id)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    with _one_gdal_env():
        for kind, d in _coco_parts(items, quality or {}, rle, progress, total, unit):
            (images if kind == "image" else anns).append(d)
    return {
        "licenses": [],
        "info": info,
        "images": images,
        "annotations": anns,
        "categories": categories,
    }


def write_coco(
    out: Path,
    items: Iterable[CocoItem | CocoLabel],
    *,
    quality: dict[str, float] | None = None,
    category: str = "foreground",
    rle: bool = False,
    model_id: str | None = None,
    progress: bool = True,
    total: int | None = None,
    unit: str = "label",
    review: list[dict[str, Any]] | None = None,
    skipped: int = 0,
) -> tuple[int, int]:
    """Write the COCO JSON of :func:`build_coco` to ``out`` (atomically) without holding it.

    Annotations go to a temporary file as they are made; the image entries (one small dict per
    image) are kept and written before them, so the file is byte for byte
    ``json_text(build_coco(...), indent=None) + "\\n"``: strict JSON
    (:func:`~sam2elnet.utils.atomic.json_text`), a NaN or infinite quality score written as
    ``null``, never as the bare ``NaN`` / ``Infinity`` tokens other COCO readers refuse.

    ``progress`` / ``total`` / ``unit`` as for :func:`build_coco`. ``review`` receives one
    review-record entry per label file (source image name, label, annotations, quality, mask
    digest; :mod:`~sam2elnet.export.review_set`), none for chips. ``skipped``: labels of the
    export skipped before these (unreadable, ...): counted in the progress bar's total and its
    closing line, ``coco: 3/3 labels in 0.1 s (30.00 label/s), skipped 1`` (``unit`` label; 0
    for chips, whose labels the ``chips`` bar counts).

    Returns:
        (number of images, number of annotations).
    """
    info, categories = _coco_head(category, model_id)
    images: list[dict[str, Any]] = []
    n_ann = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", dir=out.parent) as anns,
        _one_gdal_env(),
    ):
        parts = _coco_parts(items, quality or {}, rle, progress, total, unit, review, skipped)
        for kind, d in parts:
            if kind == "image":
                images.append(d)
                continue
            anns.write((", " if n_ann else "") + json_text(d, indent=None))
            n_ann += 1
        anns.seek(0)
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(
                '{"licenses": [], "info": '
                + json_text(info, indent=None)
                + ', "images": '
                + json_text(images, indent=None)
            )
            fh.write(', "annotations": [')
            shutil.copyfileobj(anns, fh)
            fh.write('], "categories": ' + json_text(categories, indent=None) + "}\n")
    return len(images), n_ann
