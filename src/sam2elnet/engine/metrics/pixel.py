"""Pixel measures of binary masks: the confusion counts and the scores made from them.

:class:`Confusion` counts add up, so a folder's aggregate IoU is computed from pixel-summed counts;
:func:`scores` applies the zero-denominator rules of :mod:`sam2elnet.engine.metrics`.
:func:`confusion` also takes torch tensors (counted on their own device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Confusion",
    "as_bool_mask",
    "cohen_kappa",
    "confusion",
    "iou_per_sample",
    "json_num",
    "safe_ratio",
    "scores",
]


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


def as_bool_mask(x: Any, name: str) -> np.ndarray:
    """A mask-like as a numpy bool array of the same shape (any shape, e.g. ``(H, W)``).

    Args:
        x: numpy array, nested list or torch tensor (moved to the CPU). Bool: as is; floats
            (probabilities, 0/1 floats): foreground above 0.5; integers: foreground where != 0.
        name: what ``x`` is (``pred``, ``truth``, ``valid``), for callers' messages; unused here.

    Returns:
        ``np.ndarray`` of dtype bool, ``x``'s shape.
    """
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

    p = as_bool_mask(pred, "pred")
    t = as_bool_mask(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {p.shape} != truth shape {t.shape}")
    if valid is not None:
        v = np.broadcast_to(as_bool_mask(valid, "valid"), p.shape)
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
    p = as_bool_mask(pred, "pred")
    t = as_bool_mask(truth, "truth")
    if valid is not None:
        v = np.broadcast_to(as_bool_mask(valid, "valid"), p.shape)
        p, t = p & v, t & v
    p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
    inter = (p & t).sum(1).astype(np.float64)
    union = (p | t).sum(1).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), empty)


def safe_ratio(num: int, den: int, when_empty: float) -> float:
    """``num / den`` as a float, or ``when_empty`` when ``den`` is 0 (the module's zero-denominator
    rules: 1.0 agreement, 0.0 one-sided, NaN nothing counted, chosen by the caller)."""
    return float(num) / float(den) if den > 0 else when_empty


def scores(conf: Confusion) -> dict[str, float]:
    """Standard scores from a :class:`Confusion`; foreground is the positive class.

    Returns ``iou`` (foreground IoU = TP/(TP+FP+FN)), ``iou_bg`` (TN/(TN+FP+FN)), ``miou`` (mean of
    the two), ``f1`` (= ``dice`` = 2TP/(2TP+FP+FN)), ``precision`` (TP/(TP+FP)), ``recall``
    (TP/(TP+FN)), ``accuracy`` ((TP+TN)/N) and ``kappa`` (:func:`cohen_kappa`). Zero
    denominators follow the module rules: 1.0 when both masks agree that there is nothing to find,
    0.0 when one side has pixels and the other has none, NaN everywhere when no pixel was counted.
    """
    if conf.total == 0:
        nan = float("nan")
        return dict.fromkeys(
            ("iou", "iou_bg", "miou", "f1", "dice", "precision", "recall", "accuracy", "kappa"),
            nan,
        )
    tp, fp, fn, tn = conf.tp, conf.fp, conf.fn, conf.tn
    # "no error possible" -> 1.0; "something there but nothing matched" -> 0.0
    iou = safe_ratio(tp, tp + fp + fn, 1.0)
    iou_bg = safe_ratio(tn, tn + fp + fn, 1.0)
    f1 = safe_ratio(2 * tp, 2 * tp + fp + fn, 1.0)
    precision = safe_ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0)
    recall = safe_ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0)
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
        "kappa": cohen_kappa(conf),
    }


def cohen_kappa(conf: Confusion) -> float:
    """Cohen's kappa of a :class:`Confusion`: agreement of prediction and truth beyond chance.

    kappa = (p_o - p_e) / (1 - p_e), with p_o = (TP + TN) / N the observed agreement (overall
    accuracy) and p_e = ((TP + FP)(TP + FN) + (FN + TN)(FP + TN)) / N^2 the agreement expected
    from the two masks' class shares alone; computed exactly from the integer counts as
    2 (TP TN - FN FP) / ((TP + FP)(FP + TN) + (TP + FN)(FN + TN)). Cohen, J. (1960), "A
    coefficient of agreement for nominal scales", *Educational and Psychological Measurement*
    20(1), 37-46; the accuracy measure of remote-sensing classifications since Congalton, R. G.
    (1991), "A review of assessing the accuracy of classifications of remotely sensed data",
    *Remote Sensing of Environment* 37(1), 35-46. Unlike accuracy it is not inflated by a large
    background: a false alarm on an empty tile scores 0 (no better than chance), not 0.96.

    Args:
        conf: pixel counts, one image or summed over many (the pixel-summed kappa).

    Returns:
        float in [-1, 1]: 1 = perfect agreement, 0 = chance, < 0 worse than chance. The
        denominator is 0 only when both masks are one class everywhere and agree: 1.0 (the
        module's "nothing could go wrong" rule); NaN when no pixel was counted.
    """
    if conf.total == 0:
        return float("nan")
    # Python ints: the products of counts summed over a large scene or folder pass 2**63
    tp, fp, fn, tn = (int(v) for v in (conf.tp, conf.fp, conf.fn, conf.tn))
    den = (tp + fp) * (fp + tn) + (tp + fn) * (fn + tn)
    return safe_ratio(2 * (tp * tn - fn * fp), den, 1.0)


# --------------------------------------------------------------------------------------------


def json_num(v: Any) -> Any:
    """NaN/inf -> None so the JSON output is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return json_num(v.item())
    return v
