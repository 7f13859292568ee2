"""``report.html`` of an ``elnet train`` run: learning curves, the best epoch, validation images.

What a user checks after training, on one offline page (the same template as the annotate /
evaluate reports, :func:`sam2elnet.pipeline.report.write_report`):

* the run (data, model size, weights, trunk, image size, images trained on / validated on /
  held out) and the epoch that was kept (``model.pt``) with the rule that chose it;
* learning curves from ``metrics.csv``: loss (training, validation) and IoU (training,
  validation annotation / enhancement, the simulated coarse labels' own IoU; road quality on
  road data) per epoch, the kept epoch marked; a run whose epochs were validated two ways
  (``metrics.csv``'s ``val_scale``: ``resized`` rows kept by a ``--resume`` across the change to
  ``native``) gets the change marked and a note that the two are not comparable;
* the quality evaluator's fit (samples, out-of-fold Spearman, status);
* up to ``max_images`` validation images predicted whole by ``model.pt`` in annotation mode
  (image only, as ``elnet annotate`` labels them), worst predicted IoU first, each with its
  truth, so the user sees where the model fails. These IoUs are of whole images at their own
  size; the ``val_iou*`` columns of ``metrics.csv`` are of each image's centred ``image_size``
  window at native scale (:mod:`sam2elnet.engine.train_val`), so the two differ somewhat; the
  note that says so names that scale only when every epoch was validated that way (older runs:
  images resized to the crop size; a run resumed across the change: see its own note);
* on road data, the buffer the validation road measures (``val_road_*``) were matched within,
  next to them in the kept epoch and in a note: px, or ground metres with each validation
  image's px range (:func:`val_road_buffer_said`).

The report is written after training (``elnet train --report``) or later for any finished run
folder (:func:`write_train_report`); the labelled data must still be where training read it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.runfolder import REPORT_HTML
from sam2elnet.errors import UserError

__all__ = [
    "DEFAULT_REPORT_IMAGES",
    "learning_curves",
    "next_steps",
    "read_history",
    "val_scale_spans",
    "write_train_report",
]

DEFAULT_REPORT_IMAGES = 32
"""Validation images predicted and shown by default (each costs one forward pass)."""

# metrics.csv columns drawn, with their legend names (engine.train_metrics.METRIC_FIELDS)
_LOSS_CURVES = (("train_loss", "training"), ("val_loss", "validation"))
_IOU_CURVES = (
    ("train_iou", "training"),
    ("val_iou_annotate", "validation, annotation"),
    ("val_iou_enhance", "validation, enhancement"),
    ("val_coarse_iou", "validation, coarse input"),
    ("val_road_quality", "validation, road quality"),
)
_RUN_KEYS = (
    "data", "size", "weights", "trunk", "image_size", "epochs", "fraction", "seed", "n_train",
    "n_val", "n_held_out", "domain", "topology_loss", "precision", "batch_size",
)  # fmt: skip


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a run's ``metrics.csv`` as floats (empty cells: NaN), but the ``val_scale`` text
    (``native`` / ``resized``, "" without validation;
    :data:`~sam2elnet.engine.train_metrics.VAL_SCALE`). A ``metrics.csv`` from before that column
    reads as before, with no ``val_scale``.

    Raises:
        UserError: the file is missing or has no rows.
    """
    from sam2elnet.engine.train_metrics import VAL_SCALE

    p = Path(path)
    if not p.is_file():
        raise UserError("no metrics.csv: is this an `elnet train` run folder?", p)
    with p.open(newline="", encoding="utf-8") as f:
        rows = [
            {k: (v or "") if k == VAL_SCALE else _number(v) for k, v in row.items() if k}
            for row in csv.DictReader(f)
        ]
    if not rows:
        raise UserError("metrics.csv has no epochs yet; wait for the first epoch to end", p)
    return rows


def val_scale_spans(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, int, int]]:
    """``(val_scale, first epoch, last epoch)`` of each run of epochs validated one way, in epoch
    order, rows without validation (or from before the column) left out: ``[("resized", 1, 2),
    ("native", 3, 5)]`` for a run resumed across the change to native-scale validation; more than
    one value means the ``val_*`` curves join scores that are not comparable."""
    from sam2elnet.engine.train_metrics import VAL_SCALE

    spans: list[tuple[str, int, int]] = []
    for i, row in enumerate(history):
        scale, epoch = str(row.get(VAL_SCALE) or ""), int(row.get("epoch", i + 1))
        if not scale:
            continue
        if spans and spans[-1][0] == scale:
            spans[-1] = (scale, spans[-1][1], epoch)
        else:
            spans.append((scale, epoch, epoch))
    return spans


def _scale_note(spans: Sequence[tuple[str, int, int]]) -> str | None:
    """The report's note on a run whose epochs were validated in more than one way."""
    if len({s for s, _, _ in spans}) < 2:
        return None
    from sam2elnet.engine.train_metrics import VAL_SCALE_WORDS as words

    parts = [
        f"epoch{'s' if a != b else ''} {a if a == b else f'{a}-{b}'} {words.get(s, s)}"
        for s, a, b in spans
    ]
    return (
        "validation changed during this run (a --resume across versions): "
        + ", ".join(parts)
        + "; their val_* scores are not comparable (metrics.csv's val_scale column; in the "
        "curves a dotted line marks each change)"
    )


def _validation_note(spans: Sequence[tuple[str, int, int]]) -> str:
    """The report's note on its validation images against ``metrics.csv``'s ``val_iou*``: how
    those were scored when every epoch was scored one known way (``spans`` from
    :func:`val_scale_spans`); for a run that mixes ways (:func:`_scale_note` says how) or a
    ``metrics.csv`` from before the ``val_scale`` column, no claim about the scale."""
    from sam2elnet.engine.train_metrics import OLD_VAL_MODE
    from sam2elnet.engine.train_val import VAL_EVAL_MODE

    how = {
        VAL_EVAL_MODE: "of each image's centred image_size window at native scale",
        OLD_VAL_MODE: "of each image resized to the crop size",
    }
    modes = {s for s, _, _ in spans}
    scored = how.get(next(iter(modes)), "") if len(modes) == 1 else ""
    return "validation images: predicted whole by model.pt in annotation mode (image only); " + (
        f"metrics.csv's val_iou* are {scored}, so they differ somewhat"
        if scored
        else "metrics.csv's val_iou* are of each image cut or resized to image_size, so they "
        "differ somewhat"
    )


def val_road_buffer_said(
    train: Mapping[str, Any], row: Mapping[str, Any], run: Path
) -> tuple[str, str] | None:
    """The buffer of a run's validation road measures (``val_road_*``), for the report:
    (short words for the kept epoch's table, :func:`~sam2elnet.engine.road_buffer.buffer_said`:
    ``"3 px"``, ``"2 m = 4 px"``, ``"2 m = 4-8 px by image"``; the page's note,
    :func:`~sam2elnet.pipeline.glossary.road_buffer_words`). From model.pt's
    ``train["val_road_buffer"]`` (px, or metres with each validation image's px range); a run
    from before that record: its ``config.yaml`` (px, or the metres alone). None when ``row``
    (the kept epoch of metrics.csv) has no road measure, or nothing records the buffer."""
    from sam2elnet.engine.road_buffer import buffer_said
    from sam2elnet.pipeline.glossary import road_buffer_words

    if not any(str(k).startswith("val_road_") and _shown(v) for k, v in row.items()):
        return None
    rec = dict(train.get("val_road_buffer") or {})
    if not rec and (run / "config.yaml").is_file():
        from sam2elnet.config import TrainConfig

        cfg = TrainConfig.load(run / "config.yaml")
        rec = {"road_buffer_px": cfg.road_buffer, "road_buffer_m": cfg.road_buffer_m}
    px, m, span = (rec.get(k) for k in ("road_buffer_px", "road_buffer_m", "road_buffer_px_range"))
    if px is None and m is None:
        return None
    unit = "px" if px is not None else "m"
    words = road_buffer_words(px, m, unit, None, span, subject="validation road measures")
    return buffer_said(px, m, span, by_image=True), words


def _shown(v: Any) -> bool:
    """A cell worth showing: a finite number or non-empty text (``val_scale``)."""
    return bool(v) if isinstance(v, str) else math.isfinite(v)


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def learning_curves(history: Sequence[Mapping[str, Any]], best_epoch: int | None) -> Any:
    """Figure with two panels, loss and IoU per epoch, the kept epoch as a dashed line; columns
    without a finite value (e.g. no validation split, no road measures) are left out. A run
    validated in more than one way (:func:`val_scale_spans`) gets a dotted line between the last
    epoch of one way and the first of the next, labelled ``validation resized -> native``."""
    from sam2elnet.pipeline.report_plots import new_figure

    fig = new_figure(10.0, 3.6)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    for k, (title, curves) in enumerate((("loss", _LOSS_CURVES), ("IoU", _IOU_CURVES))):
        ax = fig.add_subplot(1, 2, k + 1)
        for key, name in curves:
            ys = [r.get(key, math.nan) for r in history]
            if any(math.isfinite(y) for y in ys):
                ax.plot(epochs, ys, marker="o", markersize=3, label=name)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label="kept epoch")
        spans = val_scale_spans(history)
        if len({s for s, _, _ in spans}) > 1:  # validation changed: not comparable across
            for prev, (scale, first, _) in zip(spans, spans[1:], strict=False):
                label = f"validation {prev[0]} -> {scale}"
                ax.axvline(first - 0.5, color="black", linestyle=":", linewidth=1, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        if title == "IoU":
            ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _validation_items(
    run: Path, predictor: Any, data: Path | None, max_images: int
) -> tuple[list[Any], list[str]]:
    """ReportItems of up to ``max_images`` validation images (sorted by id), and notes."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.data.datasets import SegmentationDataset
    from sam2elnet.data.layouts import discover
    from sam2elnet.pipeline.report_items import ReportItem

    notes: list[str] = []
    splits_file, cfg_file = run / "splits.json", run / "config.yaml"
    if max_images <= 0 or not splits_file.is_file() or not cfg_file.is_file():
        return [], notes
    splits = json.loads(splits_file.read_text(encoding="utf-8"))
    val_ids = sorted(splits.get("val") or [])
    if not val_ids:
        return [], ["no validation split: no validation images to show"]
    cfg = TrainConfig.load(cfg_file)
    root = Path(data) if data is not None else Path(str(cfg.data))
    if not root.exists():
        return [], [f"validation images not shown: the data folder {root} is gone (pass data=)"]
    index = discover(
        root,
        layout=cfg.layout,
        split=splits.get("dataset_splits") or None,
        report_unmatched=False,
    )
    by_id = {s.id: s for s in index.samples if s.mask is not None}
    chosen = [by_id[i] for i in val_ids if i in by_id][:max_images]
    if len(val_ids) > len(chosen):
        notes.append(f"{len(chosen)} of {len(val_ids)} validation images shown (sorted by id)")
    positive = tuple(cfg.positive_values) if cfg.positive_values else None
    ds = SegmentationDataset(
        chosen, predictor.normalization, train=False, bands=predictor.in_bands,
        positive_values=positive,
    )  # fmt: skip
    loaded = [ds.load(i)[:3] for i in range(len(chosen))]  # (image, truth, valid) each
    # one call: Predictor.predict batches images of equal size
    probs, q = predictor.predict([x for x, _, _ in loaded], valid=[v for _, _, v in loaded])
    items = [
        ReportItem(
            name=s.id,
            image=s.image,
            output=(prob > 0.5) & valid,
            truth=truth & valid,
            probability=prob,
            predicted_iou=float(q.predicted_iou[i]) if predictor.evaluator.fitted else None,
            extra={"sensor": s.sensor} if s.sensor else {},
        )
        for i, (s, (_, truth, valid), prob) in enumerate(zip(chosen, loaded, probs, strict=True))
    ]
    return items, notes


def write_train_report(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    max_images: int = DEFAULT_REPORT_IMAGES,
    path: str | Path | None = None,
    device: str = "cpu",
) -> Path:
    """Write ``run_dir/report.html`` (or ``path``) for a training run and return its path.

    Args:
        run_dir: An ``elnet train`` output folder (``metrics.csv``, ``model.pt``, ``splits.json``,
            ``config.yaml``).
        data: The labelled data folder, when it moved since training (default: the one recorded
            in ``config.yaml``).
        max_images: Validation images to predict and show (0: curves and tables only).
        path: Where to write the page (default ``run_dir/report.html``).
        device: ``cpu``, ``cuda`` or ``cuda:N`` for the validation predictions.

    Raises:
        UserError: no ``metrics.csv`` (or no epoch in it) or no ``model.pt`` in ``run_dir``.
        CheckpointError: ``model.pt`` cannot be read.
    """
    from sam2elnet.engine.predictor import UNFITTED_EVALUATOR, Predictor
    from sam2elnet.engine.train_metrics import VAL_SCALE
    from sam2elnet.pipeline.report import write_report
    from sam2elnet.utils.run_warnings import hidden

    run = Path(run_dir)
    history = read_history(run / "metrics.csv")
    model_file = run / "model.pt"
    if not model_file.is_file():
        raise UserError("no model.pt: the run has not finished an epoch", model_file)
    with hidden(UNFITTED_EVALUATOR):  # the report shows the evaluator's status itself
        predictor = Predictor.from_file(model_file, device=device)
    train = dict(predictor.extra.get("train") or {})
    best = train.get("best_epoch")
    best_row = next((r for r in history if r.get("epoch") == best), history[-1])
    selection = train.get("selection") or {}
    metrics: dict[str, Any] = {
        "run": {k: train[k] for k in _RUN_KEYS if train.get(k) not in (None, "")},
        "kept epoch (model.pt)": {
            "epoch": best,
            "chosen by": selection.get("rule", ""),
            **{k: v for k, v in best_row.items() if k != "epoch" and _shown(v)},
        },
    }
    roads = val_road_buffer_said(train, best_row, run)  # what val_road_* were matched within
    if roads is not None:
        metrics["kept epoch (model.pt)"]["road buffer"] = roads[0]
    quality = predictor.extra.get("quality_summary") or {}
    scalars = {k: v for k, v in quality.items() if isinstance(v, (int, float, str, bool))}
    if scalars:
        metrics["quality evaluator"] = scalars
    items, notes = _validation_items(run, predictor, Path(data) if data else None, max_images)
    # the learning rate falls to 1e-5 or so; val_scale is text
    shown = {"epoch": int, "lr": lambda v: f"{v:.2e}", VAL_SCALE: str}
    table = [{k: shown.get(k, float)(v) for k, v in r.items() if _shown(v)} for r in history]
    spans = val_scale_spans(history)
    scale_note = _scale_note(spans)
    return write_report(
        path if path is not None else run / REPORT_HTML,
        items,
        title=f"sam2elnet train: {run.name}",
        metrics=metrics,
        figures={"Learning curves (metrics.csv)": learning_curves(history, best)},
        tables={"Epochs (metrics.csv)": table},
        notes=[
            f"run folder: {run}",
            _validation_note(spans),
            "the quality evaluator was fitted on these validation images (out of fold): its "
            "predicted-vs-true plot here is a check of the fit, not an independent test",
            *([scale_note] if scale_note else []),
            *([roads[1]] if roads is not None else []),
            *notes,
        ],
        filter_applied=False,
        next_steps=next_steps(model_file),
    )


def next_steps(model_file: Path) -> list[str]:
    """The training report's "Next steps": the ``elnet annotate`` / ``elnet enhance`` commands
    that use ``model_file`` (coarse labels go to ``enhance --labels``, as in README.md)."""
    return [
        f"Label new images: elnet annotate --model {model_file} --images DIR --out OUT --report",
        f"Refine coarse labels: elnet enhance --model {model_file} --images DIR --labels "
        "LABELS --out OUT --report",
    ]
