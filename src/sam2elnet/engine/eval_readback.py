"""An evaluation's pairs read back as they were counted: the masks a report draws.

:func:`iter_pairs` / :func:`read_evaluated` re-read each scored pair of an
:class:`~sam2elnet.engine.eval_result.EvaluationResult` (a truth on another grid resampled onto
its prediction's, polygons placed as the evaluation placed them); :func:`vector_truths` reads the
polygon files several rows share once. Scoring is :mod:`sam2elnet.engine.evaluate`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sam2elnet.engine.eval_result import EvaluationResult, ImageResult
from sam2elnet.engine.eval_stream import PairMasks, read_pair_masks
from sam2elnet.engine.eval_vector import PolygonFiles
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT

__all__ = ["iter_pairs", "read_evaluated", "vector_truths"]


def vector_truths(result: EvaluationResult) -> PolygonFiles:
    """The polygon files of ``result`` as the evaluation placed them: one
    :class:`~sam2elnet.engine.eval_vector.PolygonFiles` with the rows' line width, sharing
    (read once, placed once per CRS; :mod:`sam2elnet.engine.eval_vector`) the evaluation's own
    truth layer (``result.layer``, already read) and every polygon file several rows use
    (truths, a layer of predictions, a valid area). Files of one prediction each are not shared
    (:func:`read_evaluated` places them on their own pair). A shared truth file's features go to
    the predictions their ``source`` / ``label`` names, as scored (``VectorTruth.images``).
    Raises DataError naming a shared file that can no longer be read."""
    from sam2elnet.data.vector import is_vector_path

    uses: Counter[Path] = Counter()
    width: tuple[float, str] | None = None
    for r in result.images:
        for f in (r.truth_path, r.pred_path, r.valid_path):
            if f is not None and is_vector_path(f):
                uses[Path(f)] += 1
                width = width or r.line_width
    files = PolygonFiles(line_width=width[0] if width else None,
                         line_width_unit=width[1] if width else DEFAULT_LINE_WIDTH_UNIT)  # fmt: skip
    if result.layer is not None:
        files.share(Path(result.layer.path), result.layer)  # type: ignore[arg-type]
    for path, n in uses.items():
        if n > 1:
            vt = files.share(path)
            if vt.images is None:  # a truth file: its features go by name as scored (pair_inputs)
                own = [Path(r.pred_path).stem for r in result.images if Path(r.truth_path) == path]
                vt.images = frozenset(own) if own else None
    return files


def read_evaluated(row: ImageResult, vectors: PolygonFiles | None = None) -> PairMasks:
    """One scored pair of an evaluation read again as it was counted
    (:func:`~sam2elnet.engine.eval_stream.read_pair_masks`): prediction, truth on its grid and
    the pixels counted (the truth's ignore pixels, the prediction's nodata, the ``--valid``
    mask and a resampled truth's footprint left out), e.g. to draw the report. ``vectors``: the
    evaluation's polygon files (:func:`vector_truths`; None: each polygon file is placed as a
    file of its own pair, with the row's line width). Raises DataError as the evaluation did."""
    if vectors is None:
        width, unit = row.line_width or (None, DEFAULT_LINE_WIDTH_UNIT)
        vectors = PolygonFiles(line_width=width, line_width_unit=unit)
    return read_pair_masks(
        row.pred_path, row.truth_path, row.valid_path,
        positive_values=row.positive_values, vector=vectors,
    )  # fmt: skip


def iter_pairs(result: EvaluationResult) -> Iterable[tuple[ImageResult, np.ndarray, np.ndarray]]:
    """Re-read (row, pred, truth) masks of an evaluation, e.g. to draw a report
    (:func:`read_evaluated`: a resampled truth on its prediction's grid, polygons placed as the
    evaluation placed them)."""
    vectors = vector_truths(result)
    for r in result.images:
        m = read_evaluated(r, vectors)
        yield r, m.pred, m.truth
