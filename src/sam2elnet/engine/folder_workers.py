"""Where a folder job predicts: its predictor and its executor (this process or Ray workers).

* :func:`job_predictor`: the job's :class:`~sam2elnet.engine.predictor.Predictor` (given, or
  loaded from the model file); :func:`load_predictor`: the same from options alone, the picklable
  factory each Ray worker calls once.
* :func:`job_executor`: a :class:`~sam2elnet.engine.executors.LocalExecutor`, or the executor an
  :data:`ExecutorFactory` makes (``pipeline.jobs.ray_backend``), closed when the job ends.
* :class:`CallWindows`: the window batches of images predicted window by window, sent through the
  same executor.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine import memory
from sam2elnet.engine.executors import CallExecutor, LocalExecutor, WindowBatch, run_batch
from sam2elnet.engine.predictor import Predictor, QualityScoringPredictor
from sam2elnet.option_checks import option_default
from sam2elnet.options import FolderJobOptions

__all__ = [
    "CallWindows",
    "ExecutorFactory",
    "executor_record",
    "load_predictor",
    "job_predictor",
    "job_executor",
]


def _default(name: str) -> Any:
    """The declared default of option ``name`` of ``elnet annotate`` / ``elnet enhance``
    (:class:`~sam2elnet.options.FolderJobOptions`), as :mod:`sam2elnet.engine.infer` reads it."""
    return option_default(FolderJobOptions, name)


def _window_batch(
    pred: Predictor,
    batch: np.ndarray,
    coarse: np.ndarray | None,
    scored: bool,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One window batch of the large-image path (scored by the evaluator when ``scored``, with
    the windows' ``valid`` masks)."""
    return run_batch(QualityScoringPredictor(pred) if scored else pred, batch, coarse, valid)


class CallWindows:
    """The large-image path's window batches through the job's executor (same workers)."""

    def __init__(self, executor: CallExecutor, scored: bool) -> None:
        self.executor, self.scored = executor, scored

    def map_batches(
        self, items: Iterable[WindowBatch]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        return self.executor.map_calls(_window_batch, ((b, c, self.scored, v) for b, c, v in items))


def load_predictor(
    model_path: str | Path,
    *,
    device: str = _default("device"),
    precision: str = _default("precision"),
    batch_size: int = _default("batch_size"),
    tta: int | None = None,
    max_memory: int | str | None = None,
    bands: Sequence[int] | None = None,
) -> Predictor:
    """The predictor of a folder job from its options (:meth:`Predictor.from_file` plus
    :meth:`Predictor.set_bands`): what each Ray worker builds once, from a
    ``functools.partial`` of this function (picklable)."""
    pred = Predictor.from_file(
        model_path,
        device=device,
        precision=precision,
        batch_size=batch_size,
        tta=tta,
        max_memory=max_memory,
    )
    return pred.set_bands(bands)


ExecutorFactory = Callable[[Callable[[], Predictor]], Any]
"""Given the job's predictor factory (a picklable zero-argument callable), an executor with
``map_calls`` and ``close`` that runs the per-chunk work elsewhere, e.g.
``functools.partial(RayExecutor, num_workers=4, address="auto")``."""


def job_predictor(
    predictor: Predictor | None,
    model_path: str | Path,
    device: str,
    precision: str,
    batch_size: int,
    tta: int | None,
    max_memory: int | str | None,
) -> Predictor:
    """The given predictor (with ``max_memory`` applied when given) or one loaded from file."""
    if predictor is None:
        return load_predictor(
            model_path,
            device=device,
            precision=precision,
            batch_size=batch_size,
            tta=tta,
            max_memory=max_memory,
        )
    if max_memory is not None:
        predictor.max_memory = memory.parse_memory(max_memory)
    return predictor


def executor_record(ex: object) -> dict[str, Any]:
    """Where a job's work ran, as its ``summary.json`` records it under ``backend``: the
    executor's own ``record()`` (``{"name": "local"}``, ``{"name": "ray", "workers": 2,
    "address": "local"}``), else ``{"name": CLASS NAME}`` for an executor of the caller's."""
    record = getattr(ex, "record", None)
    return dict(record()) if callable(record) else {"name": type(ex).__name__}


@contextlib.contextmanager
def job_executor(
    make: ExecutorFactory | None, pred: Predictor, model_path: str | Path | None
) -> Iterator[CallExecutor]:
    """The job's executor: this process, or ``make(factory)`` whose workers each build a
    predictor like ``pred`` (same file, device, precision, batch size, TTA, memory budget and
    bands, so they predict exactly as it does); closed when the job ends."""
    if make is None:
        yield LocalExecutor(pred)
        return

    factory = functools.partial(
        load_predictor,
        str(pred.path or model_path),
        device=str(pred.device),
        precision=pred.precision,
        batch_size=pred.batch_size,
        tta=pred.tta,
        max_memory=pred.max_memory,
        bands=pred.normalization.band_select,
    )
    ex = make(factory)
    try:
        yield ex
    finally:
        ex.close()
