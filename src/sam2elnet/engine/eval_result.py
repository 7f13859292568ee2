"""What ``elnet evaluate`` reports: one row per scored pair (:class:`ImageResult`), the whole
evaluation (:class:`EvaluationResult`: aggregate, groups, comparison, label quality, skipped
pairs) with its JSON / CSV writers, and the pixel-summed aggregate of rows (:func:`aggregate`).

:func:`sam2elnet.engine.evaluate.evaluate_folders` builds these; the report
(:func:`sam2elnet.pipeline.report.write_evaluation_report`) and the CLI read them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.eval_stream import Resampled
from sam2elnet.engine.metrics import (
    BoundaryCounts,
    Confusion,
    QualityStats,
    RoadCounts,
    json_num,
    scores,
)
from sam2elnet.utils.advice import name_sample, plural
from sam2elnet.utils.batch import OutputSkipList, SkipLog

__all__ = ["IMAGE_MEAN_PREFIX", "EvaluationResult", "ImageResult", "aggregate", "skipped_list"]

IMAGE_MEAN_PREFIX = "mean_image_"
"""The aggregate's keys so named (``mean_image_iou``, ``mean_image_boundary_f1``,
``mean_image_boundary_hd95_px``) are plain means over the images; its other pixel and boundary
scores come from counts summed over the images. The terminal table and report.html say which."""


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
    group: str = ""
    baseline_path: Path | None = None
    baseline_confusion: Confusion | None = None
    resampled: Resampled | None = None
    line_width: tuple[float, str] | None = None  # polygon truth: its lines' width and unit
    valid_path: Path | None = None  # the --valid mask counted with it
    positive_values: tuple[float, ...] | None = None  # object values of a class-index truth
    road_buffer: tuple[float, float | None] | None = None  # road measures' buffer: px, metres
    ground: tuple[float, float | None] | None = None  # prediction's ground pixel (m), scale
    # HD95 px (None: not computed: a pair read in strips with a boundary too long to keep)
    boundary_hd95: float | None = None

    @property
    def iou(self) -> float:
        return self.metrics["iou"]

    @property
    def baseline_iou(self) -> float | None:
        """IoU of the baseline label against the same truth (None without a baseline)."""
        if self.baseline_confusion is None:
            return None
        return scores(self.baseline_confusion)["iou"]

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
            hd = self.boundary_hd95
            row["boundary_hd95_px"] = float("nan") if hd is None else hd  # empty: not computed
        if self.roads is not None:  # this image's measures and the lengths they come from
            if self.road_buffer is not None:  # what they were matched within
                row["road_buffer_px"] = self.road_buffer[0]
                if self.road_buffer[1] is not None:
                    row["road_buffer_m"] = self.road_buffer[1]
            if self.ground is not None:  # the ground pixel that turned metres into px
                row["pixel_size_m"] = self.ground[0]
                if self.ground[1] is not None:
                    row["pixel_scale_factor"] = self.ground[1]
            row.update(self.roads.scores())
            row.update(self.roads.as_dict())
        if self.predicted_iou is not None:
            row["predicted_iou"] = self.predicted_iou
            row["kept"] = self.kept
        if self.image_path:
            row["image_path"] = self.image_path
        if self.group:
            row["group"] = self.group
        if self.resampled is not None:
            row["truth_resampled"] = self.resampled.grid
            row["outside_truth_pixels"] = self.resampled.outside
        if self.baseline_confusion is not None:
            from sam2elnet.engine.comparison import outcome

            base = self.baseline_iou
            row["baseline"] = str(self.baseline_path)
            row["baseline_iou"] = base
            row["delta_iou"] = self.metrics["iou"] - base  # type: ignore[operator]
            row["outcome"] = outcome(row["delta_iou"])
        return {k: json_num(v) for k, v in row.items()}


@dataclass
class EvaluationResult:
    """Outcome of :func:`evaluate_folders`.

    ``aggregate`` holds the pixel-summed scores (``iou``, ``f1``, ... as in :func:`scores`, plus
    boundary/road scores when asked), ``mean_image_iou`` and ``n_images``; ``quality`` is set when a
    quality table was found; ``comparison`` (a
    :class:`~sam2elnet.engine.comparison.Comparison`) when a baseline was given; ``groups`` maps
    each group name (the ground truth's sub-folder, with ``group_by="folder"``) to a dict with its
    ``aggregate``, ``comparison`` and ``quality``; ``quality_filter`` is the filter the evaluated
    run recorded in its summary.json (threshold, target precision, tau, held-out estimates);
    ``skipped`` the pairs that could not be evaluated, one ``{"file": path, "reason": message}``
    per pair (the file that could not be used), in pairing order; ``resampled`` the truths
    resampled onto their prediction's grid, one ``{"file", "grid", "outside_pixels"}`` each.
    ``layer``: the polygon file shared by every prediction
    (:class:`~sam2elnet.engine.eval_vector.VectorTruth`, read and placed once per CRS), kept so
    the report draws it without reading it again (None: no shared file; not written out).
    ``notes``: lines for the caller (see the field).
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
    comparison: Any = None
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    quality_filter: dict[str, Any] | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    layer: Any = field(default=None, repr=False, compare=False)
    notes: list[str] = field(default_factory=list)
    """What the caller should be told, one line each (also in :meth:`to_dict`'s ``notes`` and
    the report): a road buffer given for road measures that are off (``--road-buffer 3 unused:
    road measures are off (...)``), the images the mean HD95 leaves out and why
    (:func:`hd95_note`)."""

    @property
    def resampled(self) -> list[dict[str, Any]]:
        """The truths put on their prediction's grid: file, the two grids, outside pixels."""
        return [{"file": str(r.truth_path), "grid": r.resampled.grid,
                 "outside_pixels": r.resampled.outside} for r in self.images if r.resampled]  # fmt: skip

    def __repr__(self) -> str:
        """One line: folders, image count, pixel IoU, skipped pairs and the quality ranking."""
        iou = self.aggregate.get("iou")
        q = "" if self.quality is None else f", quality spearman={self.quality.spearman:.3f}"
        return (
            f"EvaluationResult(pred_dir={self.pred_dir!r}, truth_dir={self.truth_dir!r}, "
            f"{plural(len(self.images), 'image')}, iou={'None' if iou is None else f'{iou:.3f}'}, "
            f"{len(self.skipped)} skipped{q})"
        )

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
            "quality_filter": self.quality_filter,
            "comparison": None if self.comparison is None else self.comparison.as_dict(),
            "groups": {
                name: {
                    "aggregate": {k: json_num(v) for k, v in g["aggregate"].items()},
                    "comparison": None if g["comparison"] is None else g["comparison"].as_dict(),
                    "quality": None if g["quality"] is None else g["quality"].as_dict(),
                }
                for name, g in self.groups.items()
            },
            "unmatched_pred": self.unmatched_pred,
            "unmatched_truth": self.unmatched_truth,
            "n_skipped": len(self.skipped),
            "skipped": self.skipped,
            "n_truth_resampled": len(self.resampled),
            "truth_outside_pixels": sum(r["outside_pixels"] for r in self.resampled),
            "truth_resampled": self.resampled,
            "notes": list(self.notes),  # why a value is absent, e.g. an empty HD95 cell
            "images": self.rows(),
        }

    def write_json(self, path: str | Path) -> Path:
        """:meth:`to_dict` as JSON, written atomically; returns ``path`` as a Path.

        Raises:
            UserError: ``path`` is a folder, or the write failed (``DiskFullError``: disk full);
                nothing is left under ``path`` then.
        """
        from sam2elnet.utils.atomic import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    def write_csv(self, path: str | Path) -> Path:
        """Per-image rows as CSV (columns = union of row keys, in first-seen order), written
        atomically; returns ``path`` as a Path.

        Raises:
            UserError: ``path`` is a folder, or the write failed (``DiskFullError``: disk full);
                nothing is left under ``path`` then.
        """
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

    def skip_log(self) -> SkipLog:
        """The pairs that could not be scored as a :class:`~sam2elnet.utils.batch.SkipLog`
        (columns ``file``, ``reason``), for :func:`skipped_list`'s ``write``."""
        return SkipLog("file", list(self.skipped))

    def write_skipped(self, path: str | Path) -> Path | None:
        """The pairs that could not be scored as ``path`` (columns ``file``, ``reason``;
        ``elnet evaluate --csv FILE`` writes :func:`skipped_list` of FILE,
        ``<FILE stem>_evaluate_skipped.csv``), atomically, and its path; when none was
        skipped an earlier run's list there is removed and None returned
        (:meth:`~sam2elnet.utils.batch.SkipLog.write_csv`)."""
        return self.skip_log().write_csv(path)


def skipped_list(csv_path: str | Path) -> OutputSkipList:
    """The list of the pairs ``elnet evaluate --csv csv_path`` skipped:
    :class:`~sam2elnet.utils.batch.OutputSkipList` tagged ``evaluate``,
    ``<csv stem>_evaluate_skipped.csv`` next to it (``w.csv``: ``w_evaluate_skipped.csv``,
    apart from an export's ``w_gpkg_skipped.csv`` in that folder). Never raises."""
    return OutputSkipList(Path(csv_path), "evaluate", "file")


def aggregate(
    images: list[ImageResult], boundary: bool, roads: bool
) -> tuple[dict[str, Any], Confusion]:
    """The aggregate of ``images`` and their summed confusion.

    Pixel scores, boundary scores and road measures come from the counts summed over the images
    (:mod:`sam2elnet.engine.metrics`, "Aggregation"); ``mean_image_iou``,
    ``mean_image_boundary_f1`` and ``mean_image_boundary_hd95_px`` are plain means over the images
    with a finite value (HD95 has no pixel-summed form: NaN where no image has one).
    """
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
        hd = np.array([r.boundary_hd95 for r in images if r.boundary_hd95 is not None], float)
        hd = hd[np.isfinite(hd)]
        agg["mean_image_boundary_hd95_px"] = float(hd.mean()) if hd.size else float("nan")
    if roads:
        agg.update(sum((r.roads for r in images if r.roads), RoadCounts()).scores())
    return agg, total


def hd95_note(images: list[ImageResult]) -> str | None:
    """The note under ``elnet evaluate``'s table when ``mean_image_boundary_hd95_px`` leaves
    images out (:func:`aggregate`): those with a boundary in one mask only (nothing predicted,
    or nothing true: no distance, often the worst images) and pairs read in strips whose boundary
    is too long to keep for HD95
    (:data:`~sam2elnet.engine.strip_metrics.HD95_MAX_POINTS` pixels), counted and named, so the mean is not read as the whole set's. None when every image with
    boundary measures has an HD95, or boundaries were not asked for."""
    asked = [r for r in images if r.boundary is not None]
    one_side = [r.name for r in asked if r.boundary_hd95 is not None and np.isnan(r.boundary_hd95)]
    strips = [r.name for r in asked if r.boundary_hd95 is None]
    if not one_side and not strips:
        return None
    parts = []
    if one_side:
        parts.append(
            f"{len(one_side)} with a boundary in one mask only (nothing predicted or nothing "
            f"true there: no distance; see {'its' if len(one_side) == 1 else 'their'} boundary "
            f"F1): {name_sample(one_side, 3)}"
        )
    if strips:
        from sam2elnet.engine.strip_metrics import HD95_MAX_POINTS

        parts.append(
            f"{len(strips)} read in strips with a boundary over {HD95_MAX_POINTS:,} pixels (too "
            f"long to keep for HD95): {name_sample(strips, 3)}"
        )
    n = len(asked) - len(one_side) - len(strips)
    return (
        f"mean per-image boundary HD95 is over {n} of {plural(len(asked), 'image')}; left out: "
        f"{'; '.join(parts)} ({'its' if len(asked) - n == 1 else 'their'} boundary_hd95_px is "
        "empty)"
    )
