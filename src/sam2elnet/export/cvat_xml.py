"""CVAT's "CVAT for images 1.1" export (``annotations.xml``, alone or in the zip CVAT
downloads; CVAT's default export) read into one mask per ``<image name width height>``, for
:func:`~sam2elnet.export.cvat_import.import_cvat`.

The shapes of an image (of the category; all by default) are unioned, pixel-centre rule (a pixel
is foreground when its centre lies inside; the COCO import's fill,
:func:`~sam2elnet.export.labelstudio_import.fill_polygons`):

* ``<polygon points="x1,y1;x2,y2;...">``: the polygon (one that crosses itself keeps every lobe,
  as pycocotools fills it);
* ``<box xtl ytl xbr ybr [rotation]>``: the box, turned by ``rotation`` degrees clockwise about
  its centre (so a box at xtl=2, xbr=6 fills columns 2..5);
* ``<ellipse cx cy rx ry [rotation]>``: the pixels whose centre is inside;
* ``<mask rle left top width height>``: CVAT's mask RLE (:func:`cvat_rle_decode`).

``<polyline>``, ``<points>``, ``<cuboid>``, ``<skeleton>`` and ``<tag>`` have no area: left out,
one note counts them. ``occluded`` and ``z_order`` do not change a binary mask. An image without
shapes gets an empty mask (it was reviewed as empty), as in the COCO import.

Format sources: CVAT's documentation (docs.cvat.ai, "XML annotation format") and its exporter
``cvat/apps/dataset_manager/formats/cvat.py``: a ``<mask>``'s ``rle`` is its run lengths joined
by ``", "``, ``width = right - left + 1``; rotation as in CVAT's ``RotatedBoxesToPolygons``
(``formats/transformations.py``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.export.image_lookup import ExportImage
from sam2elnet.export.labelstudio_import import fill_polygons
from sam2elnet.export.mask_folder import category_note, check_category

__all__ = [
    "EXPORT_AGAIN",
    "XML_NAME",
    "cvat_rle_decode",
    "read_cvat_xml",
    "xml_images",
]

XML_NAME = "annotations.xml"
"""The annotation file of a "CVAT for images 1.1" export (at the top of its zip)."""

EXPORT_AGAIN = (
    "in CVAT, export the task again with Actions > Export task dataset > 'CVAT for images 1.1' "
    "(or 'Segmentation mask 1.1', 'COCO 1.0')"
)
"""The remedy of a CVAT export that cannot be read (every CVAT import message ends so)."""

_AREA = ("polygon", "box", "ellipse", "mask")
_NO_AREA = ("polyline", "points", "cuboid", "skeleton", "tag")


# ------------------------------------------------------------------------------ shapes -> mask


def _rle_runs(
    rle: str, left: int, top: int, width: int, height: int, img_h: int, img_w: int
) -> np.ndarray:
    """The run lengths of a CVAT ``<mask>`` (int64 array), checked against its box and image.

    Raises:
        DataError: unreadable run lengths (not integers, negative), runs longer than the box,
            or a box outside the image.
    """
    try:
        runs = np.array([int(v) for v in rle.replace(",", " ").split()], dtype=np.int64)
    except ValueError:
        raise DataError(f"unreadable mask rle {rle[:40]!r} (integers expected)") from None
    if width <= 0 or height <= 0 or left < 0 or top < 0:
        raise DataError(f"mask box left={left} top={top} {width}x{height} is not a box")
    if left + width > img_w or top + height > img_h:
        raise DataError(
            f"mask box left={left} top={top} {width}x{height} px lies outside the "
            f"{img_w}x{img_h} image"
        )
    if (runs < 0).any() or runs.sum() > width * height:
        raise DataError(
            f"unreadable mask rle: its runs cover {int(runs.sum())} pixels, the mask box "
            f"{width}x{height} has {width * height}"
        )
    return runs


def cvat_rle_decode(
    rle: str, left: int, top: int, width: int, height: int, img_h: int, img_w: int
) -> np.ndarray:
    """Bool (img_h, img_w) mask of a CVAT ``<mask rle left top width height>``.

    CVAT's mask RLE covers the mask's box (``left``, ``top``, ``width`` x ``height`` px) row by
    row (row-major, unlike COCO's column-major RLE); the run lengths alternate background and
    foreground, background first (a mask starting with foreground begins with a 0 run). Runs
    covering less than the box leave the rest background.

    Raises:
        DataError: unreadable run lengths (not integers, negative), runs longer than the box, or
            a box outside the image.
    """
    runs = _rle_runs(rle, left, top, width, height, img_h, img_w)
    return _paint_runs(runs, left, top, width, height, img_h, img_w)


def _paint_runs(
    runs: np.ndarray, left: int, top: int, width: int, height: int, img_h: int, img_w: int
) -> np.ndarray:
    flat = np.zeros(width * height, dtype=bool)
    ends = np.cumsum(runs)
    for start, stop in zip(ends[0::2], ends[1::2], strict=False):  # foreground: odd runs
        flat[start:stop] = True
    mask = np.zeros((img_h, img_w), dtype=bool)
    mask[top : top + height, left : left + width] = flat.reshape(height, width)
    return mask


def _turned(xy: np.ndarray, cx: float, cy: float, degrees: float) -> np.ndarray:
    """Points ``xy`` (n, 2) turned ``degrees`` clockwise on screen (y down) about (cx, cy)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    dx, dy = xy[:, 0] - cx, xy[:, 1] - cy
    return np.stack([cx + c * dx - s * dy, cy + s * dx + c * dy], axis=1)


def _floats(el: ET.Element, *keys: str) -> list[float]:
    try:
        vals = [float(el.attrib[k]) for k in keys]
    except KeyError as err:
        raise DataError(f"<{el.tag}> has no {err.args[0]} attribute") from None
    except ValueError:
        raise DataError(f"<{el.tag}> has a non-numeric {'/'.join(keys)}") from None
    if not all(math.isfinite(v) for v in vals):
        raise DataError(f"<{el.tag}> has a non-finite {'/'.join(keys)}")
    return vals


def _geometry(el: ET.Element, height: int, width: int) -> tuple[str, Any]:
    """One CVAT shape with an area (polygon, box, ellipse, mask) read and checked: ``("poly",
    (n, 2) vertices)``, ``("ellipse", (cx, cy, rx, ry, rotation))`` or ``("mask", (runs, left,
    top, width, height))``; px, x = column, y = row, on pixel corners.

    Raises:
        DataError: missing or unreadable coordinates (the message names the shape).
    """
    try:
        rotation = float(el.attrib.get("rotation", 0) or 0)
    except ValueError:
        raise DataError(f"<{el.tag}> has a non-numeric rotation") from None
    if el.tag == "polygon":
        try:
            pts = [
                [float(v) for v in pair.split(",")]
                for pair in el.attrib["points"].split(";")
                if pair.strip()
            ]
            if any(len(q) != 2 for q in pts):
                raise ValueError
            xy = np.asarray(pts, dtype=float).reshape(-1, 2)
        except (KeyError, ValueError):
            raise DataError(
                f"<polygon> points {el.attrib.get('points', '')[:40]!r} unreadable "
                "(x1,y1;x2,y2;... expected)"
            ) from None
        return "poly", xy
    if el.tag == "box":
        x0, y0, x1, y1 = _floats(el, "xtl", "ytl", "xbr", "ybr")
        xy = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
        if rotation:
            xy = _turned(xy, (x0 + x1) / 2, (y0 + y1) / 2, rotation)
        return "poly", xy
    if el.tag == "ellipse":
        return "ellipse", (*_floats(el, "cx", "cy", "rx", "ry"), rotation)
    if el.tag == "mask":
        left, top, w, h = (int(v) for v in _floats(el, "left", "top", "width", "height"))
        runs = _rle_runs(el.attrib.get("rle", ""), left, top, w, h, height, width)
        return "mask", (runs, left, top, w, h)
    raise ValueError(f"no area shape: <{el.tag}>")


def _rasterise(geoms: list[tuple[str, Any]], height: int, width: int) -> np.ndarray:
    """Bool (height, width) union of :func:`_geometry` shapes, pixel-centre rule: polygons and
    boxes by :func:`~sam2elnet.export.labelstudio_import.fill_polygons` (the COCO import's fill),
    an ellipse by its equation at the pixel centres, a mask as painted."""
    mask = np.zeros((height, width), dtype=bool)
    polys = [g for kind, g in geoms if kind == "poly"]
    if polys:
        mask |= fill_polygons(polys, height, width)
    for kind, g in geoms:
        if kind == "ellipse":
            cx, cy, rx, ry, rot = g
            if rx <= 0 or ry <= 0:
                continue
            yy, xx = np.mgrid[:height, :width] + 0.5  # pixel centres
            uv = _turned(np.stack([xx.ravel(), yy.ravel()], axis=1), cx, cy, -rot)
            inside = ((uv[:, 0] - cx) / rx) ** 2 + ((uv[:, 1] - cy) / ry) ** 2 <= 1.0
            mask |= inside.reshape(height, width)
        elif kind == "mask":
            mask |= _paint_runs(*g, height, width)
    return mask


# ----------------------------------------------------------------------- CVAT for images 1.1


def read_cvat_xml(path: str | Path) -> ET.Element:
    """The ``<annotations>`` root of a "CVAT for images 1.1" export: ``annotations.xml``, or the
    zip CVAT downloads (``annotations.xml`` at its top).

    Raises:
        DataError: a damaged zip or XML, a zip without ``annotations.xml``, another root
            element, or a "CVAT for video" export (tracks, no images); each says what to do.
    """
    p = Path(path)
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                names = [n for n in zf.namelist() if PurePosixPath(n).name == XML_NAME]
                if not names:
                    raise DataError(f"the zip holds no {XML_NAME}; {EXPORT_AGAIN}", p)
                data = zf.read(min(names, key=lambda n: n.count("/")))
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
            raise DataError(
                f"unreadable zip ({type(err).__name__}: {err}); download the export again", p
            ) from None
    else:
        data = p.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise DataError(
            f"damaged XML ({err}); download the export again, or {EXPORT_AGAIN}", p
        ) from None
    if root.tag != "annotations":
        raise DataError(
            f"not a CVAT for images file (its root element is <{root.tag}>, not <annotations>); "
            f"{EXPORT_AGAIN}",
            p,
        )
    if root.find("image") is None and root.find("track") is not None:
        raise DataError(
            "a 'CVAT for video 1.1' export (tracks, no images); export the task as 'CVAT for "
            "images 1.1' (tracks become one shape per image)",
            p,
        )
    return root


def xml_images(
    root: ET.Element, category: str | None, p: Path
) -> tuple[list[ExportImage], list[str]]:
    """The export images of a CVAT XML root (:func:`read_cvat_xml`): each image's shapes of
    ``category`` (None: all) read and checked now, rasterised when its mask is written; and the
    notes (several categories, shapes without an area left out).

    Raises:
        DataError: no ``<image>``, an image without width and height, or a shape that cannot be
            read (naming the image).
        UserError: ``category`` is neither a label of the task's meta nor of a shape.
    """
    images = root.findall("image")
    if not images:
        raise DataError(f"{XML_NAME} lists no images; {EXPORT_AGAIN}", p)
    declared = [(n.text or "").strip() for n in root.iterfind("meta//labels/label/name")]
    shapes = [el for im in images for el in im if el.tag in _AREA]
    used = {el.attrib.get("label", "") for el in shapes}
    check_category(category, [*declared, *used], XML_NAME, p)
    notes = category_note(category, used, XML_NAME)
    ignored: Counter[str] = Counter()
    entries: list[ExportImage] = []
    for im in images:
        name = str(im.attrib.get("name", "")).replace("\\", "/")
        try:
            h, w = int(im.attrib["height"]), int(im.attrib["width"])
            if h <= 0 or w <= 0:
                raise ValueError
        except (KeyError, ValueError):
            raise DataError(
                f"image {name or im.attrib.get('id', '?')!r} has no width and height in pixels; "
                f"{EXPORT_AGAIN}",
                p,
            ) from None
        mine = []
        for el in im:
            if category is not None and el.attrib.get("label") != category:
                continue
            if el.tag in _AREA:
                mine.append(el)
            elif el.tag in _NO_AREA:
                ignored[el.tag] += 1
        try:  # every shape read now: a damaged one stops the import before anything is written
            geoms = [_geometry(el, h, w) for el in mine]
        except DataError as err:
            raise DataError(f"image {name}: {err}; {EXPORT_AGAIN}", p) from None
        entries.append(ExportImage(name, (h, w), partial(_rasterise, geoms)))
    if ignored:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(ignored.items()))
        notes.append(
            f"left out {sum(ignored.values())} shapes without an area ({kinds}); a mask takes "
            "polygons, boxes, ellipses and masks"
        )
    return entries, notes
