"""COCO 1.0 instance segmentation (as CVAT exports it) back to one 0/255 mask per image.

The round trip for CVAT: ``elnet export --format coco --coco-rle`` writes a COCO file CVAT
imports with masks ("COCO 1.0"); after review CVAT exports "COCO 1.0" again (a zip holding
``annotations/instances_default.json``, or one such file per subset) and :func:`import_coco`
unions every annotation of an image into a mask named like the image (``<stem>.tif`` with the
image's georeference when the image is a GeoTIFF found via ``images``, else ``<stem>.png``):

* RLE, compressed or uncompressed (CVAT writes its masks so, with ``iscrowd`` 1);
* polygons: pixel centres inside are foreground; a self-intersecting one is filled lobe by lobe
  (:func:`~sam2elnet.export.labelstudio_import.fill_polygons`), as pycocotools fills it;
* a rectangle (a ``bbox`` with an empty ``segmentation``, as CVAT exports its boxes): the box.

Images are found under ``images`` by their ``file_name`` (with the folders CVAT keeps, e.g.
``palsar/00001.jpg``), else by name, else by stem with an image suffix
(:func:`~sam2elnet.export.image_lookup.find_image`). CVAT's other exports ("CVAT for images
1.1", "Segmentation mask 1.1") are :mod:`sam2elnet.export.cvat_import`.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.export.coco import rle_decode
from sam2elnet.export.image_lookup import ExportImage, find_images, missing_note
from sam2elnet.export.import_result import ImportResult
from sam2elnet.export.labelstudio_import import fill_polygons, read_json_export
from sam2elnet.export.mask_folder import (
    CommitCheck,
    MaskFolder,
    category_note,
    check_category,
    removed_note,
    write_masks,
)
from sam2elnet.export.review_set import download_check
from sam2elnet.utils.advice import plural

__all__ = ["annotation_mask", "import_coco", "read_coco"]

_EXPORT_AGAIN = (
    "in CVAT, export the task with Actions > Export task dataset > 'COCO 1.0' and import that "
    "zip or its annotations/instances_default.json"
)


def annotation_mask(seg: Any, height: int, width: int, bbox: Any = None) -> np.ndarray:
    """Bool (H, W) mask of one COCO annotation's ``segmentation`` (RLE dict or polygon list).

    Polygon coordinates are pixel-corner based (x = column, y = row), so a pixel is foreground
    when its centre lies inside (the rule ``rasterio.features.rasterize`` uses); self-intersecting
    polygons keep every lobe (:func:`~sam2elnet.export.labelstudio_import.fill_polygons`). An
    empty segmentation with a ``bbox`` ``[x, y, w, h]`` (px) is a rectangle: the box, by the same
    rule. Raises ``DataError`` for an RLE of another size or a malformed segmentation.
    """
    if isinstance(seg, dict):
        size = [int(v) for v in seg.get("size", [])]
        if size != [height, width]:
            raise DataError(f"RLE size {size} differs from the image size {[height, width]}")
        return rle_decode({**seg, "size": size})  # DataError: malformed, or runs not H x W
    if seg is None:
        seg = []
    if not isinstance(seg, list):
        raise DataError("segmentation is neither RLE nor a polygon list")
    if not seg or seg == [[]]:
        if _is_box(bbox):
            x, y, w, h = (float(v) for v in bbox)
            seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        else:
            return np.zeros((height, width), dtype=bool)
    try:
        return fill_polygons(seg, height, width)
    except (TypeError, ValueError) as err:
        raise DataError(f"unreadable polygon segmentation ({err})") from None


def _is_box(bbox: Any) -> bool:
    return (
        isinstance(bbox, (list, tuple))
        and len(bbox) == 4
        and all(isinstance(v, (int, float)) for v in bbox)
        and bbox[2] > 0
        and bbox[3] > 0
    )


def read_coco(path: str | Path) -> dict[str, Any]:
    """The COCO instances JSON of ``path``: a ``.json`` file, or CVAT's "COCO 1.0" zip.

    A zip's ``annotations/instances_*.json`` files (one per task subset: ``default``, ``Train``,
    ...) are merged into one COCO dict (image and annotation ids renumbered 1.., categories
    matched by name).

    Raises:
        DataError: missing file, an XML file (CVAT for images: ``--from cvat`` reads it), a zip
            without a COCO file, or a file that is not JSON; each message says what to do.
    """
    p = Path(path)
    if p.is_file() and zipfile.is_zipfile(p):
        try:
            return _read_zip(p)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
            raise DataError(
                f"unreadable zip ({type(err).__name__}: {err}); download the export again", p
            ) from None
    if p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"<"):
            raise DataError(
                "an XML file (CVAT for images 1.1), not COCO JSON; import it with --from cvat", p
            )
        if head.startswith(b"PK"):
            raise DataError("unreadable zip (cut short or damaged); download the export again", p)
    return read_json_export(p, "COCO file", f"; {_EXPORT_AGAIN}")


def _read_zip(p: Path) -> dict[str, Any]:
    """The COCO dict of CVAT's zip (:func:`read_coco`)."""
    with zipfile.ZipFile(p) as zf:
        names = sorted(
            n
            for n in zf.namelist()
            if PurePosixPath(n).suffix.lower() == ".json"
            and PurePosixPath(n).name.startswith("instances_")
        )
        if not names:
            raise DataError(
                "the zip holds no COCO annotations (instances_*.json); --from cvat reads CVAT's "
                f"other exports ('CVAT for images 1.1', 'Segmentation mask 1.1'), or {_EXPORT_AGAIN}",
                p,
            )
        parts = []
        for n in names:
            try:
                parts.append(json.loads(zf.read(n).decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as err:
                raise DataError(f"{n} in the zip is not a JSON file ({err})", p) from None
    return parts[0] if len(parts) == 1 else _merge(parts, p)


def _merge(parts: list[Any], p: Path) -> dict[str, Any]:
    """One COCO dict of several (CVAT's per-subset files): ids renumbered, categories by name."""
    out: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    cat_ids: dict[str, int] = {}
    for part in parts:
        if not isinstance(part, dict) or "images" not in part or "annotations" not in part:
            raise DataError("a file in the zip is not COCO (needs 'images' and 'annotations')", p)
        cats = {}
        for c in part.get("categories") or []:
            name = str(c.get("name"))
            if name not in cat_ids:
                cat_ids[name] = len(cat_ids) + 1
                out["categories"].append(dict(c, id=cat_ids[name]))
            cats[c.get("id")] = cat_ids[name]
        ids = {}
        for im in part["images"]:
            ids[im.get("id")] = len(out["images"]) + 1
            out["images"].append(dict(im, id=ids[im.get("id")]))
        for a in part["annotations"]:
            if a.get("image_id") in ids:
                out["annotations"].append(
                    dict(
                        a,
                        id=len(out["annotations"]) + 1,
                        image_id=ids[a.get("image_id")],
                        category_id=cats.get(a.get("category_id")),
                    )
                )
    return out


def import_coco(
    path: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    category: str | None = None,
    review_set: str | Path | None = None,
    reviewed_only: bool = False,
    progress: bool = True,
    commit_check: CommitCheck | None = None,
) -> ImportResult:
    """Write one mask per COCO image into ``out`` (images without annotations get empty masks).

    Each mask is compared with the one ``elnet export --format coco`` sent out, as its review
    record holds it (:func:`~sam2elnet.export.review_set.download_check`): a note names the
    images that come back unchanged, and ``reviewed_only`` leaves them out (a partial review).

    Args:
        path: COCO JSON, or CVAT's "COCO 1.0" zip (:func:`read_coco`).
        out: Folder for the masks; afterwards it holds exactly this import's masks, written
            whole or not at all (:class:`~sam2elnet.export.mask_folder.MaskFolder`).
        images: Folder of the images (or one image file): a COCO image is found by its
            ``file_name`` under it (folders included), else by name, else by stem with an image
            suffix; its mask then takes the image's georeference (GeoTIFF) and nodata (127).
            Images not found get a PNG of the COCO size (one note counts them).
        category: Only annotations of that category name (default: all; a note names the
            categories when there are several).
        review_set: The export's review record (default: beside ``path``, else the one COCO
            export's record in its folder).
        reviewed_only: No mask for an image whose mask is the exported one.
        progress: Show a progress bar.
        commit_check: Called before the masks move into ``out``
            (:data:`~sam2elnet.export.mask_folder.CommitCheck`); an error it raises leaves
            ``out`` as it was (``elnet import --with-labels``).

    Returns:
        :class:`~sam2elnet.export.import_result.ImportResult`.

    Raises:
        DataError: a file that is not COCO instance segmentation (:func:`read_coco`), an image
            under ``images`` of another size than the file gives (the wrong folder; nothing
            written), or no image gave a mask.
        UserError: ``reviewed_only`` without a review record, or a ``review_set`` that lists
            none of the images; an unknown ``category``; two images with one name (their masks would
            overwrite each other); ``images`` holds none of the COCO images; an ``out`` that is
            a file, the images' folder, or holds masks no import wrote.
    """
    p = Path(path)
    coco = read_coco(p)
    if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
        raise DataError("not a COCO file (needs 'images' and 'annotations')", p)
    if not coco["images"]:
        raise DataError("the COCO file lists no images; export the task again", p)
    if not isinstance(coco["annotations"], list) or not all(
        isinstance(a, dict) for a in coco["annotations"]
    ):
        raise DataError("'annotations' is not a list of objects; export the task again", p)
    for im in coco["images"]:
        ok = isinstance(im, dict) and all(
            isinstance(im.get(k), int) and im[k] > 0 for k in ("height", "width")
        )
        if not ok:
            raise DataError(
                f"an image entry has no width and height in pixels ({str(im)[:80]}); COCO "
                "images need them: export the task again",
                p,
            )
    ipath = Path(images) if images is not None else None
    folder = MaskFolder(Path(out), p, ipath, check=commit_check)
    cats = {c.get("id"): c.get("name") for c in coco.get("categories") or []}
    check_category(category, map(str, cats.values()), "the COCO file", p)
    used = {str(cats.get(a.get("category_id"))) for a in coco["annotations"]}
    notes = category_note(category, used, "the COCO file")
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for a in coco["annotations"]:
        if category is None or cats.get(a.get("category_id")) == category:
            by_image.setdefault(a.get("image_id"), []).append(a)
    boxes = [0]
    entries = [
        ExportImage(
            _file_name(img),
            (int(img["height"]), int(img["width"])),
            partial(_image_mask, by_image.get(img.get("id"), []), boxes),
        )
        for img in coco["images"]
    ]
    sources, missing = find_images(
        entries,
        ipath,
        "the COCO file",
        "rename one in the CVAT task, or review each folder in a task of its own",
        p,
    )
    notes += missing_note(missing, len(entries), "the COCO file", ipath)
    check, more = download_check(p, review_set, reviewed_only, [e.stem for e in entries])
    with folder:
        written, skipped = write_masks(
            entries, sources, folder, "the COCO file", p, progress, keep=check.keep
        )
        if not written:
            why = f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else check.none_left()
            raise DataError(f"no image of the COCO file gave a mask{why}; check the file", p)
        removed = folder.commit()
    if boxes[0]:
        notes.append(
            f"{plural(boxes[0], 'rectangle')} (a bbox without segmentation, "
            "as CVAT exports its boxes) filled as boxes"
        )
    notes += more + check.notes(len(written))
    notes += [f"skipped {s}: {why}" for s, why in skipped] + removed_note(folder.out, removed)
    return ImportResult(
        folder.out, written, skipped, notes, removed, check.model(), images=folder.images
    )


def _image_mask(
    annotations: list[dict[str, Any]], boxes: list[int], height: int, width: int
) -> np.ndarray | str:
    """The union of one COCO image's annotations (bool (height, width)), or the reason it is
    skipped (an unreadable annotation); ``boxes[0]`` counts the rectangles filled."""
    mask = np.zeros((height, width), dtype=bool)
    try:
        for a in annotations:
            seg = a.get("segmentation")
            boxes[0] += bool((not seg or seg == [[]]) and _is_box(a.get("bbox")))
            mask |= annotation_mask(seg, height, width, a.get("bbox"))
    except DataError as err:
        return str(err)
    return mask


def _file_name(img: dict[str, Any]) -> str:
    """An image's ``file_name`` with ``/`` separators (CVAT keeps the task's folders)."""
    return str(img.get("file_name", "")).replace("\\", "/")
