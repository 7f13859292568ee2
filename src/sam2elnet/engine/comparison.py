"""Prediction vs baseline, image by image: did a refinement make each label better or worse?

Used by ``elnet evaluate --baseline COARSE`` to measure label enhancement (``elnet enhance``) and the
classical refiners (``elnet refine``) against the coarse labels they started from. Pure functions
over per-image confusion counts (:class:`~sam2elnet.engine.metrics.Confusion`); no file access.

Rules (docs/evaluation.md, "Comparing with a baseline"):

* per-image IoU follows :func:`~sam2elnet.engine.metrics.scores`: foreground IoU
  TP / (TP + FP + FN), **1.0 when truth and label are both empty** (a correct empty label), 0.0
  when one side is empty and the other is not; images without a counted pixel (all ignore /
  nodata) have no IoU and are left out of every comparison;
* ``delta = IoU(prediction) - IoU(baseline)``, in IoU units (0.02 = 2 IoU points);
* an image is *improved* when ``delta > 1e-9``, *worse* when ``delta < -1e-9``, else *unchanged*
  (so an empty truth with an empty baseline and an empty prediction is unchanged and correct,
  never a loss); *worse by more than T* is ``delta < -T``;
* *improvable* images are those whose baseline IoU is below 1 (only they can improve);
* shares are over the compared images (``n``); aggregate IoUs are pixel-summed over the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2elnet.engine.metrics import Confusion, json_num, scores
from sam2elnet.option_checks import option_default
from sam2elnet.options import EvaluateOptions

__all__ = ["EPS", "Comparison", "compare", "outcome"]

EPS = 1e-9
"""IoU differences at most this large count as unchanged (floating-point noise of equal ratios)."""


def outcome(delta: float) -> str:
    """``improved`` / ``unchanged`` / ``worse`` for a per-image IoU difference (NaN -> ``""``)."""
    if not np.isfinite(delta):
        return ""
    if delta > EPS:
        return "improved"
    if delta < -EPS:
        return "worse"
    return "unchanged"


@dataclass
class Comparison:
    """Prediction vs baseline over a set of images (one group or all).

    IoU values are in [0, 1]; ``gain`` and ``mean_delta`` are differences of IoUs (0.01 = 1 IoU
    point); shares are in [0, 1] and NaN when there is nothing to count. ``worse_images`` lists the
    names of the images worse by more than ``worse_by``, worst first.
    """

    n: int
    worse_by: float
    iou: float
    baseline_iou: float
    gain: float
    mean_image_iou: float
    mean_baseline_image_iou: float
    mean_delta: float
    n_improved: int
    n_unchanged: int
    n_worse: int
    n_worse_by: int
    share_improved: float
    share_unchanged: float
    share_worse_by: float
    n_improvable: int
    share_improved_of_improvable: float
    n_empty_truth: int
    n_empty_stayed_empty: int
    n_empty_spoiled: int
    worse_images: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> None)."""
        return {
            k: (list(v) if isinstance(v, list) else json_num(v)) for k, v in self.__dict__.items()
        }


def _share(k: int, n: int) -> float:
    return k / n if n else float("nan")


def compare(
    names: Sequence[str],
    pred: Sequence[Confusion],
    baseline: Sequence[Confusion],
    worse_by: float = option_default(EvaluateOptions, "worse_by"),
) -> Comparison:
    """Compare per-image predictions with their baselines against the same truth.

    Args:
        names: image names (reported in ``worse_images``).
        pred: confusion of each prediction vs truth.
        baseline: confusion of each baseline label vs the same truth (same valid pixels).
        worse_by: IoU drop counted as "worse by more than" (0.02 = 2 IoU points), >= 0.

    Returns:
        :class:`Comparison` over the images where both IoUs are defined.

    Raises:
        ValueError: sequences of different lengths or a negative ``worse_by``.
    """
    if not (len(names) == len(pred) == len(baseline)):
        raise ValueError("names, pred and baseline must have the same length")
    if not worse_by >= 0:
        raise ValueError(f"worse_by must be >= 0, got {worse_by}")
    rows = []
    for name, cp, cb in zip(names, pred, baseline, strict=True):
        ip, ib = scores(cp)["iou"], scores(cb)["iou"]
        if np.isfinite(ip) and np.isfinite(ib):
            rows.append((name, cp, cb, ip, ib, ip - ib))
    n = len(rows)
    nan = float("nan")
    tot_p = sum((r[1] for r in rows), Confusion())
    tot_b = sum((r[2] for r in rows), Confusion())
    iou = scores(tot_p)["iou"] if n else nan
    base = scores(tot_b)["iou"] if n else nan
    deltas = np.array([r[5] for r in rows], dtype=float)
    kinds = [outcome(d) for d in deltas]
    worse = sorted((r for r in rows if r[5] < -worse_by), key=lambda r: r[5])
    improvable = [k for r, k in zip(rows, kinds, strict=True) if r[4] < 1.0 - EPS]
    empty = [r for r in rows if r[1].tp + r[1].fn == 0]  # no truth foreground
    empty_base = [r for r in empty if r[2].tp + r[2].fp == 0]
    return Comparison(
        n=n,
        worse_by=float(worse_by),
        iou=iou,
        baseline_iou=base,
        gain=iou - base if n else nan,
        mean_image_iou=float(np.mean([r[3] for r in rows])) if n else nan,
        mean_baseline_image_iou=float(np.mean([r[4] for r in rows])) if n else nan,
        mean_delta=float(deltas.mean()) if n else nan,
        n_improved=kinds.count("improved"),
        n_unchanged=kinds.count("unchanged"),
        n_worse=kinds.count("worse"),
        n_worse_by=len(worse),
        share_improved=_share(kinds.count("improved"), n),
        share_unchanged=_share(kinds.count("unchanged"), n),
        share_worse_by=_share(len(worse), n),
        n_improvable=len(improvable),
        share_improved_of_improvable=_share(improvable.count("improved"), len(improvable)),
        n_empty_truth=len(empty),
        n_empty_stayed_empty=sum(1 for r in empty_base if r[1].tp + r[1].fp == 0),
        n_empty_spoiled=sum(1 for r in empty_base if r[1].tp + r[1].fp > 0),
        worse_images=[r[0] for r in worse],
    )
