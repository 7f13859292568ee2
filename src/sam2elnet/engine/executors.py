"""The window-predictor contract every scene backend speaks.

:func:`sam2elnet.engine.scene.predict_scene` reads, normalises and blends windows itself and hands
batches of windows to a :class:`BatchExecutor`. This module holds that contract and nothing of the
scene: the protocols (:class:`WindowPredictor`, :class:`WindowScorer`, :class:`BatchExecutor`),
:func:`run_batch` (pad, predict, crop, score one batch: the one function every backend calls),
the in-process :class:`LocalExecutor` and :class:`SmoothingPredictor`. The folder jobs use the
second contract, :class:`CallExecutor` (``map_calls``: run a per-chunk function with the
executor's own predictor), which :class:`LocalExecutor` and the Ray executor also speak, a deterministic stand-in
model for tests, benchmarks and dry runs. The Ray backend (:mod:`sam2elnet.engine.distributed`)
imports this module only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BatchExecutor",
    "CallExecutor",
    "LocalExecutor",
    "SmoothingPredictor",
    "WindowBatch",
    "WindowPredictor",
    "WindowScorer",
    "entropy_bits",
    "run_batch",
    "window_batches",
]


@runtime_checkable
class WindowPredictor(Protocol):
    """What scene prediction needs from a model: probabilities for a batch of normalised windows.

    ``batch`` is float32 ``(B, C, h, w)`` already normalised; ``coarse`` is float32 ``(B, h, w)``
    in {0, 1} (label enhancement) or ``None`` (automatic annotation). Returns float32 probabilities
    ``(B, h, w)``. ``in_bands`` is the band count the model takes. Optional attributes used when
    present: ``normalization`` (a :class:`~sam2elnet.data.normalize.NormalizationConfig`) and
    ``size_multiple`` (windows are reflect-padded to a multiple of it).
    """

    in_bands: int

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray: ...


@runtime_checkable
class WindowScorer(Protocol):
    """Optional: a predictor that also predicts each window's label quality (IoU with the truth)."""

    def score_arrays(
        self, batch: np.ndarray, coarse: np.ndarray | None, probs: np.ndarray
    ) -> np.ndarray: ...


WindowBatch = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""One item of :meth:`BatchExecutor.map_batches`, the arguments of :func:`run_batch`: windows
(B, C, h, w) float32, their coarse labels (B, h, w) or None, their valid masks (B, h, w), 1 =
measured, or None when every pixel is valid."""


PAIR_BATCH_REMOVED_IN = "0.2.0"
"""The release that drops ``(windows, coarse)`` 2-tuples from ``map_batches``
(:func:`window_batches`)."""


def window_batches(items: Iterable[Any]) -> Iterator[WindowBatch]:
    """``map_batches`` items as :data:`WindowBatch` 3-tuples.

    A 2-tuple ``(windows, coarse)``, the form :class:`LocalExecutor` and ``RayExecutor`` took
    before :data:`WindowBatch`, is deprecated (docs/changes.md): it passes with ``valid`` None
    (every pixel measured) and one :class:`DeprecationWarning` per call naming the 3-tuple; it is
    removed in :data:`PAIR_BATCH_REMOVED_IN`. 3-tuples pass as they are.

    Args:
        items: :data:`WindowBatch` 3-tuples, or deprecated ``(windows, coarse)`` 2-tuples.

    Returns:
        A lazy iterator of :data:`WindowBatch` 3-tuples, in the order of ``items``.
    """
    warned = False
    for item in items:
        if len(item) == 2:
            if not warned:
                warnings.warn(
                    "map_batches items (windows, coarse) are deprecated: pass (windows, coarse, "
                    "valid), a WindowBatch (valid None when every pixel is measured); the "
                    f"2-tuple form is removed in sam2elnet {PAIR_BATCH_REMOVED_IN}",
                    DeprecationWarning,
                    stacklevel=3,  # this generator, the executor's map_batches, the caller's loop
                )
                warned = True
            item = (*item, None)
        yield item


class BatchExecutor(Protocol):
    """Runs batches through a predictor and yields results *in submission order*.

    The in-order contract is what makes the streaming accumulator (and therefore the output)
    identical whichever executor runs the batches.
    """

    def map_batches(
        self, items: Iterable[WindowBatch]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]: ...


def run_batch(
    predictor: Any,
    batch: np.ndarray,
    coarse: np.ndarray | None,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predict one batch: pad to the predictor's ``size_multiple``, predict, crop, optionally score.

    ``valid`` ((B, h, w), 1 = measured, 0 = nodata; None: all valid) reaches a predictor that
    scores windows with it (``takes_valid``, :class:`~sam2elnet.engine.predictor.
    QualityScoringPredictor`), so a window's predicted IoU leaves its nodata out, as
    ``elnet annotate`` scores the same pixels; ``coarse`` is cleared (0) where ``valid`` is 0
    before the forward, as the image there is (normalised to 0): a coarse polygon over a nodata
    border no longer changes the label on valid pixels. Returns ``(probs (B, h, w) float32,
    predicted_iou (B,) float32 | None)``.
    """
    b, _c, h, w = batch.shape
    if coarse is not None and valid is not None:  # nodata carries no image, so no coarse label
        coarse = np.where(np.asarray(valid).reshape(coarse.shape) > 0, coarse, 0).astype(
            coarse.dtype
        )
    mult = int(getattr(predictor, "size_multiple", 1) or 1)
    ph = (-h) % mult
    pw = (-w) % mult
    x, cx = batch, coarse
    if ph or pw:
        mode = "reflect" if (h > ph and w > pw) else "edge"
        x = np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
        if coarse is not None:
            cx = np.pad(coarse, ((0, 0), (0, ph), (0, pw)), mode=mode)
    if valid is not None and getattr(predictor, "takes_valid", False):
        vx = valid if not (ph or pw) else np.pad(valid, ((0, 0), (0, ph), (0, pw)), mode=mode)
        probs = np.asarray(predictor.predict_arrays(x, cx, valid=vx), dtype=np.float32)
    else:
        probs = np.asarray(predictor.predict_arrays(x, cx), dtype=np.float32)
    if probs.ndim == 4 and probs.shape[1] == 1:
        probs = probs[:, 0]
    if probs.shape != (b, h + ph, w + pw):
        raise RuntimeError(
            f"predictor returned probabilities of shape {probs.shape}, expected {(b, h + ph, w + pw)}"
        )
    probs = np.ascontiguousarray(probs[:, :h, :w])
    iou = None
    score = getattr(predictor, "score_arrays", None)
    if callable(score):
        iou = np.asarray(score(batch, coarse, probs), dtype=np.float32).reshape(b)
    return probs, iou


class CallExecutor(Protocol):
    """Runs ``fn(predictor, *args)`` for each ``args`` and yields the results *in submission
    order*, where ``predictor`` is the executor's own (one per worker, loaded once).

    The folder jobs (:mod:`sam2elnet.engine.folder_job`) hand it their per-chunk function: the local
    loop and a cluster run the very same function, only the scheduling differs. ``fn`` must be a
    module-level function (so a remote worker can import it) and ``args`` picklable.
    """

    def map_calls(
        self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]
    ) -> Iterator[Any]: ...


class LocalExecutor:
    """Runs batches (and calls) in this process, one after the other."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def map_batches(
        self, items: Iterable[WindowBatch]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for batch, coarse, valid in window_batches(items):  # 2-tuples: deprecated
            yield run_batch(self.predictor, batch, coarse, valid)

    def map_calls(self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """``fn(self.predictor, *args)`` for each ``args`` of ``items``, lazily, in order."""
        for args in items:
            yield fn(self.predictor, *args)

    def close(self) -> None:
        """Nothing to release (the protocol of executors that hold workers)."""

    def record(self) -> dict[str, Any]:
        """Where the work ran, for a job's ``summary.json`` ``backend``: ``{"name": "local"}``."""
        return {"name": "local"}

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def entropy_bits(p: np.ndarray) -> np.ndarray:
    """Binary entropy in bits of probabilities ``p`` (any shape): 0 = certain, 1 = coin flip.

    Args:
        p: float probabilities in [0, 1]; clipped to [1e-6, 1 - 1e-6] first.

    Returns:
        float array of the same shape, in [0, 1].
    """
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return -(q * np.log2(q) + (1 - q) * np.log2(1 - q))


# --------------------------------------------------------------------------------------------
# a deterministic stand-in model


class SmoothingPredictor:
    """Deterministic, translation-equivariant stand-in for a model: smooth, then threshold softly.

    ``p = sigmoid(gain * (gauss(x[0], sigma) [+ gauss(coarse)] / n - level))``. Used by the tests,
    the benchmark and dry runs of pipelines before a model is trained: it has the shape contract of
    the real predictor, costs little, and (being a local filter) must give the same result whatever
    the tiling, which is exactly what the tiling tests check. ``score=True`` adds a
    ``score_arrays`` that returns ``1 - mean entropy`` as a mock predicted IoU.
    """

    def __init__(
        self,
        in_bands: int = 1,
        sigma: float = 2.0,
        level: float = 0.5,
        gain: float = 12.0,
        score: bool = False,
        normalization: Any = None,
    ) -> None:
        self.in_bands = in_bands
        self.sigma = sigma
        self.level = level
        self.gain = gain
        self.normalization = normalization
        if score:
            self.score_arrays = self._score

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        from scipy.ndimage import gaussian_filter

        x = batch.mean(axis=1).astype(np.float32)
        s = gaussian_filter(x, sigma=(0, self.sigma, self.sigma), mode="reflect")
        if coarse is not None:
            c = gaussian_filter(
                coarse.astype(np.float32), sigma=(0, self.sigma, self.sigma), mode="reflect"
            )
            s = 0.5 * (s + c)
        return (1.0 / (1.0 + np.exp(-self.gain * (s - self.level)))).astype(np.float32)

    def _score(self, batch: np.ndarray, coarse: np.ndarray | None, probs: np.ndarray) -> np.ndarray:
        ent = entropy_bits(probs).reshape(probs.shape[0], -1).mean(axis=1)
        return (1.0 - ent).astype(np.float32)
