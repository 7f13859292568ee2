"""Segmentation metrics for binary masks: pixel scores, boundary F-score, road measures, quality stats.

Pure measures on arrays, one module per measure: :mod:`.pixel` (confusion counts, IoU, F1,
precision, recall, Cohen's kappa), :mod:`.boundary` (boundary F-score, HD95), :mod:`.roads` (centre-line measures),
:mod:`.quality` (predicted vs true quality) and :mod:`.bootstrap` (confidence intervals over
images); every public name is importable from here. Folder evaluation (``elnet evaluate``) is
:mod:`sam2elnet.engine.evaluate`.
Everything here works on plain numpy boolean masks; :func:`confusion` also accepts torch tensors
(it counts on the tensor's own device and only moves four integers to the host), so training
loops can accumulate :class:`Confusion` objects without copying whole masks.

Aggregation
    :class:`Confusion` objects add up, so the *aggregate* over a folder is computed from the
    pixel-summed counts (one big confusion matrix). That is what the SOS oil-spill literature
    (and most remote sensing papers) report as "IoU", "F1", "precision" and "recall". The mean of
    per-image IoUs is reported next to it as ``mean_image_iou`` because it weighs small objects and
    empty images very differently.

Edge cases (documented in docs/evaluation.md)
    A ratio whose denominator is zero means the event it measures cannot go wrong on this image:
    empty truth *and* empty prediction gives foreground IoU = F1 = precision = recall = 1.0. When the
    prediction is empty but the truth is not, precision is 0.0 (and so are recall, IoU and F1);
    when the truth is empty but the prediction is not, recall is 0.0 likewise. Images with no valid
    pixel at all give NaN everywhere and contribute nothing to the aggregate.
"""

from sam2elnet.data.skeleton import centre_lines
from sam2elnet.engine.metrics.bootstrap import (
    BOOTSTRAP_RESAMPLES,
    BootstrapInterval,
    bootstrap_iou_ci,
    bootstrap_iou_interval,
    bootstrap_ratio_ci,
    bootstrap_ratio_interval,
)
from sam2elnet.engine.metrics.boundary import (
    BoundaryCounts,
    boundary_counts,
    boundary_f1,
    boundary_hd95,
    boundary_measures,
    hd95,
    inner_boundary,
    within_tolerance,
)
from sam2elnet.engine.metrics.pixel import (
    Confusion,
    as_bool_mask,
    cohen_kappa,
    confusion,
    iou_per_sample,
    json_num,
    safe_ratio,
    scores,
)
from sam2elnet.engine.metrics.quality import QualityStats, quality_stats
from sam2elnet.engine.metrics.roads import (
    ROAD_COUNT_KEYS,
    ROAD_KEYS,
    RoadCounts,
    road_counts,
    road_scores,
)

__all__ = [
    "Confusion",
    "confusion",
    "scores",
    "cohen_kappa",
    "iou_per_sample",
    "BoundaryCounts",
    "boundary_counts",
    "boundary_f1",
    "boundary_hd95",
    "boundary_measures",
    "hd95",
    "ROAD_COUNT_KEYS",
    "ROAD_KEYS",
    "RoadCounts",
    "road_counts",
    "road_scores",
    "QualityStats",
    "quality_stats",
    "BOOTSTRAP_RESAMPLES",
    "BootstrapInterval",
    "bootstrap_iou_ci",
    "bootstrap_iou_interval",
    "bootstrap_ratio_ci",
    "bootstrap_ratio_interval",
    "json_num",
    "as_bool_mask",
    "safe_ratio",
    "inner_boundary",
    "within_tolerance",
    "centre_lines",
]
