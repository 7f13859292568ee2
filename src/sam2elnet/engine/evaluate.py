"""Folder evaluation (``elnet evaluate``): pair predicted masks with their ground truth and score them.

:func:`evaluate_folders` scans a prediction folder (or the output folder of ``elnet annotate`` /
``elnet enhance``) and a ground-truth folder, pairs files by
:func:`~sam2elnet.data.naming.mask_key`, scores each pair with the pure measures of
:mod:`sam2elnet.engine.metrics` (pixel scores, optional boundary F-score and road measures) and,
when the run's ``quality.csv`` is found (:mod:`sam2elnet.data.runfolder`), how well the predicted
label quality tracks the true IoU.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.naming import MASK_SUFFIXES, NOT_MASK_TAGS, PAIRING_IMAGE_TAGS, mask_key
from sam2elnet.data.runfolder import RUN_MASK_FOLDERS, find_quality_csv, quality_by_key
from sam2elnet.engine.metrics import (
    BoundaryCounts,
    Confusion,
    QualityStats,
    RoadCounts,
    boundary_counts,
    confusion,
    json_num,
    quality_stats,
    road_counts,
    scores,
)
from sam2elnet.errors import DataError, UserError

log = logging.getLogger(__name__)

__all__ = [
    "EvaluationResult",
    "ImageResult",
    "evaluate_folders",
    "iter_pairs",
    "read_binary_mask",
]


def read_binary_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as a bool (H, W) array with :func:`sam2elnet.data.masks.read_mask`
    ({0,1}: 1 is foreground; {0,255} and greys: ``> 127``; palette PNGs by class index).
    A file that cannot be read raises :class:`DataError` naming it."""
    from sam2elnet.data.masks import read_mask

    return np.asarray(read_mask(path), dtype=bool)


def _mask_files(folder: Path) -> list[Path]:
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file()
        and not f.name.startswith(".")
        and f.suffix.lower() in MASK_SUFFIXES
        and not any(f.stem.lower().endswith(s) for s in NOT_MASK_TAGS)
    )


def _scan(folder: Path, role: str, run_layout: bool = False) -> dict[str, Path]:
    """Mask files of ``folder`` keyed by :func:`mask_key`; duplicates that cannot be resolved fail.

    With ``run_layout``, a folder without masks of its own but with ``labels/`` / ``rejected/``
    sub-folders (the output of ``elnet annotate`` / ``elnet enhance``) is read through those, so
    kept *and* rejected labels are evaluated, which the quality statistics need.
    """
    if not folder.exists():
        raise UserError(f"{role} folder does not exist; check the path", folder)
    if not folder.is_dir():
        raise UserError(f"{role} must be a folder of mask files, not a file", folder)
    files = _mask_files(folder)
    if not files and run_layout:
        for sub in RUN_MASK_FOLDERS:
            if (folder / sub).is_dir():
                files.extend(_mask_files(folder / sub))
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(mask_key(f.name), []).append(f)
    out: dict[str, Path] = {}
    for key, group in groups.items():
        if len(group) > 1:
            # SOS training layout keeps <id>_sat.jpg next to <id>_mask.png: drop the images
            non_image = [
                g for g in group if not any(g.stem.lower().endswith(s) for s in PAIRING_IMAGE_TAGS)
            ]
            group = non_image or group
        if len(group) > 1:
            raise DataError(
                f"several files pair with the name '{key}': {', '.join(g.name for g in group)}; "
                "keep one mask per image",
                folder,
            )
        out[key] = group[0]
    if not out:
        raise DataError(
            f"{role} folder holds no mask files ({', '.join(MASK_SUFFIXES)}); check the path",
            folder,
        )
    return out


# --------------------------------------------------------------------------------------------
# folder evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class ImageResult:
    """Per-image evaluation row."""

    name: str
    pred_path: Path
    truth_path: Path
    confusion: Confusion
    metrics: dict[str, float]
    boundary: BoundaryCounts | None = None
    roads: RoadCounts | None = None
    predicted_iou: float | None = None
    kept: bool | None = None
    image_path: str | None = None
    input_label_path: str | None = None

    @property
    def iou(self) -> float:
        return self.metrics["iou"]

    def as_dict(self) -> dict[str, Any]:
        """Flat row (for CSV/JSON): name, paths, counts, scores, optional boundary/road/quality."""
        row: dict[str, Any] = {
            "image": self.name,
            "pred": str(self.pred_path),
            "truth": str(self.truth_path),
            **self.confusion.as_dict(),
            "truth_pixels": self.confusion.tp + self.confusion.fn,
            "pred_pixels": self.confusion.tp + self.confusion.fp,
        }
        row.update(self.metrics)
        if self.boundary is not None:
            row.update(self.boundary.scores())
        if self.roads is not None:
            row.update(self.roads.scores())
        if self.predicted_iou is not None:
            row["predicted_iou"] = self.predicted_iou
            row["kept"] = self.kept
        if self.image_path:
            row["image_path"] = self.image_path
        return {k: json_num(v) for k, v in row.items()}


@dataclass
class EvaluationResult:
    """Outcome of :func:`evaluate_folders`.

    ``aggregate`` holds the pixel-summed scores (``iou``, ``f1``, ... as in :func:`scores`, plus
    boundary/road scores when asked), ``mean_image_iou`` and ``n_images``; ``quality`` is set when a
    quality table was found.
    """

    pred_dir: Path
    truth_dir: Path
    images: list[ImageResult]
    aggregate: dict[str, Any]
    total: Confusion
    unmatched_pred: list[str] = field(default_factory=list)
    unmatched_truth: list[str] = field(default_factory=list)
    quality: QualityStats | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.images]

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (NaN written as null)."""
        return {
            "pred_dir": str(self.pred_dir),
            "truth_dir": str(self.truth_dir),
            "options": self.options,
            "aggregate": {k: json_num(v) for k, v in self.aggregate.items()},
            "quality": None if self.quality is None else self.quality.as_dict(),
            "unmatched_pred": self.unmatched_pred,
            "unmatched_truth": self.unmatched_truth,
            "images": self.rows(),
        }

    def write_json(self, path: str | Path) -> Path:
        from sam2elnet.utils.atomic import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    def write_csv(self, path: str | Path) -> Path:
        """Per-image rows as CSV (columns = union of row keys, in first-seen order)."""
        import io

        from sam2elnet.utils.atomic import write_text_atomic

        rows = self.rows()
        cols: list[str] = []
        for r in rows:
            cols.extend(k for k in r if k not in cols)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
        return write_text_atomic(path, buf.getvalue())


def _aggregate(
    images: list[ImageResult], boundary: bool, roads: bool
) -> tuple[dict[str, Any], Confusion]:
    total = sum((r.confusion for r in images), Confusion())
    agg: dict[str, Any] = {"n_images": len(images), **scores(total)}
    per = np.array([r.metrics["iou"] for r in images], dtype=float)
    fin = np.isfinite(per)
    agg["mean_image_iou"] = float(per[fin].mean()) if fin.any() else float("nan")
    agg.update({f"total_{k}": v for k, v in total.as_dict().items()})
    if boundary:
        agg.update(sum((r.boundary for r in images if r.boundary), BoundaryCounts()).scores())
        bf = np.array(
            [r.boundary.scores()["boundary_f1"] for r in images if r.boundary], dtype=float
        )
        agg["mean_image_boundary_f1"] = float(bf.mean()) if bf.size else float("nan")
    if roads:
        agg.update(sum((r.roads for r in images if r.roads), RoadCounts()).scores())
    return agg, total


def _split_truths(root: Path, split: str | Sequence[str]) -> dict[str, Path]:
    """Ground-truth masks of one split of a dataset root, keyed by :func:`mask_key`."""
    from sam2elnet.data.layouts import select_split

    choice = select_split(root, split, purpose="evaluating")
    out: dict[str, Path] = {}
    for s in choice.index.samples:
        if s.mask is None:
            continue
        key = mask_key(s.mask.name)
        if key in out:
            raise DataError(
                f"masks {out[key]} and {s.mask} have the same name '{key}' in split "
                f"{split!r}; evaluate one sensor folder at a time (--truth .../gt)",
                root,
            )
        out[key] = s.mask
    log.info(choice.describe("evaluating"))
    return out


def evaluate_folders(
    pred_dir: str | Path,
    truth_dir: str | Path,
    quality_csv: str | Path | None = None,
    boundary: bool = False,
    roads: bool | str = False,
    valid_dir: str | Path | None = None,
    *,
    tolerance_px: float = 2.0,
    road_buffer_px: float = 3.0,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    truth_split: str | Sequence[str] | None = None,
) -> EvaluationResult:
    """Compare every predicted mask in ``pred_dir`` with its ground truth in ``truth_dir``.

    With ``truth_split`` (e.g. ``"test"``) ``truth_dir`` is a dataset root (SOS, CHN6-CUG, generic
    split folders) and the ground truth is that split's masks, found by
    :func:`sam2elnet.data.layouts.select_split` (all sensors together).

    Files pair by :func:`mask_key` (stem minus ``_mask``/``_sat``/``_label``/``_pred``/...), so
    ``10791_pred.png`` meets ``10791_mask.png``; images stored next to the masks (``<id>_sat.jpg``)
    are skipped. Files without a partner are listed in ``unmatched_pred`` / ``unmatched_truth`` and
    logged. ``valid_dir`` optionally holds masks of pixels to count (same pairing; missing -> all).
    Pixels the ground truth marks as "ignore" (GeoTIFF nodata, 255 in a 0/1 mask, 127 in this
    project's labels; see :func:`sam2elnet.data.masks.mask_encoding`) are never counted.
    ``positive_values`` names the object value(s) of class-index ground-truth masks.

    ``roads``: True adds the road measures (:func:`road_counts`), ``"auto"`` adds them when the
    ground-truth masks are road networks (:func:`sam2elnet.data.domain.detect_domain`; the decision
    and its reason are in ``options["roads"]`` / ``options["roads_reason"]``).

    ``pred_dir`` may also be the output folder of ``elnet annotate`` / ``elnet enhance``: when it
    holds no masks itself, its ``labels/`` (kept) and ``rejected/`` sub-folders are read together.

    ``quality_csv`` defaults to :func:`find_quality_csv` (``pred_dir/quality.csv``, or the run
    folder's when ``pred_dir`` is ``OUT/labels``); its rows (paired by the ``label`` file name, else
    the ``image`` name) add ``predicted_iou``/``kept`` to each image and produce
    :class:`QualityStats`.

    Raises :class:`UserError` / :class:`DataError` for a missing or empty folder, no pairs at all,
    an unreadable mask, or a pred/truth size mismatch (the message names both files).
    """
    from sam2elnet.data.masks import read_mask_valid
    from sam2elnet.utils.progress import track

    pdir, tdir = Path(pred_dir), Path(truth_dir)
    preds = _scan(pdir, "prediction", run_layout=True)
    truths = _split_truths(tdir, truth_split) if truth_split else _scan(tdir, "ground-truth")
    valids = _scan(Path(valid_dir), "valid-mask") if valid_dir is not None else {}
    keys = sorted(set(preds) & set(truths), key=_natural_key)
    unmatched_pred = sorted((preds[k].name for k in set(preds) - set(truths)), key=_natural_key)
    unmatched_truth = sorted((truths[k].name for k in set(truths) - set(preds)), key=_natural_key)
    if not keys:
        raise DataError(
            f"no prediction in {pdir} pairs with a mask in {tdir} (e.g. {next(iter(preds.values())).name} "
            f"vs {next(iter(truths.values())).name}); names must match after removing _mask/_sat/_pred/_label",
            pdir,
        )
    if unmatched_pred or unmatched_truth:
        log.warning(
            "%d prediction(s) and %d ground-truth mask(s) have no partner (first: %s)",
            len(unmatched_pred),
            len(unmatched_truth),
            (unmatched_pred + unmatched_truth)[0],
        )

    from sam2elnet.data.domain import road_measures_wanted

    roads, roads_reason = road_measures_wanted(roads, [truths[k] for k in keys], positive_values)

    qpath: Path | None = Path(quality_csv) if quality_csv is not None else None
    if qpath is None:
        qpath = find_quality_csv(pdir)
    if qpath is not None and not qpath.is_file():
        raise UserError("quality table does not exist; check the path", qpath)
    qrows = quality_by_key(qpath) if qpath is not None else {}

    images: list[ImageResult] = []
    for key in track(keys, "evaluate", "img", progress):
        if not (boundary or roads) and _streamable(truths[key], preds[key]):
            conf = _streamed_confusion(
                preds[key], truths[key], valids.get(key), positive_values=positive_values
            )
            res = ImageResult(key, preds[key], truths[key], conf, scores(conf))
            _add_quality(res, qrows.get(key))
            images.append(res)
            continue
        truth, truth_valid = read_mask_valid(truths[key], positive_values=positive_values)
        pred = read_binary_mask(preds[key])
        if pred.shape != truth.shape:
            raise DataError(
                f"is {pred.shape[1]}x{pred.shape[0]} (WxH) but its ground truth {truths[key]} is "
                f"{truth.shape[1]}x{truth.shape[0]}; predictions must have the size of their masks",
                preds[key],
            )
        valid = None
        if key in valids:
            valid = read_binary_mask(valids[key])
            if valid.shape != truth.shape:
                raise DataError(
                    f"valid mask {valids[key]} is {valid.shape[1]}x{valid.shape[0]} but ground truth "
                    f"{truths[key]} is {truth.shape[1]}x{truth.shape[0]}",
                    valids[key],
                )
        if truth_valid is not None:
            valid = truth_valid if valid is None else (valid & truth_valid)
        conf = confusion(pred, truth, valid)
        res = ImageResult(key, preds[key], truths[key], conf, scores(conf))
        if boundary:
            res.boundary = boundary_counts(pred, truth, tolerance_px, valid)
        if roads:
            p, t = (pred & valid, truth & valid) if valid is not None else (pred, truth)
            res.roads = road_counts(p, t, buffer_px=road_buffer_px)
        _add_quality(res, qrows.get(key))
        images.append(res)

    agg, total = _aggregate(images, boundary, roads)
    quality = None
    if qrows:
        with_q = [r for r in images if r.predicted_iou is not None]
        if not with_q:
            log.warning("quality table %s names none of the evaluated images", qpath)
        else:
            quality = quality_stats(
                [r.predicted_iou for r in with_q],
                [r.metrics["iou"] for r in with_q],
                [bool(r.kept) for r in with_q],
                [r.confusion for r in with_q],
                source=str(qpath),
            )
    return EvaluationResult(
        pred_dir=pdir,
        truth_dir=tdir,
        images=images,
        aggregate=agg,
        total=total,
        unmatched_pred=unmatched_pred,
        unmatched_truth=unmatched_truth,
        quality=quality,
        options={
            "boundary": boundary,
            "roads": roads,
            "roads_reason": roads_reason,
            "tolerance_px": tolerance_px,
            "road_buffer_px": road_buffer_px,
            "valid_dir": None if valid_dir is None else str(valid_dir),
            "quality_csv": None if qpath is None else str(qpath),
        },
    )


def _add_quality(res: ImageResult, q: dict[str, Any] | None) -> None:
    if q is not None:
        res.predicted_iou = q["predicted_iou"]
        res.kept = q["kept"]
        res.image_path = q["image_path"]
        res.input_label_path = q["coarse_path"]


def _streamable(truth: Path, pred: Path) -> bool:
    """Count a pair strip by strip: a large ground truth or prediction that GDAL can read by
    windows (:func:`sam2elnet.data.windowed.use_windows`, e.g. a 12,000^2 px label GeoTIFF)."""
    from sam2elnet.data import windowed

    return (windowed.windowable(truth) or windowed.windowable(pred)) and (
        windowed.use_windows(truth) or windowed.use_windows(pred)
    )


def _streamed_confusion(
    pred: Path,
    truth: Path,
    valid: Path | None,
    *,
    positive_values: tuple[float, ...] | None = None,
) -> Confusion:
    """The :func:`confusion` of a pair, read in row strips: the same counts as whole reads
    (the value encoding of each file is decided from all its pixels in a first streamed pass,
    :func:`sam2elnet.data.windowed.scan_mask`), with memory of one strip. A file GDAL cannot
    window (PNG, JPEG) is read whole and sliced. Raises DataError like the whole-read path."""
    from sam2elnet.data import windowed
    from sam2elnet.data.raster import read_mask_valid

    def source(path: Path, pv: tuple[float, ...] | None) -> Any:
        if windowed.windowable(path):
            return windowed.mask_plan(path, positive_values=pv)
        return read_mask_valid(path, positive_values=pv)

    t_src = source(truth, positive_values)
    p_src = source(pred, None)
    v_src = source(valid, None) if valid is not None else None

    def shape(src: Any) -> tuple[int, int]:
        return src.shape if isinstance(src, windowed.MaskPlan) else src[0].shape

    h, w = shape(t_src)
    if shape(p_src) != (h, w):
        ph, pw = shape(p_src)
        raise DataError(
            f"is {pw}x{ph} (WxH) but its ground truth {truth} is {w}x{h}; predictions must have "
            "the size of their masks",
            pred,
        )
    if v_src is not None and shape(v_src) != (h, w):
        vh, vw = shape(v_src)
        raise DataError(
            f"valid mask {valid} is {vw}x{vh} but ground truth {truth} is {w}x{h}", valid
        )

    def strip(src: Any, r0: int, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(src, windowed.MaskPlan):
            return windowed.read_mask_window(src, r0, 0, rows, w)
        m, v = src
        return m[r0 : r0 + rows], (None if v is None else v[r0 : r0 + rows])

    total = Confusion()
    step = max(1, windowed.STRIP_PIXELS // max(1, w))
    for r0 in range(0, h, step):
        rows = min(step, h - r0)
        t, t_valid = strip(t_src, r0, rows)
        p = strip(p_src, r0, rows)[0]
        v = strip(v_src, r0, rows)[0] if v_src is not None else None
        if t_valid is not None:
            v = t_valid if v is None else (v & t_valid)
        total = total + confusion(p, t, v)
    return total


def _natural_key(s: str) -> list[Any]:
    """Sort ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def iter_pairs(result: EvaluationResult) -> Iterable[tuple[ImageResult, np.ndarray, np.ndarray]]:
    """Re-read (row, pred, truth) masks of an evaluation, e.g. to draw a report."""
    for r in result.images:
        yield r, read_binary_mask(r.pred_path), read_binary_mask(r.truth_path)
