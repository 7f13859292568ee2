"""The quality evaluator of a finished training run, fitted on the best model's predictions.

After the last epoch :func:`fit_run_evaluator` fits the evaluator that scores each label
``elnet annotate`` / ``enhance`` writes. It sees the best model (``model.pt``) predict images it
was not trained on: the validation split, and either a sample of the training images
(``quality.train_samples``) or, with ``--quality-folds``, every training image predicted out of
fold by networks trained without it (:func:`~sam2elnet.engine.quality_crossfit.crossfit_samples`).
The items are at the native scale annotation predicts; the fit itself is
:func:`~sam2elnet.engine.quality_fit.fit_quality`, which stores the evaluator in ``model.pt``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2elnet.config import TrainConfig
from sam2elnet.engine.quality_crossfit import crossfit_samples
from sam2elnet.engine.quality_fit import fit_quality
from sam2elnet.engine.quality_items import quality_items, train_subset
from sam2elnet.engine.train_checks import positive_values
from sam2elnet.utils.advice import plural

__all__ = ["fit_run_evaluator"]


def fit_run_evaluator(
    cfg: TrainConfig,
    data: Any,
    best_path: Path,
    train_fn: Callable[..., Any],
    say: Callable[[str], None],
    batch_size: int,
) -> dict[str, Any]:
    """Fit the run's quality evaluator into ``best_path`` (``model.pt``).

    Args:
        cfg: the run's configuration (``quality``, ``seed``, ``device``, ``precision``: the
            evaluator's features are computed at inference's precision, not training's).
        data: the run's :class:`~sam2elnet.engine.train_data.TrainData`.
        train_fn: :func:`sam2elnet.engine.train.train`, which trains the fold networks of
            ``--quality-folds``.
        say: where progress lines go; ``batch_size``: images per forward pass.

    Returns:
        :func:`~sam2elnet.engine.quality_fit.fit_quality`'s summary (fitted, metrics, warning,
        default threshold, ...).
    """
    oof = None
    if cfg.quality.crossfit_folds:
        # the evaluator's features: inference's precision (cfg.precision), not training's
        oof = crossfit_samples(cfg, data, best_path, train_fn, say, batch_size)
    q_train = train_subset(data.train_samples, cfg.quality.train_samples, cfg.seed)
    if oof is not None:  # every training image is predicted out of fold instead
        q_train = []
    # at the native scale annotate predicts, not the validation items' crop size
    pv = positive_values(cfg)
    val_items = quality_items(data.val_samples, data.norm, data.in_bands, cfg.seed, pv)
    train_items = quality_items(q_train, data.norm, data.in_bands, cfg.seed, pv)
    say(announce(len(val_items), len(train_items), None if oof is None else len(oof)))
    return fit_quality(
        best_path,
        val_items=val_items,
        train_items=train_items,
        qcfg=cfg.quality,
        device=cfg.device,
        precision=cfg.precision,
        batch_size=batch_size,
        seed=cfg.seed,
        crossfit=oof,
        progress=cfg.progress,
    )


def announce(n_val: int, n_train: int, n_oof: int | None = None) -> str:
    """The line ``elnet train`` prints before the evaluator's images are predicted (its
    progress line, ``quality evaluator: N/N img ...``, follows): ``n_val`` held-out and
    ``n_train`` in-sample images, ``n_oof`` out-of-fold samples of ``--quality-folds`` (None:
    not cross-fitted)."""
    n = n_val + n_train
    what = f"{n_val} held out, {n_train} in sample" if n_oof is None else f"{n_val} held out"
    more = "" if n_oof is None else f", with {plural(n_oof, 'out-of-fold sample')}"
    return (
        f"fitting the quality evaluator on {plural(n, 'image')} ({what}){more}: predicting "
        "them at full size ..."
    )
