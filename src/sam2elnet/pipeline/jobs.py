"""Folder job front doors: ``elnet annotate`` / ``elnet enhance`` with the optional HTML report.

The engine's folder jobs (:func:`sam2elnet.engine.infer.annotate_folder`,
:func:`sam2elnet.engine.infer.enhance_folder`) predict, score, filter and write the run folder;
they know nothing of the report. These front doors add ``report=True``: the report is written by
the engine's ``on_finish`` hook, so its path lands in ``summary.json`` (written once) and in the
returned :attr:`FolderResult.summary` under ``"report"``. Every other keyword argument goes to the
engine function unchanged.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sam2elnet.engine import infer
from sam2elnet.engine.infer import FinishHook, FolderResult

__all__ = ["annotate_folder", "enhance_folder", "folder_report"]


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
    """
    try:
        from sam2elnet.pipeline.report import write_run_report
    except ImportError:
        warnings.warn("the report module is not available; no report.html written", stacklevel=3)
        return None
    summary = {k: v for k, v in result.summary.items() if k not in ("missing_labels",)}
    return write_run_report(result.out_dir, kind=kind, summary=summary, rows=result.rows)


def _report_hook(kind: str) -> FinishHook:
    def hook(result: FolderResult) -> dict[str, Any]:
        path = folder_report(result, kind)
        return {} if path is None else {"report": str(path)}

    return hook


def annotate_folder(*args: Any, report: bool = False, **kwargs: Any) -> FolderResult:
    """:func:`sam2elnet.engine.infer.annotate_folder`, plus ``OUT/report.html`` with ``report``.

    Args:
        *args: ``model_path, images, out_dir`` as for the engine function.
        report: also write ``OUT/report.html`` (:func:`folder_report`).
        **kwargs: the engine function's options.

    Returns:
        The engine's :class:`~sam2elnet.engine.infer.FolderResult`.
    """
    hook = _report_hook("annotate") if report else None
    return infer.annotate_folder(*args, on_finish=hook, **kwargs)


def enhance_folder(*args: Any, report: bool = False, **kwargs: Any) -> FolderResult:
    """:func:`sam2elnet.engine.infer.enhance_folder`, plus ``OUT/report.html`` with ``report``.

    Args:
        *args: ``model_path, images, labels, out_dir`` as for the engine function.
        report: also write ``OUT/report.html`` (:func:`folder_report`).
        **kwargs: the engine function's options.

    Returns:
        The engine's :class:`~sam2elnet.engine.infer.FolderResult`.
    """
    hook = _report_hook("enhance") if report else None
    return infer.enhance_folder(*args, on_finish=hook, **kwargs)
