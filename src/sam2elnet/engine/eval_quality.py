"""The quality tables an evaluation reads (``elnet evaluate``): how well the predicted label
quality of an ``annotate`` / ``enhance`` run tracks the true IoU needs the run's ``quality.csv``.

* :func:`quality_rows`: the ``quality.csv`` tables to read (given, the prediction folder's, or
  those of every run folder below it) and their rows keyed by
  :func:`~sam2elnet.data.naming.mask_key`;
* :func:`quality_filter`: the quality filter the runs' ``summary.json`` recorded;
* :func:`add_quality`: one row copied onto an evaluated image.

The files themselves are read by :mod:`sam2elnet.data.runfolder`; the masks and pairs by
:mod:`sam2elnet.engine.eval_inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.runfolder import QUALITY_CSV, label_quality_csv, quality_by_key, read_summary
from sam2elnet.errors import UserError

__all__ = ["add_quality", "quality_filter", "quality_rows"]


def quality_rows(
    quality_csv: str | Path | None, pdir: Path, runs: Sequence[Path]
) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """The quality tables to read (given, else the prediction folder's or those of every run
    folder found below it) and their rows keyed by
    :func:`~sam2elnet.data.naming.mask_key`."""
    if quality_csv is not None:
        paths = [Path(quality_csv)]
        if not paths[0].is_file():
            raise UserError("quality table does not exist; check the path", paths[0])
    else:
        found = label_quality_csv(pdir, strict=True)
        paths = [found] if found is not None else []
        if not paths:
            paths = [r / QUALITY_CSV for r in runs if (r / QUALITY_CSV).is_file()]
    rows: dict[str, dict[str, Any]] = {}
    for q in paths:
        for key, rec in quality_by_key(q).items():
            rows.setdefault(key, rec)
    return paths, rows


def quality_filter(paths: Sequence[Path]) -> dict[str, Any] | None:
    """What the evaluated run(s) recorded about their quality filter (summary.json ``filter``):
    threshold, target precision, tau, the held-out precision / recall estimated at training and
    whether the target was reachable there (``achievable``: False = a threshold above every
    calibration score, ``note`` says why; None for runs without a target)."""
    infos = []
    for q in paths:
        summary = read_summary(q.parent)
        if summary and isinstance(summary.get("filter"), dict):
            f = summary["filter"]
            tp = f.get("target_precision") if isinstance(f.get("target_precision"), dict) else {}
            infos.append(
                {
                    "run": str(q.parent),
                    "threshold": f.get("threshold"),
                    "min_quality": f.get("min_quality"),
                    "target_precision": tp.get("target_precision"),
                    "tau": tp.get("tau"),
                    "estimated_precision": tp.get("precision"),
                    "estimated_recall": tp.get("recall"),
                    "achievable": tp.get("achievable"),
                    "note": tp.get("note"),
                }
            )
    if not infos:
        return None
    out = dict(infos[0])
    if len(infos) > 1:
        out["runs"] = infos
    return out


def add_quality(res: Any, q: dict[str, Any] | None) -> None:
    """Copy a quality.csv row (:func:`quality_rows`) onto an evaluated image (``ImageResult``)."""
    if q is not None:
        res.predicted_iou = q["predicted_iou"]
        res.kept = q["kept"]
        res.image_path = q["image_path"]
        res.input_label_path = q["coarse_path"]
