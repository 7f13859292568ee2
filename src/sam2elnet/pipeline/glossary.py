"""Readable names and one-line definitions of the metric keys the tool writes (JSON, CSV, reports).

One place for the wording: the HTML report shows these names with the definitions as a glossary,
and ``elnet evaluate`` prints the same names. Definitions follow docs/evaluation.md (TP/FP/FN/TN
counted per pixel, foreground = oil / road is the positive class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sam2elnet.engine.road_buffer import buffer_said
from sam2elnet.option_values import BOUNDARY_TOLERANCE_PX

__all__ = [
    "GLOSSARY",
    "ROAD_TABLE_HEADER",
    "definition",
    "label",
    "road_buffer_options_words",
    "road_buffer_words",
]

ROAD_TABLE_HEADER = "road measure (centre-line lengths summed)"
"""Heading of the road measures' own table (``elnet evaluate``'s terminal and report.html): they
are not pixel-summed like the IoU rows above them, but computed from skeleton lengths and road
pieces summed over the images (:mod:`sam2elnet.engine.metrics.roads`)."""

#: key -> (readable name, definition)
GLOSSARY: dict[str, tuple[str, str]] = {
    # pixel metrics
    "iou": ("IoU (foreground)", "TP / (TP + FP + FN): overlap of label and truth, 0-1."),
    "iou_bg": ("IoU (background)", "TN / (TN + FP + FN): the IoU of the background class."),
    "miou": (
        "mIoU (2 classes)",
        "(IoU foreground + IoU background) / 2: the two-class mean IoU quoted for SOS.",
    ),
    "f1": ("F1 / Dice", "2TP / (2TP + FP + FN)."),
    "dice": ("Dice", "Same as F1: 2TP / (2TP + FP + FN)."),
    "precision": (
        "precision",
        "TP / (TP + FP): share of labelled pixels that are truly foreground.",
    ),
    "recall": ("recall", "TP / (TP + FN): share of true foreground pixels that were labelled."),
    "accuracy": ("overall accuracy", "(TP + TN) / all pixels; dominated by background."),
    "kappa": (
        "Cohen's kappa",
        "(accuracy - chance agreement) / (1 - chance agreement): agreement beyond what the two "
        "masks' class shares give by chance; 1 = perfect, 0 = chance, < 0 worse.",
    ),
    "mean_image_iou": (
        "mean per-image IoU",
        "Plain mean of per-image IoUs: every image weighs the same, small slicks and empty tiles "
        "count more than in the pixel-summed IoU.",
    ),
    "boundary_f1": (
        "boundary F1",
        "F-score of boundary pixels matched within the tolerance "
        f"(default {BOUNDARY_TOLERANCE_PX:g} px).",
    ),
    "boundary_precision": ("boundary precision", "Predicted boundary pixels near a true boundary."),
    "boundary_recall": ("boundary recall", "True boundary pixels near a predicted boundary."),
    "mean_image_boundary_f1": ("mean per-image boundary F1", "Plain mean over images."),
    "boundary_hd95_px": (
        "boundary HD95 (px)",
        "95th-percentile Hausdorff distance between the predicted and true boundaries, in pixels "
        "(the larger of the two directions; lower is better).",
    ),
    "mean_image_boundary_hd95_px": (
        "mean per-image boundary HD95 (px)",
        "Plain mean of per-image HD95 over the images where both masks have a boundary.",
    ),
    "road_correctness": ("road correctness", "Matched predicted centre-line length / predicted."),
    "road_completeness": ("road completeness", "Matched true centre-line length / true length."),
    "road_quality": (
        "road quality",
        "Matched predicted length / (predicted length + unmatched true length).",
    ),
    "road_connectivity": (
        "road connectivity",
        "Share of true road components kept in one connected predicted piece.",
    ),
    # label quality
    "predicted_iou": (
        "predicted IoU",
        "The quality evaluator's estimate of a label's IoU against the (unknown) truth, 0-1.",
    ),
    "mean_predicted_iou": ("mean predicted IoU", "Mean of the evaluator's per-label estimates."),
    "true_iou": ("true IoU", "IoU of the label against the ground truth, where truth is known."),
    "input_iou": ("input IoU", "IoU of the input (coarse) label against the ground truth."),
    "spearman": (
        "Spearman ρ (predicted vs true IoU)",
        "Rank correlation of predicted and true per-image IoU: 1 = the evaluator orders labels "
        "perfectly, 0 = no better than chance.",
    ),
    "spearman_p": (
        "Spearman p-value",
        "Probability of a correlation at least this strong by chance; small (< 0.05) = "
        "the ranking is real.",
    ),
    "n": ("labels with both scores", "Labels that have a predicted and a true IoU."),
    "n_kept": ("labels kept", "Labels at or above the quality threshold."),
    "n_rejected": ("labels rejected", "Labels below the quality threshold."),
    "n_images": ("images", "Images processed / evaluated."),
    "n_skipped": ("images skipped", "Unreadable or invalid inputs, listed in skipped.csv."),
    "mean_iou_all": ("mean true IoU: all", "Mean per-image true IoU of every label."),
    "mean_iou_kept": ("mean true IoU: kept", "Mean per-image true IoU of the kept labels."),
    "aggregate_iou_all": ("pixel-summed IoU: all", "IoU from the summed counts of every label."),
    "aggregate_iou_kept": ("pixel-summed IoU: kept", "IoU from the summed counts of kept labels."),
    "iou_all": ("label IoU: all", "Pixel-summed IoU of all auto-labels against the truth."),
    "iou_kept": ("label IoU: kept", "Pixel-summed IoU of the kept auto-labels."),
    "threshold": (
        "quality threshold",
        "Labels with predicted IoU >= this are kept; none = no filter ran.",
    ),
    "threshold_rule": ("threshold rule", "How the threshold was chosen."),
    "tau": ("good-label IoU (τ)", "A label counts as good when its true IoU >= τ."),
    "target_precision": (
        "target precision",
        "Wanted share of good labels among the kept ones (--target-precision).",
    ),
    "fallback": ("fallback", "What the filter did when its rule kept no label."),
    "false_alarms": (
        "false alarms on empty truth",
        "Images whose truth is empty but the label is not: IoU 0 by definition.",
    ),
    "empty_truth": ("images with empty truth", "Images whose ground truth has no foreground."),
    # protocol / runs
    "hand_labels": ("hand labels", "Labelling cost: hand-drawn labels the setting needs."),
    "train_images": ("training images", "Images the downstream model trained on."),
    "label_iou_all": ("label IoU (all)", "Pixel-summed IoU of the training labels vs truth."),
    "label_iou_unlabelled": (
        "label IoU (unlabelled part)",
        "The same on images SAM2-ELNet never saw a true label of.",
    ),
    "iou_ci": (
        "95 % CI",
        "Percentile-bootstrap 95 % interval of the IoU over the test images (results.md's "
        "'IoU [95 % CI]').",
    ),
    "label_iou_all_ci": (
        "95 % CI (all)",
        "Percentile-bootstrap 95 % interval of the label IoU (all) over images.",
    ),
    "label_iou_unlabelled_ci": (
        "95 % CI (unlabelled part)",
        "Percentile-bootstrap 95 % interval of the label IoU (unlabelled part) over images.",
    ),
    "iou_ci_left_out": (
        "resamples left out",
        "Bootstrap resamples whose images all have empty truth and empty label (union 0, no "
        "IoU): not part of the interval; no interval when over 2.5 % of them.",
    ),
    "sensor": ("sensor", "SOS sub-folder (palsar / sentinel) the images lie in."),
    "pool_images": ("images (all)", "Training-pool images of this sensor."),
    "unlabelled_images": ("images (unlabelled part)", "Unlabelled-part images of this sensor."),
    "labelled": ("labelled images", "Images whose hand labels are used (the labelled fraction)."),
    "unlabelled": ("unlabelled images", "Images labelled automatically."),
    "test": ("test images", "Held-out images the downstream models are scored on."),
    "test_source": ("test set", "Where the test images come from."),
    "modality": ("modality", "sar (1-band, speckle) or optical (RGB)."),
    "layout": ("dataset layout", "How image and mask files were found."),
    "seconds": ("wall time (s)", "Seconds the job ran."),
    "images_per_s": ("images / s", "Throughput of the job."),
    "title": ("setting", "Training labels of the downstream model."),
    "labels": ("labels", "Which label set the method starts from."),
    "method": ("method", "Refinement method."),
    "items": ("images", "Images in this report."),
    "kept": ("kept", "Labels the quality filter kept."),
    "rejected": ("rejected", "Labels the quality filter rejected."),
    "not_filtered": (
        "not filtered",
        "Images of this report the quality filter did not decide on (e.g. enhanced labels shown "
        "beside filtered auto-labels).",
    ),
    "true_objects": ("true objects", "8-connected components of the ground truth."),
    "missed_objects": (
        "missed objects",
        "True objects that no label pixel touches (e.g. a slick left out entirely).",
    ),
    "extra_objects": (
        "extra objects",
        "Label objects that touch no true pixel (look-alikes, speckle, false alarms).",
    ),
    "area_px": ("label area (px)", "Foreground pixels of the label."),
    "truth_px": ("truth area (px)", "Foreground pixels of the ground truth."),
}


def label(key: str) -> str:
    """Readable name of a metric key (the key with spaces for underscores when unknown)."""
    entry = GLOSSARY.get(str(key))
    return entry[0] if entry else str(key).replace("_", " ")


def definition(key: str) -> str | None:
    """One-line definition of a metric key, None when the key is not in :data:`GLOSSARY`."""
    entry = GLOSSARY.get(str(key))
    return entry[1] if entry else None


SCALE_SAID = 0.001
"""A projection scale factor further than this from 1 is named in :func:`road_buffer_words`
(UTM's 0.9996 on the central meridian is not; Web Mercator's 2 at 60 deg N is)."""


def road_buffer_words(
    buffer_px: float | None,
    buffer_m: float | None = None,
    unit: str = "px",
    scale: float | None = None,
    px_range: Sequence[float] | None = None,
    *,
    subject: str = "road measures",
    by_image: bool = False,
) -> str:
    """What the road measures of a result are, with their buffer (the ``--road-buffer`` it was
    scored with, in pixels; ``buffer_m``: the same in ground metres where the pixel size is
    known; ``unit``: the one it was given in, ``"px"`` or ``"m"``, ``--road-buffer-m``;
    ``scale``: the projection's scale factor at the predictions' centre, the evaluation's
    ``options["pixel_scale_factor"]``, named when further than :data:`SCALE_SAID` from 1;
    ``px_range``: [smallest, largest] px where ``buffer_px`` is None, the buffer of
    ``--road-buffer-m`` differing by image with each image's ground pixel size, or None where
    the images' px were not recorded; ``subject``: the sentence's first words, e.g.
    ``"validation road measures"``; ``by_image``: as :func:`~sam2elnet.engine.road_buffer.
    buffer_said`'s, for a sentence that names no images):
    ``"road measures: centre lines matched within 5 px (--road-buffer); lengths summed over
    images, not pixels"``, ``"... within 2 m = 4 px (--road-buffer-m); ..."``, ``"... within
    2 m = 8 px (--road-buffer-m; ground metres: projection scale factor 2 at the image
    centre); ..."``, ``"... within 2 m = 4-8 px (--road-buffer-m; per image, from its ground
    pixel size); ..."``, ``"... within 2 m (--road-buffer-m; per image, from its ground pixel
    size); ..."`` (metres, no px recorded). One wording for ``elnet evaluate``'s terminal and
    report, the training report's validation and cv.md; the buffer itself in
    :func:`sam2elnet.engine.road_buffer.buffer_said`'s words. Raises ValueError when neither
    ``buffer_px``, ``px_range`` nor ``buffer_m`` is given."""
    if buffer_px is None and px_range is None and buffer_m is None:
        raise ValueError("road_buffer_words: no buffer (buffer_px, px_range or buffer_m)")
    span = px_range if buffer_px is None else (buffer_px, buffer_px)
    ground = (
        f"; ground metres: projection scale factor {float(scale):.4g} at the image centre"
        if scale is not None and buffer_m is not None and abs(float(scale) - 1.0) > SCALE_SAID
        else ""
    )
    if buffer_px is None:
        ground = "; per image, from its ground pixel size"
    if buffer_m is not None and (unit == "m" or span is None):
        said = f"{buffer_said(None, buffer_m, span, by_image=by_image)} (--road-buffer-m{ground})"
    elif buffer_m is not None:
        said = f"{buffer_said(buffer_px, None, span)} = {float(buffer_m):.3g} m (--road-buffer{ground})"
    else:
        said = f"{buffer_said(buffer_px, None, span, by_image=by_image)} (--road-buffer)"
    return f"{subject}: centre lines matched within {said}; lengths summed over images, not pixels"


def road_buffer_options_words(options: Mapping[str, Any]) -> str:
    """:func:`road_buffer_words` of an evaluation's ``options`` (``road_buffer_px``,
    ``road_buffer_px_range``, ``road_buffer_m``, ``road_buffer_unit``, ``pixel_scale_factor``;
    results written before the per-image buffer lack the range)."""
    o = options
    return road_buffer_words(
        o.get("road_buffer_px"),
        o.get("road_buffer_m"),
        o.get("road_buffer_unit", "px"),
        o.get("pixel_scale_factor"),
        o.get("road_buffer_px_range"),
    )
