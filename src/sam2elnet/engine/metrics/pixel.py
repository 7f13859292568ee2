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

__all__ = ["Confusion", "confusion", "scores", "iou_per_sample", "json_num"]


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


def json_num(v: Any) -> Any:
    """NaN/inf -> None so the JSON output is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return json_num(v.item())
    return v
