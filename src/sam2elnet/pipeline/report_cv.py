"""``report.html`` of an ``elnet cv`` run, and the reports of each fold.

With ``elnet cv --report``:

* every fold gets the report of its training run (``folds/F/run/report.html``,
  :func:`sam2elnet.pipeline.report_train.write_train_report`) and one per test set of its
  predictions against the truth (``folds/F/pred-test/report.html``, ``pred-cross_domain`` in
  the cross-domain mode; :func:`sam2elnet.pipeline.report.write_evaluation_report`);
* ``OUT/report.html`` holds the run (data, mode, domain, folds done), the mean +- std over folds
  of every score per test set (as ``cv.md``), one row per fold, a plot of each fold's IoU, the
  two appearance groups of the cross-domain mode (``groups.png``), and every test image of
  every fold, worst first, with its truth. In k-fold mode each image of the dataset is tested
  exactly once, so the per-image table ranks the whole labelled set by how well a model trained
  without it labels it.

Fold reports already written are kept (a resumed run writes the missing ones only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.runfolder import REPORT_HTML
from sam2elnet.errors import UserError
from sam2elnet.option_values import road_buffer_units

__all__ = ["fold_iou_plot", "write_cv_report", "write_fold_reports"]

FOLD_REPORT_IMAGES = 16
"""Validation images shown in each fold's training report (the test images are all shown)."""


def write_fold_reports(
    root: str | Path,
    tests: Sequence[str],
    roads: bool,
    device: str = "cpu",
    evaluations: Sequence[Any] | None = None,
    road_buffer: float | None = None,
    road_buffer_m: float | None = None,
) -> list[Any]:
    """Write the missing reports of one fold folder ``root`` (``run/``, ``<test>/masks``,
    ``pred-<test>/``) and return the evaluation results of its test sets (in ``tests`` order).

    ``evaluations``: those results as the fold's scoring just made them (one per test set, in
    ``tests`` order); None (a fold reused from an earlier run) re-scores the predictions on disk
    (:func:`sam2elnet.engine.evaluate.evaluate_folders`, road measures with a ``road_buffer``
    px buffer, or ``road_buffer_m`` ground metres: one of them, or neither for
    :data:`~sam2elnet.option_values.ROAD_BUFFER_PX`).

    Raises:
        ValueError: ``evaluations`` does not hold one result per test set.
    """
    from sam2elnet.pipeline.report import write_evaluation_report
    from sam2elnet.pipeline.report_train import write_train_report

    fold = Path(root)
    run = fold / "run"
    if not (run / REPORT_HTML).is_file() and (run / "metrics.csv").is_file():
        # the fold's own training images, not the folder config.yaml names: a fold copied in
        # from another --out (elnet cv --fold) names the folder it was trained in
        data = fold / "train-data" if (fold / "train-data").is_dir() else None
        write_train_report(run, data=data, max_images=FOLD_REPORT_IMAGES, device=device)
    if evaluations is not None and len(evaluations) != len(tests):
        raise ValueError(f"{len(evaluations)} evaluations for {len(tests)} test sets")
    results = (
        list(evaluations)
        if evaluations is not None
        else _rescore(fold, tests, roads, road_buffer, road_buffer_m)
    )
    for name, ev in zip(tests, results, strict=True):
        page = fold / f"pred-{name}" / REPORT_HTML
        if not page.is_file():
            write_evaluation_report(ev, page, images=fold / name / "images", filter_possible=False)
    return results


def fold_iou_plot(folds: Sequence[Mapping[str, Any]]) -> Any:
    """Figure: each fold's IoU per test set (points) with the mean over folds (line); None
    without a scored fold."""
    from sam2elnet.pipeline.report_plots import new_figure

    names = list(dict.fromkeys(n for f in folds for n in f.get("tests", {})))
    if not names:
        return None
    fig = new_figure(6.0, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    labels = [str(f.get("fold", "?")) for f in folds]
    for name in names:
        ys = [_num((f.get("tests", {}).get(name) or {}).get("iou")) for f in folds]
        ax.plot(labels, ys, marker="o", linestyle="none", label=name.replace("_", "-"))
        finite = [y for y in ys if math.isfinite(y)]
        if finite:
            ax.axhline(sum(finite) / len(finite), linewidth=1, linestyle="--", alpha=0.6)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title("Test IoU per fold (dashed: mean over folds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and v is not None else math.nan


def _fold_rows(folds: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for f in folds:
        row: dict[str, Any] = {
            "fold": f.get("fold"),
            "n_train": f.get("n_train"),
            "n_val": f.get("n_val"),
            "best_epoch": f.get("best_epoch"),
            "val_iou_annotate": f.get("best_val_iou_annotate"),
        }
        for name, t in f.get("tests", {}).items():
            tag = "" if name == "test" else f"{name}_"
            row[f"{tag}n_images"] = t.get("n_images")
            for k in (*keys, "quality_spearman"):
                row[f"{tag}{k}"] = t.get(k)
        row["seconds"] = f.get("seconds")
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows


def write_cv_report(
    out: str | Path,
    report: Mapping[str, Any] | None = None,
    evaluations: Mapping[str, Sequence[Any]] | None = None,
    path: str | Path | None = None,
) -> Path:
    """Write ``out/report.html`` (or ``path``) for an ``elnet cv`` run and return its path.

    Args:
        out: The run's ``--out`` folder (``cv.json``, ``folds/``, ``groups.png``).
        report: The run record (``cv.json``'s content; read from ``out`` when None).
        evaluations: fold name -> evaluation results of its test sets (in the order of the
            fold's ``tests``), as :func:`write_fold_reports` returns them; None re-scores them
            from the predictions on disk without writing fold reports.
        path: Where to write the page (default ``out/report.html``).

    Raises:
        UserError: no ``cv.json`` in ``out`` (and ``report`` not given).
    """
    from sam2elnet.pipeline.crossval_report import GAPS, chosen_by, pm
    from sam2elnet.pipeline.report import evaluation_items, write_report

    run = Path(out)
    if report is None:
        record = run / "cv.json"
        if not record.is_file():
            raise UserError("no cv.json: is this an `elnet cv` output folder?", record)
        report = json.loads(record.read_text(encoding="utf-8"))
    folds = list(report.get("folds") or [])
    keys = list(report.get("keys") or ("iou", "f1"))
    roads = report.get("domain") == "roads"
    # cv.json of earlier versions wrote the default px next to the metres (saved=True)
    buffer, buffer_m = road_buffer_units(
        report.get("road_buffer"), report.get("road_buffer_m"), saved=True
    )
    items = []
    notes = [f"run folder: {run}"]
    for f in folds:
        name = str(f.get("fold"))
        tests = list(f.get("tests", {}))
        evs = (evaluations or {}).get(name)
        if evs is None:
            evs = _rescore(run / "folds" / name, tests, roads, buffer, buffer_m)
        for test, ev in zip(tests, evs, strict=True):
            where = run / "folds" / name / f"pred-{test}"
            for item in evaluation_items(ev, run / "folds" / name / test / "images"):
                item.extra = {"fold": name, "test set": test, **item.extra}
                if report.get("mode") != "kfold":  # an image is tested in several folds
                    item.name = f"{name}/{test}/{item.name}"
                items.append(item)
            if (where / REPORT_HTML).is_file():
                notes.append(f"{name}, {test} images: {where / REPORT_HTML}")
        train_page = run / "folds" / name / "run" / REPORT_HTML
        if train_page.is_file():
            notes.append(f"{name}, training: {train_page}")
    metrics: dict[str, Any] = {
        "run": {
            k: report.get(k)
            for k in ("data", "mode", "n_images", "domain", "seed", "folds_total", "folds_done")
            if report.get(k) is not None
        }
    }
    for test, s in (report.get("summary") or {}).items():
        if test in GAPS:
            gap = metrics.setdefault("cross-domain gap", {})
            gap[f"in-domain minus cross-domain {GAPS[test][1]}"] = pm(s)
            continue
        metrics[f"{test}: mean ± std over folds"] = {
            k: pm(v) for k, v in s.items() if isinstance(v, Mapping)
        }
    figures: dict[str, Any] = {}
    plot = fold_iou_plot(folds)
    if plot is not None:
        figures["Test IoU per fold"] = plot
    if (run / "groups.png").is_file():
        figures["The two appearance groups (groups.png)"] = (run / "groups.png").read_bytes()
    warnings = []
    if report.get("folds_done", 0) < report.get("folds_total", 0):
        warnings.append(
            f"only {report.get('folds_done')} of {report.get('folds_total')} folds ran "
            f"({chosen_by(report)}): the means are not a full cross-validation"
        )
    return write_report(
        path if path is not None else run / REPORT_HTML,
        items,
        title=f"sam2elnet cv: {run.name}",
        metrics=metrics,
        figures=figures,
        tables={"Folds": _fold_rows(folds, keys)},
        notes=notes,
        warnings=warnings,
        filter_applied=False,
        filter_possible=False,  # cv labels its test images without a quality filter
        max_items=200,
        next_steps=[f"Tables in Markdown: {run / 'cv.md'}; every number: {run / 'cv.json'}"],
    )


def _rescore(
    fold: Path,
    tests: Sequence[str],
    roads: bool,
    road_buffer: float | None,
    road_buffer_m: float | None,
) -> list[Any]:
    from sam2elnet.engine.evaluate import evaluate_folders

    return [
        evaluate_folders(
            fold / f"pred-{t}",
            fold / t / "masks",
            roads=roads,
            progress=False,
            road_buffer_px=road_buffer,
            road_buffer_m=road_buffer_m,
        )
        for t in tests
    ]
