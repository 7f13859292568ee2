"""One image of the report: :class:`ReportItem`, its per-image facts and its card's pictures.

:func:`read_masks` reads an item's masks (:class:`ItemMasks`); :func:`prepare_item` derives its
row from them (true / input IoU, object counts and empty-truth flags with the truth's ignore
pixels and the label's nodata left out, as ``elnet evaluate`` leaves them out; filter status, file
links); :func:`add_card` draws the picture layers of a shown item from the same masks
(:mod:`sam2elnet.pipeline.report_figures`; pixels not scored hatched grey); :func:`order_items`
sorts rows worst (or best) first. One unreadable file costs its item a note, never the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.pipeline import report_figures as figs
from sam2elnet.pipeline.glossary import label as key_label
from sam2elnet.pipeline.report_figures import COLORS, display_rgb
from sam2elnet.pipeline.report_map import Footprint, read_footprint
from sam2elnet.pipeline.report_tables import as_float, fmt_value
from sam2elnet.pipeline.report_vector import SharedVector, draw_vector_label, is_vector_label

log = logging.getLogger(__name__)

__all__ = [
    "ItemMasks",
    "ReportItem",
    "TruthOnGrid",
    "add_card",
    "eval_truth",
    "object_counts",
    "order_items",
    "prepare_item",
    "read_masks",
]


@dataclass
class ReportItem:
    """One image of the report.

    ``image`` is a (C, H, W) or (H, W) array (any dtype; SAR is fine, it is percentile-stretched)
    or a path to an image file. ``input_label`` (coarse / given label), ``output`` (the label under
    review) and ``truth`` are (H, W) masks (bool or 0/1, or a path; ``truth`` also a
    :class:`TruthOnGrid`); ``probability`` is an (H, W)
    probability map in [0, 1] (or uint8 0-255, or a path); any of them may be None.
    ``predicted_iou`` is the quality evaluator's estimate, ``true_iou`` the IoU of ``output`` (or of
    ``input_label`` if no output) against ``truth`` and ``input_iou`` that of ``input_label``
    (also a :class:`~sam2elnet.pipeline.report_vector.SharedVector`); both
    are computed from the masks when not given. ``kept`` is the filter decision (None: no
    decision). ``footprint`` places the image on the map (read from a georeferenced ``image`` path
    when not given). ``extra`` is shown as small key/value lines on the card. ``image_note`` says
    on the card why it has no image (``image`` None; default "no image").
    """

    name: str
    image: np.ndarray | str | Path | None = None
    input_label: np.ndarray | str | Path | SharedVector | None = None
    output: np.ndarray | str | Path | None = None
    truth: np.ndarray | str | Path | TruthOnGrid | None = None
    predicted_iou: float | None = None
    true_iou: float | None = None
    kept: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    probability: np.ndarray | str | Path | None = None
    input_iou: float | None = None
    footprint: Footprint | None = None
    image_note: str | None = None


@dataclass(frozen=True)
class TruthOnGrid:
    """An evaluated ground truth drawn as ``elnet evaluate`` scored it, read with its prediction
    when the report reaches its item (:func:`read_masks`, one read for the row and the card;
    :func:`sam2elnet.engine.evaluate.read_evaluated`): on its prediction's grid (polygons
    rasterised, a truth on another grid resampled), with the pixels the evaluation did not count
    (the truth's ignore pixels, the prediction's nodata, the ``--valid`` mask, outside a
    resampled truth's footprint). ``row``: the evaluation's
    :class:`~sam2elnet.engine.eval_result.ImageResult`; ``vectors``: its shared polygon files
    (:func:`~sam2elnet.engine.evaluate.vector_truths`; one read for all cards)."""

    path: Path
    pred: Path
    row: Any = field(default=None, compare=False, repr=False)
    vectors: Any = field(default=None, compare=False, repr=False)

    def read(self) -> np.ndarray:
        """bool (H, W) on the prediction's grid."""
        return self.read_valid()[0]

    def read_valid(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(truth, counted): bool (H, W) arrays on the prediction's grid; ``counted`` is False
        where the evaluation left a pixel out (None: every pixel counted). Raises DataError."""
        m = self.read_pair()
        return m.truth, m.valid

    def read_pair(self) -> Any:
        """The pair as the evaluation counted it, prediction included
        (:class:`~sam2elnet.engine.eval_stream.PairMasks`). Raises DataError."""
        from sam2elnet.engine.evaluate import read_evaluated

        return read_evaluated(self.row, self.vectors)


def eval_truth(row: Any, vectors: Any = None) -> TruthOnGrid:
    """The truth of an evaluated image (``ImageResult``) for its report card, read as the
    evaluation counted it; ``vectors``: the evaluation's shared polygon files
    (:func:`~sam2elnet.engine.evaluate.vector_truths`)."""
    return TruthOnGrid(Path(row.truth_path), Path(row.pred_path), row, vectors)


def _load_mask(m: Any, grid: Any = None) -> np.ndarray | None:
    """A mask given as array or file -> bool (H, W) (:func:`_load_mask_valid`)."""
    return _load_mask_valid(m, grid)[0]


def _load_mask_valid(m: Any, grid: Any = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A mask given as array or file -> (bool (H, W), valid): ``valid`` is False where the file
    says "ignore" / nodata (127 in this project's labels, the GeoTIFF nodata tag;
    :func:`sam2elnet.data.masks.read_mask_valid`), None when every pixel counts (arrays). A
    :class:`TruthOnGrid` gives the pixels its evaluation counted. A vector label (the polygons
    or road lines ``enhance --labels`` takes, a file or a
    :class:`~sam2elnet.pipeline.report_vector.SharedVector`) is drawn on the image ``grid`` (a
    path) as enhance read it (:func:`~sam2elnet.pipeline.report_vector.draw_vector_label`).
    Raises DataError for an unreadable file."""
    if m is None:
        return None, None
    if isinstance(m, TruthOnGrid):
        return m.read_valid()
    if is_vector_label(m):
        return draw_vector_label(m, grid), None
    if isinstance(m, (str, Path)):
        from sam2elnet.data.masks import read_mask_valid

        obj, valid = read_mask_valid(m)
        return np.asarray(obj, dtype=bool), valid
    a = np.asarray(m)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    return (a > 0.5 if np.issubdtype(a.dtype, np.floating) else a != 0), None


Masked = tuple[np.ndarray | None, np.ndarray | None]
"""A mask and the pixels it counts (:func:`_load_mask_valid`); (None, None): none, or unreadable."""


@dataclass
class ItemMasks:
    """The masks of one :class:`ReportItem`, read once (:func:`read_masks`) for its table row
    (:func:`prepare_item`) and its card (:func:`add_card`).

    ``input``, ``output``, ``truth``: ``(mask, valid)`` pairs of bool (H, W) arrays
    (:func:`_load_mask_valid`; ``valid`` None: every pixel counts; ``(None, None)``: not given or
    unreadable). The label of an evaluated pair (``output`` the prediction of a
    :class:`TruthOnGrid`) comes from the pair's one read, its nodata in the truth's ``valid``
    (its own ``valid`` None). ``errors``: one ``"<kind>: <error>"`` line per unreadable file.
    """

    input: Masked = (None, None)
    output: Masked = (None, None)
    truth: Masked = (None, None)
    errors: list[str] = field(default_factory=list)


def read_masks(item: ReportItem, warn: bool = True) -> ItemMasks:
    """Read the input label, label and truth of ``item`` once (a vector label rasterised onto
    ``item.image``'s grid, a :class:`TruthOnGrid` read as its evaluation counted it). An
    unreadable file is named in ``errors`` and, with ``warn``, logged as a warning
    (``sam2elnet.pipeline.report_items``); it never raises for a file."""
    out = ItemMasks()
    todo = [
        ("input", "input label", item.input_label),
        ("output", "label", item.output),
        ("truth", "truth", item.truth),
    ]
    if isinstance(item.truth, TruthOnGrid) and _same_file(item.output, item.truth.pred):
        try:  # the evaluated pair read once: prediction (the label) and truth on its grid
            pair = item.truth.read_pair()
            out.output, out.truth = (pair.pred, None), (pair.truth, pair.valid)
            todo = todo[:1]
        except DataError:
            pass  # each file on its own below: the readable one is still drawn
    for attr, kind, value in todo:
        try:
            setattr(out, attr, _load_mask_valid(value, item.image))
        except DataError as err:  # one unreadable file must not cost the whole report
            if warn:
                log.warning("report: %s", err)
            out.errors.append(f"{kind}: {err}")
    return out


def _same_file(a: Any, b: Path) -> bool:
    return isinstance(a, (str, Path)) and Path(a) == Path(b)


def _both(*valids: np.ndarray | None, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """The pixels every ``valids`` mask counts (None: all); masks of another ``shape`` are not
    applied (a label and truth of different sizes are not compared anyway)."""
    out = None
    for v in valids:
        if v is None or (shape is not None and v.shape != shape):
            continue
        out = v if out is None else (out & v)
    return out


def _load_prob(p: np.ndarray | str | Path | None) -> np.ndarray | None:
    if p is None:
        return None
    if isinstance(p, (str, Path)):
        from sam2elnet.data.images import read_image

        return np.asarray(read_image(p).data)[0]
    return np.asarray(p)


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
    if isinstance(v, (TruthOnGrid, SharedVector)):
        return str(v.path)
    return str(v) if isinstance(v, (str, Path)) else None


def _file_uri(p: str) -> str:
    try:
        return Path(p).resolve().as_uri()
    except ValueError:
        return p


def _status(item: ReportItem, filtered: bool) -> str | None:
    if item.kept is None:
        return None
    if not filtered:
        return "unfiltered"
    return "kept" if item.kept else "rejected"


def prepare_item(
    item: ReportItem, idx: int, filtered: bool, masks: ItemMasks | None = None
) -> dict[str, Any]:
    """Table row of one item (IoUs and flags derived from its masks); image pixels not touched.

    Args:
        item: The item.
        idx: Its position in the caller's list (links the row to its card).
        filtered: Whether a quality filter ran (else a kept item is "unfiltered").
        masks: The item's masks, when already read (:func:`read_masks`; the caller passes them
            on to :func:`add_card`); None: read here.

    Returns:
        The row as a dict for the template: ``name``, ``status``, ``predicted`` / ``true`` /
        ``input`` IoU and ``gain`` (None where unknown), ``area_px`` / ``area_frac`` /
        ``truth_px`` (pixels), ``objects`` / ``missed`` / ``extra_objects``, ``flag`` ("false
        alarm", "correct empty", "missed" or None), ``paths``, ``errors`` (unreadable files),
        ``extra`` and ``footprint``.
    """
    m = read_masks(item) if masks is None else masks
    (inp, inp_v), (out, out_v), (tru, tru_v) = m.input, m.output, m.truth
    label, label_v = (out, out_v) if out is not None else (inp, inp_v)
    # pixels the truth marks "ignore" and the label's nodata are not scored (as in elnet evaluate)
    shape = tru.shape if tru is not None else None
    valid = _both(tru_v, label_v, shape=shape)
    true_iou = as_float(item.true_iou)
    if true_iou is None:
        true_iou = _iou(label, tru, valid)
    input_iou = as_float(item.input_iou)
    if input_iou is None and out is not None:
        input_iou = _iou(inp, tru, _both(tru_v, inp_v, shape=shape))
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
        "paths": [{"kind": k, "path": p, "uri": _file_uri(p)} for k, p in paths.items()],
        "errors": list(m.errors),
        "extra": [(key_label(str(k)), fmt_value(v)) for k, v in item.extra.items()],
        "footprint": fp,
    }


def add_card(
    view: dict[str, Any],
    item: ReportItem,
    thumb_px: int,
    full_px: int,
    styles: list,
    masks: ItemMasks | None = None,
) -> None:
    """Add the picture layers of a shown item to ``view`` (image embedded once as a CSS class).

    The error map leaves the pixels that are not scored (the truth's ignore pixels, the label's
    nodata; for an evaluated pair every pixel ``elnet evaluate`` left out) out of TP / FP / FN:
    they are hatched grey (``COLORS["nodata"]``, :func:`~sam2elnet.pipeline.report_figures.error_layer`).
    Without an image the panels have a neutral background, the error map comes first and
    ``item.image_note`` (default "no image") says why.

    Args:
        view: The item's row from :func:`prepare_item`; gets a ``card`` entry (sizes in px,
            PNG data URIs of the mask / error / probability layers, ``image_note``, ``panels``:
            how many panels it shows) and notes in ``errors``.
        item: The item (image and masks are read here).
        thumb_px: Longest side of the card thumbnail (chips smaller than half of it are drawn
            up to twice as large, pixels kept sharp).
        full_px: Longest side of the embedded image and layers (click to enlarge).
        styles: Receives ``(css class, JPEG data URI)`` of the image.
        masks: The masks :func:`prepare_item` made the row from (:func:`read_masks`); None:
            read again here (their errors are already on the row, not logged twice).
    """
    if masks is None:
        masks = read_masks(item, warn=False)
    (inp, inp_v), (out, out_v), (tru, tru_v) = masks.input, masks.output, masks.truth
    rgb = None
    if item.image is not None:
        try:
            rgb = display_rgb(item.image)
        except (DataError, ValueError) as err:
            log.warning("report: %s", err)
            view["errors"].append(f"image: {err}")
    shapes = [a.shape[:2] for a in (inp, out, tru) if a is not None]
    native = rgb.shape[:2] if rgb is not None else (shapes[0] if shapes else (thumb_px, thumb_px))
    fh, fw = figs.fit_shape(native, full_px)
    th, tw = figs.fit_shape(native, thumb_px)
    # tiny chips (e.g. 64 px) are drawn up to twice as large, pixels kept sharp
    up = min(2.0, thumb_px / max(th, tw))
    if up > 1.0:
        th, tw = round(th * up), round(tw * up)
    cls = f"im{view['idx']}"
    if rgb is not None:
        styles.append((cls, figs.image_data_uri(figs.resize_rgb(rgb, (fh, fw)))))
    width = max(1, round(max(fh, fw) / max(th, tw)))  # outline still visible on the card
    small = {
        k: (figs.resize_mask(m, (fh, fw)) if m is not None else None)
        for k, m in (("input", inp), ("output", out), ("truth", tru))
    }
    layers = []
    if small["input"] is not None:
        layers.append(
            ("input", "input label", figs.mask_layer(small["input"], COLORS["input"], width))
        )
    if small["output"] is not None:
        layers.append(
            ("output", "label", figs.mask_layer(small["output"], COLORS["output"], width))
        )
    if small["truth"] is not None:
        layers.append(
            ("truth", "ground truth", figs.mask_layer(small["truth"], COLORS["truth"], width))
        )
    cmp_, cmp_v = (
        (small["output"], out_v) if small["output"] is not None else (small["input"], inp_v)
    )
    if small["truth"] is not None and cmp_ is not None:
        cap = "errors" if small["output"] is not None else "label errors"
        # not scored: the truth's ignore pixels and the label's nodata (a pixel of the drawn
        # size is left out when at least half of the pixels it stands for are)
        valid = _both(tru_v, cmp_v, shape=tru.shape)  # type: ignore[union-attr]
        if valid is not None:
            valid = ~figs.resize_mask(~valid, (fh, fw))
        errors = ("errors", cap, figs.error_layer(cmp_, small["truth"], valid))
        if rgb is not None:
            layers.append(errors)
        else:  # without an image the error map comes first, on a neutral background
            layers.insert(0, errors)
    prob = None
    if item.probability is not None:
        try:
            prob = figs.probability_layer(_load_prob(item.probability), (fh, fw))
        except (DataError, ValueError) as err:
            log.warning("report: %s", err)
            view["errors"].append(f"probability: {err}")
    note = None
    if rgb is None:
        note = (
            "image could not be read" if item.image is not None else (item.image_note or "no image")
        )
    view["card"] = {
        "cls": cls,
        "has_image": rgb is not None,
        "image_note": note,
        "panels": len(layers) + (0 if rgb is None and layers and layers[0][0] == "errors" else 1),
        "tw": tw,
        "th": th,
        "fw": fw,
        "fh": fh,
        "native": f"{native[1]} × {native[0]} px",
        "pixelated": up > 1.0,
        "layers": [
            {"key": k, "caption": c, "src": figs.png_data_uri(a, palette=True)}
            for k, c, a in layers
        ],
        "prob": figs.png_data_uri(prob) if prob is not None else None,
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
