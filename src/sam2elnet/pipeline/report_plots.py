"""Plots for the HTML report: quality histogram, predicted-vs-true scatter, filter curves.

Plots use matplotlib's object API on an Agg canvas (no pyplot global state, no display needed);
each function returns a ``Figure`` (or None when there is nothing to draw) that
:func:`sam2elnet.pipeline.report_figures.figure_data_uri` embeds. Colours match the mask layers
(:data:`sam2elnet.pipeline.report_figures.COLORS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.pipeline.report_figures import FALSE_ALARM_COLOR

__all__ = [
    "FilterCurves",
    "new_figure",
    "filter_curves",
    "quality_histogram",
    "quality_scatter",
    "threshold_curves",
]


def new_figure(w: float = 5.0, h: float = 3.2) -> Any:
    """An empty matplotlib ``Figure`` of ``w`` x ``h`` inches at 100 dpi on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _finite_array(values: Sequence[Any]) -> np.ndarray:
    a = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    return a[np.isfinite(a)]


def quality_histogram(
    predicted: Sequence[float | None],
    true: Sequence[float | None],
    threshold: float | None = None,
) -> Any | None:
    """Histogram of predicted quality (bars) and true IoU (outline), 20 bins over [0, 1].

    The acceptance ``threshold`` is a dashed line; the legend sits outside the axes.

    Args:
        predicted: Predicted IoU per label (None / NaN left out).
        true: True IoU per label (None / NaN left out).
        threshold: Acceptance threshold in [0, 1], or None.

    Returns:
        A matplotlib ``Figure``, or None when neither list has a finite value.
    """
    q, t = _finite_array(predicted), _finite_array(true)
    if q.size == 0 and t.size == 0:
        return None
    fig = new_figure(5.2, 3.2)
    ax = fig.add_subplot(111)
    bins = np.linspace(0, 1, 21)
    if q.size:
        ax.hist(
            np.clip(q, 0, 1),
            bins=bins,
            color="#3b82c4",
            alpha=0.8,
            label=f"predicted IoU ({q.size})",
        )
    if t.size:
        ax.hist(
            np.clip(t, 0, 1),
            bins=bins,
            histtype="step",
            lw=2,
            color="#2a9d4b",
            label=f"true IoU ({t.size})",
        )
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="#d62828", ls="--", lw=2, label=f"threshold {threshold:.2f}")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU")
    ax.set_ylabel("images")
    ax.set_title("Label quality distribution")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    return fig


def quality_scatter(
    predicted: Sequence[float],
    true: Sequence[float],
    status: Sequence[str],
    false_alarm: Sequence[bool],
    threshold: float | None = None,
) -> Any | None:
    """Predicted vs true IoU, one point per label.

    Kept green, rejected red, not filtered blue; labels on images with empty truth (IoU 0 by
    definition) as orange crosses. The legend sits below the axes so it never covers a point.

    Args:
        predicted, true: IoUs per label (same length, finite).
        status: ``"kept"`` / ``"rejected"`` / anything else (not filtered) per label.
        false_alarm: Per label, whether its truth is empty.
        threshold: Acceptance threshold, drawn as a vertical line, or None.

    Returns:
        A matplotlib ``Figure``, or None with fewer than 2 points.
    """
    p = np.asarray(predicted, dtype=float)
    t = np.asarray(true, dtype=float)
    if p.size < 2:
        return None
    st = np.asarray(status)
    fa = np.asarray(false_alarm, dtype=bool)
    fig = new_figure(4.2, 4.4)
    ax = fig.add_subplot(111)
    # any status other than kept / rejected ("unfiltered", "not filtered", ...) is not filtered
    groups = {"kept": st == "kept", "rejected": st == "rejected"}
    groups["not filtered"] = ~(groups["kept"] | groups["rejected"])
    for name, colour in (("kept", "#2a9d4b"), ("rejected", "#d62828"), ("not filtered", "#3b82c4")):
        sel = groups[name] & ~fa
        if sel.any():
            ax.scatter(p[sel], t[sel], s=14, c=colour, alpha=0.75, label=f"{name} ({sel.sum()})")
    if fa.any():
        ax.scatter(
            p[fa],
            t[fa],
            s=30,
            marker="x",
            c=FALSE_ALARM_COLOR,
            label=f"false alarm on empty truth ({fa.sum()})",
        )
    ax.plot([0, 1], [0, 1], color="#888", lw=1)
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="#d62828", ls="--", lw=1.5, label=f"threshold {threshold:.2f}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("predicted IoU (quality evaluator)")
    ax.set_ylabel("true IoU")
    ax.set_title("Predicted vs true IoU")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    return fig


@dataclass
class FilterCurves:
    """Quality-filter behaviour at every candidate threshold (ascending)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    kept_fraction: np.ndarray
    tau: float
    n: int
    n_good: int


def filter_curves(predicted: Sequence[float], true: Sequence[float], tau: float) -> FilterCurves:
    """Precision / recall / kept fraction of the rule "keep labels with predicted IoU >= t".

    A label is good when its true IoU >= ``tau`` (the rule of
    :meth:`sam2elnet.model.quality.QualityEvaluator.threshold_for_precision`). At threshold t:
    precision = good kept / kept (NaN when nothing is kept), recall = good kept / good,
    kept fraction = kept / all. Thresholds are 0, every distinct predicted score and 1.

    Args:
        predicted: Predicted IoU per label.
        true: True IoU per label.
        tau: Good-label IoU in (0, 1).

    Returns:
        :class:`FilterCurves` (thresholds and the three curves as arrays, counts).
    """
    p = np.asarray(predicted, dtype=float)
    y = np.asarray(true, dtype=float) >= tau
    ts = np.unique(np.concatenate([[0.0], np.clip(p, 0, 1), [1.0]]))
    prec, rec, frac = [], [], []
    n_good = int(y.sum())
    for t in ts:
        kept = p >= t
        k = int(kept.sum())
        prec.append(float(y[kept].mean()) if k else float("nan"))
        rec.append(float((y & kept).sum() / n_good) if n_good else float("nan"))
        frac.append(k / max(1, p.size))
    return FilterCurves(ts, np.array(prec), np.array(rec), np.array(frac), tau, p.size, n_good)


def threshold_curves(
    curves: FilterCurves,
    threshold: float | None = None,
    target_precision: float | None = None,
) -> Any:
    """Precision and recall of the quality filter vs its threshold (step curves).

    The kept fraction is dashed, the chosen ``threshold`` a vertical line with its precision /
    recall annotated, and ``target_precision`` a dotted horizontal line.

    Args:
        curves: From :func:`filter_curves`.
        threshold: The filter's threshold, or None.
        target_precision: The wanted precision, or None.

    Returns:
        A matplotlib ``Figure``.
    """
    fig = new_figure(5.2, 3.4)
    ax = fig.add_subplot(111)
    c = curves
    ax.step(c.thresholds, c.precision, where="post", color="#1f6fb2", lw=2, label="precision")
    ax.step(c.thresholds, c.recall, where="post", color="#2a9d4b", lw=2, label="recall")
    ax.step(
        c.thresholds, c.kept_fraction, where="post", color="#777", lw=1.2, ls="--", label="kept"
    )
    if target_precision is not None and math.isfinite(target_precision):
        ax.axhline(
            target_precision, color="#1f6fb2", ls=":", lw=1.2, label=f"target {target_precision:g}"
        )
    if threshold is not None and math.isfinite(threshold):
        i = int(np.searchsorted(c.thresholds, threshold, side="right") - 1)
        i = min(max(i, 0), len(c.thresholds) - 1)
        ax.axvline(threshold, color="#d62828", ls="--", lw=1.5, label=f"threshold {threshold:.2f}")
        pr, rc = c.precision[i], c.recall[i]
        txt = f"P {pr:.2f} · R {rc:.2f}" if np.isfinite(pr) and np.isfinite(rc) else "nothing kept"
        ax.annotate(
            txt,
            (min(threshold, 1.0), 0.04),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=8,
            color="#d62828",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.03)
    ax.set_xlabel("quality threshold (keep predicted IoU >= t)")
    ax.set_ylabel("share")
    ax.set_title(f"Quality filter (good label: true IoU >= {c.tau:.2f}; n={c.n}, good={c.n_good})")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    return fig
