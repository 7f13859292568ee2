"""Segmentation metrics for binary masks: pixel scores, boundary F-score, road measures, quality stats.

Pure measures on arrays, one concept (hence a little over 500 lines); folder evaluation
(``elnet evaluate``) is :mod:`sam2elnet.engine.evaluate`.
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

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.data.naming import mask_key

__all__ = [
    "Confusion",
    "confusion",
    "scores",
    "iou_per_sample",
    "BoundaryCounts",
    "boundary_counts",
    "boundary_f1",
    "RoadCounts",
    "road_counts",
    "road_scores",
    "QualityStats",
    "quality_stats",
    "json_num",
    "mask_key",  # re-exported from sam2elnet.data.naming
]


# --------------------------------------------------------------------------------------------
# confusion counts and scores
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of a binary confusion matrix (foreground = positive class).

    Instances add (``a + b``, ``sum(list, Confusion())``) so a folder aggregate is just the sum.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        if not isinstance(other, Confusion):
            return NotImplemented
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def __radd__(self, other: Any) -> Confusion:
        # lets the builtin sum() start from 0
        if other == 0:
            return self
        return self.__add__(other)

    @property
    def total(self) -> int:
        """Number of counted (valid) pixels."""
        return self.tp + self.fp + self.fn + self.tn

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _as_bool(x: Any, name: str) -> np.ndarray:
    """Convert a mask-like (numpy, list, torch tensor) to a numpy bool array."""
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype != bool:
        arr = arr > 0.5 if np.issubdtype(arr.dtype, np.floating) else arr != 0
    return arr


def _torch_bool(x: Any) -> Any:
    """A torch tensor as bool: floats (probabilities, 0/1 floats) are foreground above 0.5."""
    return x > 0.5 if x.dtype.is_floating_point else x.bool()


def confusion(pred: Any, truth: Any, valid: Any | None = None) -> Confusion:
    """Count TP/FP/FN/TN between a predicted and a true mask.

    ``pred``, ``truth`` and ``valid`` are boolean arrays of one shape (numpy, or torch tensors on any
    device; non-bool inputs count as foreground where ``> 0.5`` for floats, ``!= 0`` otherwise).
    Pixels where ``valid`` is False (nodata, image padding) are not counted at all. Any leading
    batch dimensions are summed over, which is what a training loop accumulating a pixel-summed
    score wants.
    """
    if _is_torch(pred) and _is_torch(truth):
        # count on the tensors' device; only four scalars reach the host
        p, t = _torch_bool(pred), _torch_bool(truth)
        if p.shape != t.shape:
            raise ValueError(f"pred shape {tuple(p.shape)} != truth shape {tuple(t.shape)}")
        if valid is not None:
            v = _torch_bool(valid).to(p.device).expand_as(p)
            p, t = p & v, t & v
            total = int(v.sum().item())
        else:
            total = p.numel()
        tp = int((p & t).sum().item())
        fp = int((p & ~t).sum().item())
        fn = int((~p & t).sum().item())
        return Confusion(tp, fp, fn, total - tp - fp - fn)

    p = _as_bool(pred, "pred")
    t = _as_bool(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {p.shape} != truth shape {t.shape}")
    if valid is not None:
        v = np.broadcast_to(_as_bool(valid, "valid"), p.shape)
        p = p[v]
        t = t[v]
        total = int(v.sum())
    else:
        total = int(p.size)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Confusion(tp, fp, fn, total - tp - fp - fn)


def iou_per_sample(pred: Any, truth: Any, valid: Any | None = None, empty: float = 1.0) -> Any:
    """Foreground IoU of each sample of a batch ``(B, ...)``, in the input's own library.

    Torch tensors in -> float32 tensor ``(B,)`` on the same device (no host copy; usable as the
    quality head's regression target); numpy in -> float64 array. A sample with empty truth and
    empty prediction gets ``empty`` (1.0, as in :func:`scores`).
    """
    if _is_torch(pred) and _is_torch(truth):
        p, t = _torch_bool(pred).flatten(1), _torch_bool(truth).flatten(1)
        if valid is not None:
            v = _torch_bool(valid).to(p.device).expand_as(_torch_bool(pred)).flatten(1)
            p, t = p & v, t & v
        inter = (p & t).sum(1).float()
        union = (p | t).sum(1).float()
        out = inter / union.clamp(min=1)
        return out.masked_fill(union == 0, empty)
    p = _as_bool(pred, "pred")
    t = _as_bool(truth, "truth")
    if valid is not None:
        v = np.broadcast_to(_as_bool(valid, "valid"), p.shape)
        p, t = p & v, t & v
    p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
    inter = (p & t).sum(1).astype(np.float64)
    union = (p | t).sum(1).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), empty)


def _ratio(num: int, den: int, when_empty: float) -> float:
    return float(num) / float(den) if den > 0 else when_empty


def scores(conf: Confusion) -> dict[str, float]:
    """Standard scores from a :class:`Confusion`; foreground is the positive class.

    Returns ``iou`` (foreground IoU = TP/(TP+FP+FN)), ``iou_bg`` (TN/(TN+FP+FN)), ``miou`` (mean of
    the two), ``f1`` (= ``dice`` = 2TP/(2TP+FP+FN)), ``precision`` (TP/(TP+FP)), ``recall``
    (TP/(TP+FN)) and ``accuracy`` ((TP+TN)/N). Zero denominators follow the module rules: 1.0 when
    both masks agree that there is nothing to find, 0.0 when one side has pixels and the other has
    none, NaN everywhere when no pixel was counted.
    """
    if conf.total == 0:
        nan = float("nan")
        return dict.fromkeys(
            ("iou", "iou_bg", "miou", "f1", "dice", "precision", "recall", "accuracy"), nan
        )
    tp, fp, fn, tn = conf.tp, conf.fp, conf.fn, conf.tn
    # "no error possible" -> 1.0; "something there but nothing matched" -> 0.0
    iou = _ratio(tp, tp + fp + fn, 1.0)
    iou_bg = _ratio(tn, tn + fp + fn, 1.0)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, 1.0)
    precision = _ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0)
    recall = _ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0)
    accuracy = (tp + tn) / conf.total
    return {
        "iou": iou,
        "iou_bg": iou_bg,
        "miou": 0.5 * (iou + iou_bg),
        "f1": f1,
        "dice": f1,
        "precision": precision,
        "recall": recall,
        "accuracy": accuracy,
    }


# --------------------------------------------------------------------------------------------
# boundary F-score
# --------------------------------------------------------------------------------------------


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary: foreground pixels with a background 4-neighbour.

    The image frame does not count as background (``border_value=1``), so a mask cut by the image
    edge, or covering the whole image, has no boundary along the frame.
    """
    from scipy import ndimage

    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    eroded = ndimage.binary_erosion(
        mask, structure=ndimage.generate_binary_structure(2, 1), border_value=1
    )
    return mask & ~eroded


def _within(src: np.ndarray, target: np.ndarray, tol: float) -> np.ndarray:
    """Which True pixels of ``src`` lie within Euclidean distance ``tol`` of a True pixel of target."""
    from scipy import ndimage

    if not target.any():
        return np.zeros(int(src.sum()), dtype=bool)
    dist = ndimage.distance_transform_edt(~target)
    return dist[src] <= tol


@dataclass(frozen=True)
class BoundaryCounts:
    """Matched / total boundary pixels, both ways; addable, so the aggregate is pixel-summed."""

    pred_matched: int = 0
    pred_total: int = 0
    truth_matched: int = 0
    truth_total: int = 0

    def __add__(self, other: BoundaryCounts) -> BoundaryCounts:
        if not isinstance(other, BoundaryCounts):
            return NotImplemented
        return BoundaryCounts(
            self.pred_matched + other.pred_matched,
            self.pred_total + other.pred_total,
            self.truth_matched + other.truth_matched,
            self.truth_total + other.truth_total,
        )

    def __radd__(self, other: Any) -> BoundaryCounts:
        return self if other == 0 else self.__add__(other)

    def scores(self) -> dict[str, float]:
        """``boundary_precision``, ``boundary_recall``, ``boundary_f1`` (empty vs empty -> 1.0)."""
        if self.pred_total == 0 and self.truth_total == 0:
            return {"boundary_precision": 1.0, "boundary_recall": 1.0, "boundary_f1": 1.0}
        p = _ratio(self.pred_matched, self.pred_total, 0.0)
        r = _ratio(self.truth_matched, self.truth_total, 0.0)
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
        return {"boundary_precision": p, "boundary_recall": r, "boundary_f1": f}


def boundary_counts(
    pred: Any, truth: Any, tolerance_px: float = 2.0, valid: Any | None = None
) -> BoundaryCounts:
    """Boundary pixels of each mask that lie within ``tolerance_px`` of the other mask's boundary.

    Boundaries are the inner 4-connected contours (see :func:`_boundary`); distances are Euclidean
    (``scipy.ndimage.distance_transform_edt``). Boundary pixels outside ``valid`` are ignored.
    """
    p = _as_bool(pred, "pred")
    t = _as_bool(truth, "truth")
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(
            f"boundary metrics need two 2-D masks of one shape, got {p.shape}, {t.shape}"
        )
    bp, bt = _boundary(p), _boundary(t)
    if valid is not None:
        v = _as_bool(valid, "valid")
        bp, bt = bp & v, bt & v
    mp = _within(bp, bt, tolerance_px)
    mt = _within(bt, bp, tolerance_px)
    return BoundaryCounts(int(mp.sum()), int(bp.sum()), int(mt.sum()), int(bt.sum()))


def boundary_f1(
    pred: Any, truth: Any, tolerance_px: float = 2.0, valid: Any | None = None
) -> float:
    """Boundary F-score (BF score, Csurka et al. 2013 style) of one image.

    Precision = share of predicted boundary pixels within ``tolerance_px`` of the true boundary;
    recall = share of true boundary pixels within ``tolerance_px`` of the predicted boundary;
    F = 2PR/(P+R). Neither mask has a boundary -> 1.0; only one has -> 0.0.
    """
    return boundary_counts(pred, truth, tolerance_px, valid).scores()["boundary_f1"]


# --------------------------------------------------------------------------------------------
# road topology: skeleton correctness / completeness / quality and connectivity
# --------------------------------------------------------------------------------------------


def _thin(mask: np.ndarray) -> np.ndarray:
    """One-pixel centre lines of a bool mask: Guo & Hall (1989) parallel thinning
    (``skimage.morphology.thin``), run to its fixed point."""
    from skimage.morphology import thin

    return thin(mask) if mask.any() else np.zeros(mask.shape, dtype=bool)


ROAD_KEYS = ("road_correctness", "road_completeness", "road_quality", "road_connectivity")
"""Names of the road measures (:func:`road_scores`), in table order."""


@dataclass(frozen=True)
class RoadCounts:
    """Centre-line lengths (skeleton pixels) for the Wiedemann et al. (1998) road measures.

    ``*_matched`` = skeleton pixels of one mask within the buffer of the other mask's skeleton.
    ``components_*`` count connected components of the true skeleton that the prediction keeps in
    one piece (see :func:`road_counts`). Addable; the aggregate is length-summed.
    """

    pred_length: int = 0
    pred_matched: int = 0
    truth_length: int = 0
    truth_matched: int = 0
    components_total: int = 0
    components_preserved: int = 0

    def __add__(self, other: RoadCounts) -> RoadCounts:
        if not isinstance(other, RoadCounts):
            return NotImplemented
        return RoadCounts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def __radd__(self, other: Any) -> RoadCounts:
        return self if other == 0 else self.__add__(other)

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.pred_length,
            self.pred_matched,
            self.truth_length,
            self.truth_matched,
            self.components_total,
            self.components_preserved,
        )

    def scores(self) -> dict[str, float]:
        """``road_correctness``, ``road_completeness``, ``road_quality``, ``road_connectivity``."""
        return road_scores(self)


def road_scores(c: RoadCounts) -> dict[str, float]:
    """Wiedemann measures from :class:`RoadCounts`.

    correctness = matched predicted length / predicted length;
    completeness = matched true length / true length;
    quality = matched predicted length / (predicted length + unmatched true length);
    connectivity = preserved true-skeleton components / true-skeleton components (NaN if none).
    Both skeletons empty -> 1.0 for the first three.
    """
    if c.pred_length == 0 and c.truth_length == 0:
        corr = comp = qual = 1.0
    else:
        corr = _ratio(c.pred_matched, c.pred_length, 0.0)
        comp = _ratio(c.truth_matched, c.truth_length, 0.0)
        qual = _ratio(c.pred_matched, c.pred_length + (c.truth_length - c.truth_matched), 0.0)
    conn = _ratio(c.components_preserved, c.components_total, float("nan"))
    return {
        "road_correctness": corr,
        "road_completeness": comp,
        "road_quality": qual,
        "road_connectivity": conn,
    }


def road_counts(
    pred: Any,
    truth: Any,
    buffer_px: float = 3.0,
    min_component_px: int = 10,
    cover_fraction: float = 0.9,
) -> RoadCounts:
    """Skeleton-based road measures for one image.

    Both masks are thinned to one-pixel centre lines (Guo-Hall parallel thinning,
    ``skimage.morphology.thin``: local, so :func:`sam2elnet.engine.strip_metrics.strip_road_counts`
    computes the same counts strip by strip); lengths are skeleton pixel counts and matching uses a Euclidean buffer of ``buffer_px`` (Wiedemann et
    al., 1998, "Empirical evaluation of automatically extracted road axes").

    Connectivity ("skeleton components preserved"): each 8-connected component of the true
    skeleton with at least ``min_component_px`` pixels counts as preserved when at least
    ``cover_fraction`` of its pixels lie inside the prediction dilated by ``buffer_px`` *and* all of
    those pixels fall in one connected piece of that dilated prediction, i.e. the predicted road is
    not broken along it. This is a simple, honest proxy; it does not check junction topology.
    """
    from scipy import ndimage

    p = _as_bool(pred, "pred")
    t = _as_bool(truth, "truth")
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"road metrics need two 2-D masks of one shape, got {p.shape}, {t.shape}")
    sp, st = _thin(p), _thin(t)
    mp = _within(sp, st, buffer_px)
    mt = _within(st, sp, buffer_px)

    comp_total = comp_ok = 0
    if st.any():
        eight = np.ones((3, 3), dtype=bool)
        t_lab, n_t = ndimage.label(st, structure=eight)
        if p.any():
            dil = ndimage.distance_transform_edt(~p) <= buffer_px
            p_lab, _ = ndimage.label(dil, structure=eight)
        else:
            p_lab = np.zeros(p.shape, dtype=np.int32)
        sizes = np.bincount(t_lab.ravel(), minlength=n_t + 1)
        for k in range(1, n_t + 1):
            if sizes[k] < min_component_px:
                continue
            comp_total += 1
            under = p_lab[t_lab == k]
            covered = under[under > 0]
            if covered.size >= cover_fraction * sizes[k] and np.unique(covered).size == 1:
                comp_ok += 1
    return RoadCounts(
        int(sp.sum()), int(mp.sum()), int(st.sum()), int(mt.sum()), comp_total, comp_ok
    )


def json_num(v: Any) -> Any:
    """NaN/inf -> None so the JSON output is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return json_num(v.item())
    return v


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
        "precision_kept": _ratio(hit, int(kept.sum()), float("nan")),
        "recall_kept": _ratio(hit, int(good.sum()), float("nan")),
    }


# --------------------------------------------------------------------------------------------
# bootstrap confidence intervals over images
# --------------------------------------------------------------------------------------------

BOOTSTRAP_RESAMPLES = 2000
"""Default number of bootstrap resamples (Efron & Tibshirani 1993 suggest >= 1000 for percentile
intervals)."""


def _iou_of_sums(sums: np.ndarray) -> np.ndarray:
    """Foreground IoU of count sums (..., 4) = [tp, fp, fn, tn], the :func:`scores` zero rules."""
    sums = np.asarray(sums, dtype=np.float64)
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, tp / np.where(den > 0, den, 1.0), 1.0)


def _check_counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 2 or c.shape[1] != 4:
        raise ValueError(f"per-image counts must have shape (N, 4) [tp, fp, fn, tn], got {c.shape}")
    if (c < 0).any():
        raise ValueError("per-image counts must be non-negative")
    return c


def bootstrap_iou_ci(
    counts: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of the pixel-aggregated foreground IoU.

    ``counts`` is an (N, 4) int array of per-image confusion counts [tp, fp, fn, tn]. Images are
    resampled with replacement (the image is the independent unit; pixels of one image are not),
    the IoU of each resample is computed from its summed counts, and the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the resampled IoUs
    (percentile method; Efron, B. & Tibshirani, R. J., *An Introduction to the Bootstrap*,
    Chapman & Hall, 1993, ch. 13). Resampling uses :func:`scipy.stats.bootstrap` with a fixed
    ``seed``, so the interval is reproducible.

    Returns ``(low, high)`` in [0, 1], or None for fewer than 2 images (no spread to resample).
    Raises ValueError for counts of another shape or negative counts.
    """
    c = _check_counts(counts)
    if len(c) < 2:
        return None
    lo, hi = _bootstrap(lambda s: _iou_of_sums(s), c, confidence, n_resamples, seed)
    return lo, hi


def bootstrap_ratio_ci(
    counts_a: Any,
    counts_b: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Paired percentile-bootstrap interval of IoU(``counts_a``) / IoU(``counts_b``).

    Both arrays are (N, 4) per-image counts of the *same* N test images in the same order (two
    models scored on one test set): each resample draws one set of images and scores both models
    on it, so the interval reflects the difference between the models, not the test-set luck they
    share (Efron & Tibshirani 1993, paired design). Returns ``(low, high)`` or None for < 2 images
    or when IoU(``counts_b``) is 0 on some resample. Raises ValueError for unequal shapes.
    """
    a, b = _check_counts(counts_a), _check_counts(counts_b)
    if a.shape != b.shape:
        raise ValueError(f"paired counts need equal shapes, got {a.shape} and {b.shape}")
    if len(a) < 2:
        return None
    both = np.concatenate([a, b], axis=1)

    def ratio(s: np.ndarray) -> np.ndarray:
        den = _iou_of_sums(s[..., 4:])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, _iou_of_sums(s[..., :4]) / np.where(den > 0, den, 1.0), np.nan)

    lo, hi = _bootstrap(ratio, both, confidence, n_resamples, seed)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return lo, hi


def _bootstrap(
    stat_of_sums: Any, counts: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of ``stat_of_sums(summed counts)`` over image resamples (scipy)."""
    from scipy.stats import bootstrap

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} must be inside (0, 1)")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        return stat_of_sums(counts[idx].sum(axis=-2))

    res = bootstrap(
        (np.arange(len(counts)),),
        statistic,
        vectorized=True,
        n_resamples=n_resamples,
        batch=200,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
