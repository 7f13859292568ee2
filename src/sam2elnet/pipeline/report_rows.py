"""One image's row of the report table, and the order of the rows.

:func:`prepare_item` derives an item's row from its masks
(:func:`~sam2elnet.pipeline.report_items.read_masks`): true / input IoU, object counts (:func:`object_counts`) and empty-truth flags with the truth's
ignore pixels and the label's nodata left out, as ``elnet evaluate`` leaves them out; filter
status, file links (:func:`file_link`: relative inside the page's folder). :func:`order_items` sorts rows worst (or best) first. The item's card is
:mod:`sam2elnet.pipeline.report_cards`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from sam2elnet.data.vector_shared import SharedRaster, SharedVector
from sam2elnet.pipeline.glossary import label as key_label
from sam2elnet.pipeline.report_items import (
    ItemMasks,
    ReportItem,
    TruthOnGrid,
    counted_pixels,
    read_masks,
)
from sam2elnet.pipeline.report_map import read_footprint
from sam2elnet.pipeline.report_tables import as_float, fmt_value
from sam2elnet.utils.run_paths import relative_inside

__all__ = ["file_link", "object_counts", "order_items", "prepare_item"]


def _iou(a: np.ndarray | None, b: np.ndarray | None, valid: np.ndarray | None) -> float | None:
    if a is None or b is None or a.shape != b.shape:
        return None
    from sam2elnet.engine.metrics import confusion, scores

    if valid is not None and valid.shape != a.shape:
        valid = None
    return as_float(scores(confusion(a, b, valid=valid))["iou"])


def object_counts(label: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """Object-level counts of a label against its truth.

    Objects are 8-connected components (``scipy.ndimage.label``). A true object is missed when no
    label pixel touches it; a label object is extra when it touches no true pixel (the
    object-level counts of CVAT's quality report, without an IoU match threshold).

    Args:
        label: bool (H, W) label.
        truth: bool (H, W) ground truth.

    Returns:
        ``(true objects, missed objects, extra objects)``.
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    lab_t, n_t = ndimage.label(truth, structure=eight)
    lab_p, n_p = ndimage.label(label, structure=eight)
    both = label & truth
    hit_t = np.unique(lab_t[both])
    hit_p = np.unique(lab_p[both])
    return int(n_t), int(n_t - np.count_nonzero(hit_t)), int(n_p - np.count_nonzero(hit_p))


def _path_of(v: Any) -> str | None:
    if isinstance(v, (TruthOnGrid, SharedVector, SharedRaster)):
        return str(v.path)
    return str(v) if isinstance(v, (str, Path)) else None


def file_link(p: str | Path, page_dir: str | Path | None = None) -> str:
    """The ``href`` of a file linked from a report page.

    A file inside ``page_dir`` (the folder the page is written to, or one below it) gets a link
    relative to the page: POSIX separators, URL-quoted (``labels/tile%201.png``), so the links
    still open after the run folder is moved, zipped or shared. A file outside it (an input image
    elsewhere) gets an absolute ``file://`` URI, which only opens on this machine.

    Args:
        p: The file's path (absolute or relative to the working directory).
        page_dir: The page's folder; None: every link absolute.

    Returns:
        The link; ``p`` unchanged when it has no absolute form (cannot happen on POSIX).
    """
    if page_dir is not None:
        # the paths as given first (a link inside the folder keeps pointing there), then with
        # symbolic links resolved (a folder reached through a link)
        inside = relative_inside(p, page_dir) or relative_inside(
            Path(p).resolve(), Path(page_dir).resolve()
        )
        if inside is not None:
            return quote(inside)
    try:
        return Path(p).resolve().as_uri()
    except ValueError:
        return str(p)


def _status(item: ReportItem, filtered: bool) -> str | None:
    if item.kept is None:
        return None
    if not filtered:
        return "unfiltered"
    return "kept" if item.kept else "rejected"


def prepare_item(
    item: ReportItem,
    idx: int,
    filtered: bool,
    masks: ItemMasks | None = None,
    page_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Table row of one item (IoUs and flags derived from its masks); image pixels not touched.

    Args:
        item: The item.
        idx: Its position in the caller's list (links the row to its card).
        filtered: Whether a quality filter ran (else a kept item is "unfiltered").
        masks: The item's masks, when already read (:func:`read_masks`; the caller passes them
            on to :func:`add_card`); None: read here.
        page_dir: The folder the page is written to: links to files inside it are relative
            (:func:`file_link`); None: every link an absolute ``file://`` URI.

    Returns:
        The row as a dict for the template: ``name``, ``status``, ``predicted`` / ``true`` /
        ``input`` IoU and ``gain``, ``road_quality``, ``boundary_f1`` and ``boundary_hd95_px``
        (px; from ``item.extra``) (None where unknown), ``area_px`` / ``area_frac`` /
        ``truth_px`` (pixels), ``objects`` / ``missed`` / ``extra_objects``, ``flag`` ("false
        alarm", "correct empty", "missed" or None), ``paths``, ``errors`` (unreadable files),
        ``extra`` and ``footprint``. Each of ``paths`` is ``{"kind", "path", "uri"}``, ``uri``
        the link (:func:`file_link`).
    """
    m = read_masks(item) if masks is None else masks
    (inp, inp_v), (out, out_v), (tru, tru_v) = m.input, m.output, m.truth
    label, label_v = (out, out_v) if out is not None else (inp, inp_v)
    # pixels the truth marks "ignore" and the label's nodata are not scored (as in elnet evaluate)
    shape = tru.shape if tru is not None else None
    valid = counted_pixels(tru_v, label_v, shape=shape)
    true_iou = as_float(item.true_iou)
    if true_iou is None:
        true_iou = _iou(label, tru, valid)
    input_iou = as_float(item.input_iou)
    if input_iou is None and out is not None:
        input_iou = _iou(inp, tru, counted_pixels(tru_v, inp_v, shape=shape))
    flag = None
    objects = None
    if tru is not None and label is not None and label.shape == tru.shape:
        lab_c, tru_c = (label, tru) if valid is None else (label & valid, tru & valid)
        objects = object_counts(lab_c, tru_c)
        if not tru_c.any():
            flag = "false alarm" if lab_c.any() else "correct empty"
        elif not lab_c.any():
            flag = "missed"
    paths = {
        k: p
        for k, p in (
            ("label", _path_of(item.output)),
            ("image", _path_of(item.image)),
            ("input label", _path_of(item.input_label)),
            ("truth", _path_of(item.truth)),
            ("probability", _path_of(item.probability)),
        )
        if p
    }
    fp = item.footprint
    if fp is None and isinstance(item.image, (str, Path)):
        fp = read_footprint(item.image)
    return {
        "idx": idx,
        "name": item.name,
        "status": _status(item, filtered),
        "predicted": as_float(item.predicted_iou),
        "true": true_iou,
        "road_quality": as_float(item.extra.get("road_quality")),  # road data: a sortable column
        "boundary_f1": as_float(item.extra.get("boundary_f1")),  # evaluate --boundary: columns
        "boundary_hd95_px": as_float(item.extra.get("boundary_hd95_px")),
        "input": input_iou if out is not None and inp is not None else None,
        "gain": (true_iou - input_iou)
        if (true_iou is not None and input_iou is not None and out is not None)
        else None,
        "area_px": int(label.sum()) if label is not None else None,
        "area_frac": float(label.mean()) if label is not None and label.size else None,
        "truth_px": int(tru.sum()) if tru is not None else None,
        "objects": objects[0] if objects else None,
        "missed": objects[1] if objects else None,
        "extra_objects": objects[2] if objects else None,
        "flag": flag,
        "paths": [{"kind": k, "path": p, "uri": file_link(p, page_dir)} for k, p in paths.items()],
        "errors": list(m.errors),
        "extra": [(key_label(str(k)), fmt_value(v)) for k, v in item.extra.items()],
        "footprint": fp,
    }


def order_items(views: list[dict[str, Any]], order: str) -> tuple[list[dict[str, Any]], str]:
    """Sort by predicted IoU (else true IoU, else name); items without a score go last.

    Args:
        views: Rows from :func:`prepare_item`.
        order: "worst" (lowest IoU first), "best" or "name".

    Returns:
        The sorted rows and a phrase saying how they are sorted.

    Raises:
        ValueError: ``order`` is none of the three.
    """
    if order not in ("worst", "best", "name"):
        raise ValueError("order must be 'worst', 'best' or 'name'")
    if order == "name":
        return sorted(views, key=lambda v: v["name"]), "by name"
    attr = "predicted" if any(v["predicted"] is not None for v in views) else "true"
    if not any(v[attr] is not None for v in views):
        return sorted(views, key=lambda v: v["name"]), "by name (no quality scores given)"
    sign = 1.0 if order == "worst" else -1.0
    scored = sorted(
        (v for v in views if v[attr] is not None), key=lambda v: (sign * v[attr], v["name"])
    )
    rest = sorted((v for v in views if v[attr] is None), key=lambda v: v["name"])
    what = "predicted IoU" if attr == "predicted" else "true IoU"
    return scored + rest, f"by {what}, {'worst' if order == 'worst' else 'best'} first"
