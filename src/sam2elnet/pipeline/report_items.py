"""One image of the report: :class:`ReportItem` and its masks, read once for its row and card.

:func:`read_masks` reads an item's masks (:class:`ItemMasks`: the input label, the label and the
truth, each with the pixels it counts: the truth's ignore pixels and the label's nodata left out,
as ``elnet evaluate`` leaves them out; an input label placed on the image's grid as ``elnet
enhance`` placed it (a raster by :func:`sam2elnet.data.masks.read_mask_on_grid`, one raster that
several items share as a :class:`~sam2elnet.data.vector_shared.SharedRaster`,
:func:`share_raster_labels`; a vector label rasterised), an evaluated truth
(:class:`TruthOnGrid`) read as its evaluation counted it). One unreadable file costs its item a
note, never the report. :func:`evaluation_items` makes the items of an
``elnet evaluate`` result. The item's table row is
:mod:`sam2elnet.pipeline.report_rows`, its card's pictures :mod:`sam2elnet.pipeline.report_cards`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.naming import IMAGE_TAGS, image_files, mask_key
from sam2elnet.data.vector_shared import SharedRaster, SharedVector, is_shared
from sam2elnet.errors import DataError
from sam2elnet.pipeline.report_map import Footprint
from sam2elnet.pipeline.report_vector import draw_vector_label, is_vector_label

log = logging.getLogger(__name__)

__all__ = [
    "ItemMasks",
    "ReportItem",
    "TruthOnGrid",
    "counted_pixels",
    "eval_truth",
    "evaluation_items",
    "read_masks",
    "share_raster_labels",
]


@dataclass
class ReportItem:
    """One image of the report.

    ``image`` is a (C, H, W) or (H, W) array (any dtype; SAR is fine, it is percentile-stretched)
    or a path to an image file. ``input_label`` (coarse / given label), ``output`` (the label under
    review) and ``truth`` are (H, W) masks (bool or 0/1, or a path; ``truth`` also a
    :class:`TruthOnGrid`; a raster ``input_label`` file is placed on the image's grid as enhance
    placed it, also a :class:`~sam2elnet.data.vector_shared.SharedRaster`); ``probability`` is an
    (H, W)
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
    input_label: np.ndarray | str | Path | SharedVector | SharedRaster | None = None
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
    :func:`sam2elnet.engine.eval_readback.read_evaluated`): on its prediction's grid (polygons
    rasterised, a truth on another grid resampled), with the pixels the evaluation did not count
    (the truth's ignore pixels, the prediction's nodata, the ``--valid`` mask, outside a
    resampled truth's footprint). ``row``: the evaluation's
    :class:`~sam2elnet.engine.eval_result.ImageResult`; ``vectors``: its shared polygon files
    (:func:`~sam2elnet.engine.eval_readback.vector_truths`; one read for all cards)."""

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
        from sam2elnet.engine.eval_readback import read_evaluated

        return read_evaluated(self.row, self.vectors)


def eval_truth(row: Any, vectors: Any = None) -> TruthOnGrid:
    """The truth of an evaluated image (``ImageResult``) for its report card, read as the
    evaluation counted it; ``vectors``: the evaluation's shared polygon files
    (:func:`~sam2elnet.engine.eval_readback.vector_truths`)."""
    return TruthOnGrid(Path(row.truth_path), Path(row.pred_path), row, vectors)


def _is_raster_file(m: Any) -> bool:
    return isinstance(m, SharedRaster) or (isinstance(m, (str, Path)) and not is_vector_label(m))


def _place_input(m: str | Path | SharedRaster, grid: str | Path) -> Masked:
    """A raster input label on the image ``grid``'s pixel grid, as enhance placed its coarse
    label (:func:`~sam2elnet.data.masks.read_mask_on_grid`: by map position when both are
    georeferenced, by pixel index on the same grid, stretched without a common georeference;
    a :class:`~sam2elnet.data.vector_shared.SharedRaster` that misses the image: empty, every
    pixel not counted). The image's header only is read. The run said its placement warnings
    (partial cover, no georeference ...) already: not repeated here. Raises DataError."""
    from sam2elnet.data.masks import read_mask_on_grid
    from sam2elnet.utils.run_warnings import quiet

    with quiet():
        obj, valid = read_mask_on_grid(m, grid, label="input label", shared=is_shared(m))
    return np.asarray(obj, dtype=bool), valid


def share_raster_labels(items: Sequence[ReportItem]) -> list[ReportItem]:
    """``items`` with each raster input label file that two or more of them give as one
    :class:`~sam2elnet.data.vector_shared.SharedRaster` (``elnet enhance --labels region.tif``,
    one regional raster for a folder of images; those items copied, the others as they are):
    its card is then drawn as enhance read it, empty on an image its footprint misses."""
    rasters = [
        Path(it.input_label) if _is_raster_file(it.input_label) else None  # type: ignore[arg-type]
        for it in items
    ]
    many = {p for p, n in Counter(p for p in rasters if p is not None).items() if n > 1}
    return [
        replace(it, input_label=SharedRaster(p)) if p in many else it  # type: ignore[arg-type]
        for it, p in zip(items, rasters, strict=True)
    ]


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
    """Read the input label, label and truth of ``item`` once (an input label placed on
    ``item.image``'s grid as enhance placed it, a raster by map position or pixel index, a vector
    label rasterised; without an image on an evaluated prediction's grid; a
    :class:`TruthOnGrid` read as its evaluation counted it). An
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
    grid = item.image
    if grid is None and isinstance(item.truth, TruthOnGrid):  # e.g. evaluate --baseline a.gpkg
        grid = item.truth.pred  # without images: polygons drawn on the prediction's grid
    for attr, kind, value in todo:
        try:
            if attr == "input" and _is_raster_file(value) and isinstance(grid, (str, Path)):
                setattr(out, attr, _place_input(value, grid))  # as enhance placed it
            else:
                setattr(out, attr, _load_mask_valid(value, grid))
        except DataError as err:  # one unreadable file must not cost the whole report
            if warn:
                log.warning("report: %s", err)
            out.errors.append(f"{kind}: {err}")
    return out


def _same_file(a: Any, b: Path) -> bool:
    return isinstance(a, (str, Path)) and Path(a) == Path(b)


def counted_pixels(
    *valids: np.ndarray | None, shape: tuple[int, ...] | None = None
) -> np.ndarray | None:
    """The pixels every ``valids`` mask counts: bool (H, W), or None (every pixel); masks of
    another ``shape`` are not applied (a label and truth of different sizes are not compared
    anyway). The one rule of the report's row (:mod:`sam2elnet.pipeline.report_rows`) and its
    card's error map (:mod:`sam2elnet.pipeline.report_cards`)."""
    out = None
    for v in valids:
        if v is None or (shape is not None and v.shape != shape):
            continue
        out = v if out is None else (out & v)
    return out


def _image_index(images: str | Path | None) -> dict[str, Path]:
    """Images of a folder keyed like the masks; ``<id>_sat.*`` wins over a mask stored beside it."""
    found: dict[str, Path] = {}
    for f in image_files(Path(images)) if images is not None else []:
        k = mask_key(f.name)
        if k not in found or f.stem.lower().endswith(IMAGE_TAGS):
            found[k] = f
    return found


def _eval_extra(r: Any) -> dict[str, Any]:
    """Per-image extras of an evaluation row: F1, boundary F1 and HD95 (``--boundary``), the road
    measures (road data) and, with a baseline, its IoU and the change."""
    extra: dict[str, Any] = {"f1": r.metrics["f1"]}
    if r.boundary is not None:
        extra["boundary_f1"] = r.boundary.scores()["boundary_f1"]
        extra["boundary_hd95_px"] = (
            r.boundary_hd95
        )  # None: not computed (strips, boundary too long)
    if r.roads is not None:
        extra.update(r.roads.scores())
    base = getattr(r, "baseline_iou", None)
    if base is not None:
        extra["baseline_iou"] = base
        extra["delta_iou"] = r.metrics["iou"] - base
    return extra


def evaluation_items(result: Any, images: str | Path | None = None) -> list[ReportItem]:
    """One :class:`ReportItem` per scored image of an ``elnet evaluate`` result: prediction,
    truth as the evaluation counted it (on the prediction's grid, with the pixels it left out:
    :func:`~sam2elnet.pipeline.report_items.eval_truth`; a polygon file shared by many images is
    read once for all cards, :func:`~sam2elnet.engine.eval_readback.vector_truths`), true and
    predicted IoU, filter decision, F1 (and road quality, baseline IoU); the image from
    ``images`` (a folder, matched by name; an image file for a one-pair result) else the
    quality table's ``image`` column, the input label from its ``coarse`` column (enhance
    runs). A card without an image says why (no ``--images``, or none of its name there)."""
    from sam2elnet.engine.eval_readback import vector_truths

    # one image file (one pair: --pred FILE --truth FILE --images FILE) is that pair's image
    single = Path(images) if images is not None and Path(images).is_file() else None
    img_files = {} if single is not None else _image_index(images)
    vectors = vector_truths(result)
    no_image = (
        "no image given (--images)" if images is None else "no image of this name in --images"
    )
    items = []
    for r in result.images:
        image = single if single is not None and len(result.images) == 1 else img_files.get(r.name)
        if image is None and r.image_path and Path(r.image_path).is_file():
            image = Path(r.image_path)
        label = None
        if r.input_label_path and Path(r.input_label_path).is_file():
            label = Path(r.input_label_path)
        elif getattr(r, "baseline_path", None) is not None:
            label = r.baseline_path
        items.append(
            ReportItem(
                name=r.name,
                image=image,
                input_label=label,
                output=r.pred_path,
                truth=eval_truth(r, vectors),
                predicted_iou=r.predicted_iou,
                true_iou=r.metrics["iou"],
                kept=r.kept,
                extra=_eval_extra(r),
                image_note=no_image,
            )
        )
    return items
