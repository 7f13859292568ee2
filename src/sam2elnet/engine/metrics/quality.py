"""How well predicted label quality tracks the true IoU, and what filtering by it buys."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.engine.metrics.pixel import Confusion, json_num, safe_ratio, scores

__all__ = ["QualityStats", "quality_stats"]


@dataclass
class QualityStats:
    """How well predicted label quality tracks the true IoU, and what filtering by it buys.

    ``spearman`` is the rank correlation of predicted vs true per-image IoU over ``n`` images;
    ``mean_iou_kept`` / ``mean_iou_all`` are mean true per-image IoUs; ``aggregate_iou_kept`` /
    ``aggregate_iou_all`` are pixel-summed IoUs of the same sets. With ``tau`` given, a label is
    *good* when its true IoU >= ``tau``: ``precision_kept`` is the share of kept labels that are good,
    ``recall_kept`` the share of good labels that were kept (NaN when there is nothing to count).
    """

    n: int
    spearman: float
    spearman_p: float
    n_kept: int
    mean_iou_all: float
    mean_iou_kept: float
    aggregate_iou_all: float
    aggregate_iou_kept: float
    source: str = ""
    tau: float | None = None
    n_good: int | None = None
    precision_kept: float | None = None
    recall_kept: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: json_num(v) for k, v in self.__dict__.items()}


def quality_stats(
    predicted: Sequence[float],
    true_iou: Sequence[float],
    kept: Sequence[bool | None] | None = None,
    confusions: Sequence[Confusion] | None = None,
    source: str = "",
    tau: float | None = None,
) -> QualityStats:
    """Spearman correlation of predicted vs true IoU, and mean true IoU of kept vs all images.

    Pairs with a NaN on either side are left out of the correlation. With fewer than 3 pairs, or a
    constant side, the correlation is NaN. ``kept`` None entries count as not kept. With ``tau``
    (IoU in (0, 1)) the precision and recall of the kept labels are added: precision = good and
    kept / kept, recall = good and kept / good, good meaning true IoU >= ``tau``, over the images
    with a finite true IoU.
    """
    from scipy.stats import spearmanr

    pr = np.asarray(predicted, dtype=float)
    tr = np.asarray(true_iou, dtype=float)
    ok = np.isfinite(pr) & np.isfinite(tr)
    rho = pval = float("nan")
    if ok.sum() >= 3 and np.ptp(pr[ok]) > 0 and np.ptp(tr[ok]) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = spearmanr(pr[ok], tr[ok])
        rho, pval = float(res.statistic), float(res.pvalue)
    k = (
        np.array([bool(x) for x in kept], dtype=bool)
        if kept is not None
        else np.zeros(len(tr), bool)
    )
    fin = np.isfinite(tr)
    mean_all = float(tr[fin].mean()) if fin.any() else float("nan")
    mean_kept = float(tr[fin & k].mean()) if (fin & k).any() else float("nan")
    agg_all = agg_kept = float("nan")
    if confusions is not None:
        agg_all = scores(sum(confusions, Confusion()))["iou"] if confusions else float("nan")
        ck = [c for c, kk in zip(confusions, k, strict=True) if kk]
        agg_kept = scores(sum(ck, Confusion()))["iou"] if ck else float("nan")
    return QualityStats(
        n=int(ok.sum()),
        spearman=rho,
        spearman_p=pval,
        n_kept=int(k.sum()),
        mean_iou_all=mean_all,
        mean_iou_kept=mean_kept,
        aggregate_iou_all=agg_all,
        aggregate_iou_kept=agg_kept,
        source=source,
        **_kept_precision_recall(tr, k, tau),
    )


def _kept_precision_recall(true_iou: np.ndarray, kept: np.ndarray, tau: float | None) -> dict:
    if tau is None:
        return {}
    fin = np.isfinite(true_iou)
    good = fin & (true_iou >= tau)
    kept = kept & fin
    hit = int((good & kept).sum())
    return {
        "tau": float(tau),
        "n_good": int(good.sum()),
        "precision_kept": safe_ratio(hit, int(kept.sum()), float("nan")),
        "recall_kept": safe_ratio(hit, int(good.sum()), float("nan")),
    }
