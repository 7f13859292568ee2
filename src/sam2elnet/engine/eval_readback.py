"""An evaluation's pairs read back as they were counted: the masks a report draws.

:func:`iter_pairs` / :func:`read_evaluated` re-read each scored pair of an
:class:`~sam2elnet.engine.eval_result.EvaluationResult` (a truth on another grid resampled onto
its prediction's, polygons placed as the evaluation placed them); :func:`vector_truths` reads the
polygon files several rows share once. Scoring is :mod:`sam2elnet.engine.evaluate`'s (which
re-exports these).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.eval_inputs import PolygonFiles, VectorTruth
from sam2elnet.engine.eval_result import EvaluationResult, ImageResult
from sam2elnet.engine.eval_stream import PairMasks, read_pair_masks

__all__ = ["iter_pairs", "read_evaluated", "vector_truths"]


def vector_truths(result: EvaluationResult) -> dict[Path, VectorTruth]:
    """The polygon files the rows of ``result`` share (truths, a layer of predictions, a valid
    area), each as one :class:`VectorTruth` (read once, placed once per CRS;
    :mod:`sam2elnet.engine.eval_vector`): the evaluation's own truth layer (``result.layer``,
    already read) and one per polygon file that several rows share, with the rows' line width.
    Files of one prediction each are not in it (:func:`read_evaluated` places them on their own
    pair)."""
    from collections import Counter

    from sam2elnet.data.vector import is_vector_path

    out: dict[Path, VectorTruth] = {}
    if result.layer is not None:
        out[Path(result.layer.path)] = result.layer
    uses: Counter[Path] = Counter()
    width: dict[Path, Any] = {}
    for r in result.images:
        for f in (r.truth_path, r.pred_path, r.valid_path):
            if f is not None and is_vector_path(f):
                uses[Path(f)] += 1
                width.setdefault(Path(f), r.line_width)
    for path, n in uses.items():
        if n > 1 and path not in out:
            shared = VectorTruth.shared(path)
            shared.line_width, shared.line_width_unit = width[path] or (None, "map")
            out[path] = shared
    return out


def read_evaluated(row: ImageResult, vectors: dict[Path, VectorTruth] | None = None) -> PairMasks:
    """One scored pair of an evaluation read again as it was counted
    (:func:`~sam2elnet.engine.eval_stream.read_pair_masks`): prediction, truth on its grid and
    the pixels counted (the truth's ignore pixels, the prediction's nodata, the ``--valid``
    mask and a resampled truth's footprint left out), e.g. to draw the report. ``vectors``: the
    shared polygon files (:func:`vector_truths`; None: each polygon file is placed as a file of
    its own pair). Raises DataError as the evaluation did."""
    width, unit = row.line_width or (None, "map")
    files = PolygonFiles(dict(vectors or {}), width, unit)
    return read_pair_masks(
        row.pred_path, row.truth_path, row.valid_path,
        positive_values=row.positive_values, vector=files,
    )  # fmt: skip


def iter_pairs(result: EvaluationResult) -> Iterable[tuple[ImageResult, np.ndarray, np.ndarray]]:
    """Re-read (row, pred, truth) masks of an evaluation, e.g. to draw a report
    (:func:`read_evaluated`: a resampled truth on its prediction's grid, polygons placed as the
    evaluation placed them)."""
    vectors = vector_truths(result)
    for r in result.images:
        m = read_evaluated(r, vectors)
        yield r, m.pred, m.truth
