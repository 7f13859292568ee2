"""The protocol's label scores against the true masks and its ``per_image.csv``: per-image
confusion counts (:func:`label_counts`, :func:`counts_vs_truth`, road counts beside them on road
data), their pixel-aggregated and per-image IoU (:func:`summarize_counts`, :func:`score_labels`,
:func:`per_image_iou`), and the CSV rows written from them (:func:`csv_rows`,
:func:`write_per_image_csv`; docs/results.md).

Part of :mod:`sam2elnet.pipeline.experiment`; the intervals, per-sensor rows and verdict made
from these counts are in :mod:`sam2elnet.pipeline.experiment_stats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.pipeline.experiment_split import Split
from sam2elnet.utils.atomic import write_text_atomic


def label_counts(labels: dict[str, str], truth: dict[str, str], ids: Sequence[str]) -> np.ndarray:
    """(N, 4) int64 confusion counts [tp, fp, fn, tn] of ``labels`` against ``truth``, per id in
    ``ids`` order (pixels the truth marks as ignore / nodata are not counted). The one loop that
    reads label and truth files for the protocol's label scores."""
    from sam2elnet.data.masks import read_mask, read_mask_valid
    from sam2elnet.engine.metrics import confusion

    rows = np.zeros((len(ids), 4), dtype=np.int64)
    for n, i in enumerate(ids):
        t, valid = read_mask_valid(truth[i])
        c = confusion(read_mask(labels[i], shape=t.shape), t, valid)
        rows[n] = (c.tp, c.fp, c.fn, c.tn)
    return rows


def _iou(row: Sequence[int]) -> float:
    from sam2elnet.engine.metrics import Confusion, scores

    return scores(Confusion(*(int(v) for v in row)))["iou"]


def summarize_counts(rows: np.ndarray) -> dict[str, Any]:
    """``n``, pixel-aggregated ``iou`` / ``f1`` and ``mean_image_iou`` of (N, 4) per-image counts
    (:func:`label_counts`); NaN scores for N = 0."""
    from sam2elnet.engine.metrics import Confusion, scores

    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    if not len(rows):
        return {"n": 0, "iou": float("nan"), "f1": float("nan"), "mean_image_iou": float("nan")}
    s = scores(Confusion(*(int(v) for v in rows.sum(axis=0))))
    return {
        "n": len(rows),
        "iou": s["iou"],
        "f1": s["f1"],
        "mean_image_iou": float(np.mean([_iou(r) for r in rows])),
    }


def score_labels(
    labels: dict[str, str], truth: dict[str, str], ids: Sequence[str]
) -> dict[str, Any]:
    """Pixel-aggregated and mean per-image IoU of ``labels`` against ``truth`` over ``ids``
    (pixels the truth marks as ignore / nodata are not counted)."""
    return summarize_counts(label_counts(labels, truth, ids))


def score_per_image(
    labels: dict[str, str], truth: dict[str, str], ids: Sequence[str]
) -> dict[str, float]:
    """True IoU of each label (id -> IoU; truth ignore / nodata pixels not counted)."""
    return per_image_iou(ids, label_counts(labels, truth, ids))


def per_image_iou(ids: Sequence[str], rows: np.ndarray) -> dict[str, float]:
    """id -> IoU of each row of (N, 4) per-image counts (:func:`label_counts`)."""
    return {i: _iou(r) for i, r in zip(ids, rows, strict=True)}


def counts_vs_truth(
    labels: dict[str, str],
    split: Split,
    ids: Sequence[str],
    norm: Any | None = None,
    road_counts: list[Any] | None = None,
    road_buffer: float | Sequence[float] | None = ROAD_BUFFER_PX,
) -> np.ndarray:
    """(N, 4) int64 confusion counts [tp, fp, fn, tn] of ``labels`` vs the true masks, per id.

    Pixels the truth marks as ignore / nodata are not counted; with ``norm`` (a normalisation
    config) the image's own nodata pixels are left out too, exactly as the downstream evaluation
    (:func:`sam2elnet.engine.downstream.confusion_per_image`) does, so rows scored either way are
    comparable. With ``norm`` and a ``road_counts`` list (road data), each image's
    :class:`~sam2elnet.engine.metrics.RoadCounts` (valid pixels only, centre lines matched
    within ``road_buffer`` px: one for all, or each id's own in ``ids`` order; None only
    without ``road_counts``) is appended to it
    in ``ids`` order, as the downstream evaluation does.
    """
    if norm is None:
        return label_counts(labels, split.masks, ids)
    from sam2elnet.data.masks import read_mask
    from sam2elnet.engine.downstream_data import load_pair
    from sam2elnet.engine.metrics import confusion
    from sam2elnet.engine.metrics import road_counts as _road_counts
    from sam2elnet.engine.road_buffer import per_item

    buffers = per_item(road_buffer, len(ids)) if road_counts is not None else []
    rows = np.zeros((len(ids), 4), dtype=np.int64)
    for n, i in enumerate(ids):
        _x, t, valid = load_pair(Path(split.images[i]), Path(split.masks[i]), norm)
        p = read_mask(labels[i], shape=t.shape)
        c = confusion(p, t, valid)
        rows[n] = (c.tp, c.fp, c.fn, c.tn)
        if road_counts is not None:
            v = np.ones_like(t, dtype=bool) if valid is None else valid
            road_counts.append(_road_counts(p & v, t & v, buffer_px=buffers[n]))
    return rows


def csv_rows(
    setting: str,
    part: str,
    ids: Sequence[str],
    groups: dict[str, str],
    per_image: Any,
    roads: Any = None,
) -> list[tuple[str, str, str, str, list[int]]]:
    """per_image.csv rows of one scored setting: (setting, part, id, group, counts), counts the
    image's [tp, fp, fn, tn] followed, on road data (``roads``: one list of the 6
    :class:`~sam2elnet.engine.metrics.RoadCounts` fields per id), by its road counts."""
    if per_image is None:
        return []
    roads = roads if roads and len(roads) == len(per_image) else [[]] * len(per_image)
    return [
        (setting, part, i, groups[i], [int(v) for v in (*c, *r)])
        for i, c, r in zip(ids, per_image, roads, strict=True)
    ]


def write_per_image_csv(
    path: Path,
    rows: list[tuple[str, str, str, str, list[int]]],
    road_buffer: float | None = ROAD_BUFFER_PX,
    road_buffers: Mapping[str, float] | None = None,
) -> None:
    """per_image.csv: setting, part (``test``: a downstream model or SAM2-ELNet on the test split;
    ``labelled`` / ``unlabelled``: labels of that pool part vs their truth, i.e. the auto-labels
    and table 2's label sets), id, group, tp, fp, fn, tn (pixels). docs/results.md.

    On road data (a row with road counts) the columns go on with the buffer they were matched
    within, ``road_buffer_px`` (``road_buffer``, the experiment's ``--road-buffer``; with
    ``--road-buffer-m`` each test image's own, ``road_buffers`` by id), each image's
    road measures, ``road_correctness``, ``road_completeness``, ``road_quality``, ``road_connectivity``
    (:func:`sam2elnet.engine.metrics.road_scores` of its own counts; connectivity empty without
    a true road component), and the counts behind them (:data:`~sam2elnet.engine.metrics.
    ROAD_COUNT_KEYS`, which sum over a setting's images to its table row's measures); rows
    without (label sets, auto-labels) leave them empty."""
    from sam2elnet.engine.metrics import ROAD_COUNT_KEYS, ROAD_KEYS, RoadCounts

    roads = any(len(c) > 4 for *_, c in rows)
    head = ["setting", "part", "id", "group", "tp", "fp", "fn", "tn"]
    road_cols = ["road_buffer_px", *ROAD_KEYS, *ROAD_COUNT_KEYS]
    lines = [",".join(head + (road_cols if roads else []))]
    for s, p, i, g, c in rows:
        cells = [s, p, i, g, *map(str, c[:4])]
        if roads and len(c) > 4:
            rc = RoadCounts(*c[4:10])
            cells += [repr(float((road_buffers or {}).get(i, road_buffer)))]
            cells += [_cell(v) for v in rc.scores().values()] + [str(v) for v in c[4:10]]
        elif roads:
            cells += [""] * len(road_cols)
        lines.append(",".join(cells))
    write_text_atomic(path, "\n".join(lines) + "\n")


def _cell(v: float) -> str:
    """A measure in a CSV cell: repr of the float (round-trips), empty for NaN."""
    return repr(float(v)) if np.isfinite(v) else ""
