"""The keep threshold of a folder job: which labels ``--min-quality`` / ``--target-precision`` keep.

A label is kept when its predicted IoU (the quality evaluator's score, 0..1) is at least the
threshold; :func:`keep_threshold` chooses it once per job, before any image is read, and
:meth:`sam2elnet.engine.predictor.Predictor.choose_threshold` applies it with the model's
evaluator. ``--target-precision`` asks the evaluator's held-out labels
(:meth:`sam2elnet.model.quality.QualityEvaluator.threshold_for_precision`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sam2elnet.errors import UserError
from sam2elnet.model.quality import QualityEvaluator
from sam2elnet.model.quality_calibration import PRECISION_TOLERANCE, ThresholdChoice
from sam2elnet.option_checks import api_option

log = logging.getLogger(__name__)

__all__ = ["NO_EVALUATOR_ADVICE", "keep_threshold", "more_labels_advice", "no_evaluator_advice"]


def more_labels_advice() -> str:
    """What to do about an unfitted quality evaluator (no command refits one alone), as the
    caller spells options (:func:`api_option`): ``... or with quality.crossfit_folds
    (--quality-folds), which ...`` from the Python API, ``--quality-folds`` alone in ``elnet``."""
    folds = api_option("quality.crossfit_folds", "--quality-folds")
    return (
        "train again on more labelled images (e.g. reviewed labels together with the earlier "
        f"ones, docs/review.md), or with {folds}, which scores every labelled image out of fold "
        "(docs/training.md)"
    )


def _any_file_advice() -> str:
    """:data:`NO_EVALUATOR_ADVICE` as the caller spells options (:func:`api_option`)."""
    return (
        'fit one without retraining: python -c "from sam2elnet.engine.quality_fit import '
        "fit_quality; fit_quality('MODEL.pt', 'DATA')\" (docs/training.md), or train without "
        f"{api_option('fit_quality=False', '--no-quality')}"
    )


NO_EVALUATOR_ADVICE = _any_file_advice()
"""What to do about a model file that holds no quality evaluator (trained with --no-quality)
and lies outside a run folder of ``elnet train``; :func:`no_evaluator_advice` gives the advice
for a model file."""


def no_evaluator_advice(model_path: str | Path | None) -> str:
    """What to do about the model file ``model_path`` holding no quality evaluator: the model of
    an ``elnet train`` run folder (``RUN/model.pt`` next to its ``config.yaml``) gets its command,
    ``elnet train --out RUN --resume --quality`` (fits one, trains no epoch again); any other
    file :data:`NO_EVALUATOR_ADVICE`."""
    if model_path is not None:
        run = Path(model_path).parent
        if Path(model_path).name == "model.pt" and (run / "config.yaml").is_file():
            return (
                f"fit one without retraining: elnet train --out {run} --resume --quality "
                "(docs/training.md)"
            )
    return _any_file_advice()


def keep_threshold(
    evaluator: QualityEvaluator,
    min_quality: float | None = None,
    target_precision: float | None = None,
    tau: float | None = None,
    path: Path | None = None,
) -> tuple[float | None, dict[str, Any]]:
    """Score threshold for keeping labels: ``min_quality`` as given, or ``target_precision``
    via the evaluator's held-out data. None = keep everything.

    Args:
        evaluator: The model's quality evaluator.
        min_quality: Predicted IoU a label needs (0..1), or None.
        target_precision: Share of kept labels that should be right (0 < p <= 1), or None.
        tau: The IoU a label needs to count as right for ``target_precision`` (None: the
            evaluator's).
        path: The model file, named in errors.

    Returns:
        (threshold or None, ``summary.json``'s ``filter`` entry: ``min_quality`` or
        ``target_precision`` (the choice), and ``threshold``).

    Raises:
        UserError: both given (:func:`sam2elnet.options.check_one_filter`), a value out of
            range, or ``target_precision`` with an evaluator that was not fitted.
    """
    from sam2elnet.options import check_one_filter

    check_one_filter(min_quality, target_precision)
    info: dict[str, Any] = {}
    thr: float | None = None
    if min_quality is not None:
        if not 0.0 <= min_quality <= 1.0:
            raise UserError(f"--min-quality {min_quality} must be within [0, 1]")
        thr = float(min_quality)
        info["min_quality"] = thr
    elif target_precision is not None:  # one filter only (check_one_filter)
        if not 0.0 < target_precision <= 1.0:
            raise UserError(f"--target-precision {target_precision} must be within (0, 1]")
        if not evaluator.fitted:
            raise UserError(
                "this model's quality evaluator was not fitted "
                f"({evaluator.warning or evaluator.status}); use --min-quality, or "
                f"{more_labels_advice()}",
                path,
            )
        choice: ThresholdChoice = evaluator.threshold_for_precision(target_precision, tau)
        info["target_precision"] = choice.as_dict()
        if not choice.achievable:
            log.warning(
                f"--target-precision {target_precision}: {choice.note}; only labels scoring "
                f"above every held-out label (quality >= {choice.threshold:.3f}) will be kept, "
                "with no promised precision (lower --target-precision, use --min-quality, or "
                "label more images and retrain)"
            )
        elif not choice.reliable and choice.note:
            log.warning(
                f"--target-precision {target_precision}: {choice.note}; the precision of the "
                f"kept labels may differ from {target_precision} by more than "
                f"{PRECISION_TOLERANCE:g}"
            )
        thr = choice.threshold
    info["threshold"] = thr
    return thr, info
