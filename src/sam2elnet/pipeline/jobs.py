"""Folder job front doors: ``elnet annotate`` / ``elnet enhance`` with the optional HTML report.

The engine's folder jobs (:func:`sam2elnet.engine.infer.annotate_folder`,
:func:`sam2elnet.engine.infer.enhance_folder`) predict, score, filter and write the run folder;
they know nothing of the report. These front doors add ``report=True``: the report is written by
the engine's ``on_finish`` hook, so its path lands in ``summary.json`` (written once) and in the
returned :attr:`FolderResult.summary` under ``"report"``. They also choose where the images are
predicted: ``backend="local"`` (this process) or ``backend="ray"`` (Ray actors, each loading the
model once, on a private local Ray or the cluster at ``address``; :func:`ray_backend`). Every other
keyword argument goes to the engine function unchanged.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from sam2elnet.engine import infer
from sam2elnet.engine.folder_job import FinishHook, FolderResult
from sam2elnet.engine.folder_workers import ExecutorFactory
from sam2elnet.errors import UserError
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.options import FolderJobOptions

log = logging.getLogger(__name__)

__all__ = ["annotate_folder", "enhance_folder", "folder_report", "ray_backend"]


def _default(name: str) -> Any:
    """The declared default of option ``name`` of ``elnet annotate`` / ``elnet enhance``
    (:class:`~sam2elnet.options.FolderJobOptions`, where the CLI takes it from too)."""
    return option_default(FolderJobOptions, name)


def ray_backend(
    backend: str = _default("backend"),
    address: str | None = None,
    workers: int = _default("workers"),
    device: str = _default("device"),
) -> ExecutorFactory | None:
    """The executor factory for ``backend`` (None = this process), as the engine jobs take it.

    Args:
        backend: ``"local"`` or ``"ray"``.
        address: Ray cluster address (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``);
            None starts a private local Ray with ``workers`` CPUs. Only with ``backend="ray"``.
        workers: Ray actors (1-1024), each loading the model once and reserving one CPU, and
            one GPU when ``device`` is ``cuda``/``cuda:N``.
        device: the job's device (decides the GPU reservation).

    Raises:
        UserError: an unknown backend, ``address`` without ``backend="ray"``, ``workers`` out
            of range, Ray not installed, an unreachable ``address``
            (:func:`~sam2elnet.engine.distributed.check_address`).
    """
    opts = check_options(FolderJobOptions, backend=backend, workers=workers)
    if opts.backend == "local":
        if address:
            raise UserError("--address is for the Ray backend; add --backend ray")
        return None
    from sam2elnet.engine.distributed import RAY_INSTALL, RayExecutor, check_address, ray_available

    if not ray_available():
        raise UserError(f"--backend ray needs Ray: {RAY_INSTALL}")
    check_address(address)  # before any output is touched
    gpus = 1.0 if str(device).startswith("cuda") else 0.0
    return functools.partial(
        RayExecutor, num_workers=opts.workers, address=address, num_gpus_per_worker=gpus
    )


def _hook(kind: str, report: bool) -> FinishHook:
    """``report.html`` (with ``report``) into ``summary.json`` (the engine job records where it
    ran: ``backend``)."""

    def hook(result: FolderResult) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if report:
            path = folder_report(result, kind)
            if path is not None:
                out["report"] = str(path)
        return out

    return hook


def folder_report(result: FolderResult, kind: str) -> Path | None:
    """Write ``OUT/report.html`` for a finished folder job.

    The run report of :func:`sam2elnet.pipeline.report.write_run_report` (per-image table, cards
    worst predicted quality first, viewer, filter plots) over the job's rows, with the job summary
    as metrics.

    Args:
        result: the finished job (its ``rows`` are the ``quality.csv`` rows).
        kind: ``"annotate"`` or ``"enhance"`` (used in the title).

    Returns:
        The report path, or None when the report module cannot be imported.

    Raises:
        UserError: ``result.out_dir`` holds no ``quality.csv`` (not an annotate / enhance run
            folder), or ``OUT/report.html`` cannot be written there (a folder of that name).
        DataError: the run's ``quality.csv`` / ``skipped.csv`` cannot be read, or an image,
            label or vector coarse label the report draws is missing or unreadable.
    """
    try:
        from sam2elnet.pipeline.report import write_run_report
    except ImportError:
        log.warning("the report module is not available; no report.html written")
        return None
    summary = {k: v for k, v in result.summary.items() if k not in ("missing_labels",)}
    return write_run_report(result.out_dir, kind=kind, summary=summary, rows=result.rows)


def annotate_folder(
    *args: Any,
    report: bool = False,
    backend: str = _default("backend"),
    address: str | None = None,
    workers: int = _default("workers"),
    **kwargs: Any,
) -> FolderResult:
    """:func:`sam2elnet.engine.infer.annotate_folder`, plus ``OUT/report.html`` with ``report``.

    Args:
        *args: ``model_path, images, out_dir`` as for the engine function.
        report: also write ``OUT/report.html`` (:func:`folder_report`).
        backend: ``"local"`` or ``"ray"`` (:func:`ray_backend`; same outputs byte for byte).
        address: Ray cluster address with ``backend="ray"`` (default: a private local Ray).
        workers: Ray actors with ``backend="ray"``.
        **kwargs: the engine function's options.

    Returns:
        The engine's :class:`~sam2elnet.engine.folder_job.FolderResult`.

    Raises:
        UserError: an unknown ``backend``, ``address`` without ``backend="ray"``, ``workers``
            out of range (:func:`ray_backend`); what the engine function raises
            (:func:`sam2elnet.engine.infer.annotate_folder`: invalid options or outputs).
        DataError, CheckpointError, LockedError: as the engine function (nothing produced,
            an unusable model file, another job writing into ``out_dir``); with ``report``, a
            report that cannot be written (:func:`folder_report`).
    """
    make = ray_backend(backend, address, workers, kwargs.get("device", _default("device")))
    hook = _hook("annotate", report)
    return infer.annotate_folder(*args, on_finish=hook, executor_factory=make, **kwargs)


def enhance_folder(
    *args: Any,
    report: bool = False,
    backend: str = _default("backend"),
    address: str | None = None,
    workers: int = _default("workers"),
    **kwargs: Any,
) -> FolderResult:
    """:func:`sam2elnet.engine.infer.enhance_folder`, plus ``OUT/report.html`` with ``report``.

    Takes ``model_path, images, labels, out_dir`` as the engine function does; ``report``,
    ``backend``, ``address``, ``workers`` and the other options as in :func:`annotate_folder`.

    Returns:
        The engine's :class:`~sam2elnet.engine.folder_job.FolderResult`.

    Raises:
        UserError, DataError, CheckpointError, LockedError: as :func:`annotate_folder` for the
            backend and report, and as :func:`sam2elnet.engine.infer.enhance_folder` for the
            labels (missing, not masks, images without a label).
    """
    make = ray_backend(backend, address, workers, kwargs.get("device", _default("device")))
    hook = _hook("enhance", report)
    return infer.enhance_folder(*args, on_finish=hook, executor_factory=make, **kwargs)
