"""The report page: :class:`ReportItem` objects and metric dicts -> the HTML of ``report.html``.

This module reads the items' masks and images, derives the per-image facts (true / input IoU,
object counts, empty-truth flags, status), builds the template context (tables with readable
names, glossary, plots, footprint map, cards) and renders ``templates/report.html.j2`` with
jinja2 (autoescaped). :mod:`sam2elnet.pipeline.report_figures` draws the pictures;
:mod:`sam2elnet.pipeline.report` writes the file and builds the reports of runs, evaluations and
the protocol.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.pipeline import report_figures as figs
from sam2elnet.pipeline.glossary import GLOSSARY, definition
from sam2elnet.pipeline.glossary import label as key_label
from sam2elnet.pipeline.report_figures import COLORS, Footprint, display_rgb

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TAU", "ReportItem", "as_float", "object_counts", "render_report"]

#: Default "good label" IoU of the quality filter curves (the evaluator's default tau).
DEFAULT_TAU = 0.7


@dataclass
class ReportItem:
    """One image of the report.

    ``image`` is a (C, H, W) or (H, W) array (any dtype; SAR is fine, it is percentile-stretched)
    or a path to an image file. ``input_label`` (coarse / given label), ``output`` (the label under
    review) and ``truth`` are (H, W) masks (bool or 0/1, or a path); ``probability`` is an (H, W)
    probability map in [0, 1] (or uint8 0-255, or a path); any of them may be None.
    ``predicted_iou`` is the quality evaluator's estimate, ``true_iou`` the IoU of ``output`` (or of
    ``input_label`` if no output) against ``truth`` and ``input_iou`` that of ``input_label``; both
    are computed from the masks when not given. ``kept`` is the filter decision (None: no
    decision). ``footprint`` places the image on the map (read from a georeferenced ``image`` path
    when not given). ``extra`` is shown as small key/value lines on the card.
    """

    name: str
    image: np.ndarray | str | Path | None = None
    input_label: np.ndarray | str | Path | None = None
    output: np.ndarray | str | Path | None = None
    truth: np.ndarray | str | Path | None = None
    predicted_iou: float | None = None
    true_iou: float | None = None
    kept: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    probability: np.ndarray | str | Path | None = None
    input_iou: float | None = None
    footprint: Footprint | None = None


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def as_float(v: Any) -> float | None:
    """``v`` as a finite float, or None (None, bools, NaN, inf, text that is not a number)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if v is not None and not isinstance(v, bool) and math.isfinite(f) else None


def _finite(v: Any) -> bool:
    return as_float(v) is not None


def _num(v: Any) -> float | None:
    return as_float(v)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4f}" if math.isfinite(float(v)) else "—"
    return str(v)


def _is_num(v: Any) -> bool:
    return v is None or (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    )


def _load_mask(m: np.ndarray | str | Path | None) -> np.ndarray | None:
    if m is None:
        return None
    if isinstance(m, (str, Path)):
        from sam2elnet.data.masks import read_mask

        return np.asarray(read_mask(m), dtype=bool)
    a = np.asarray(m)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    return a > 0.5 if np.issubdtype(a.dtype, np.floating) else a != 0


def _load_prob(p: np.ndarray | str | Path | None) -> np.ndarray | None:
    if p is None:
        return None
    if isinstance(p, (str, Path)):
        from sam2elnet.data.images import read_image

        return np.asarray(read_image(p).data)[0]
    return np.asarray(p)


def _truth_valid(t: np.ndarray | str | Path | None) -> np.ndarray | None:
    """Valid-pixel mask of a truth file (False where it says "ignore"), None when all count."""
    if not isinstance(t, (str, Path)):
        return None
    from sam2elnet.data.masks import read_mask_valid

    return read_mask_valid(t)[1]


def _iou(a: np.ndarray | None, b: np.ndarray | None, valid: np.ndarray | None) -> float | None:
    if a is None or b is None or a.shape != b.shape:
        return None
    from sam2elnet.engine.metrics import confusion, scores

    if valid is not None and valid.shape != a.shape:
        valid = None
    return _num(scores(confusion(a, b, valid=valid))["iou"])


def object_counts(label: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(true objects, missed objects, extra objects) of a label against its truth.

    Objects are 8-connected components (``scipy.ndimage.label``). A true object is missed when no
    label pixel touches it; a label object is extra when it touches no true pixel (the
    object-level counts of CVAT's quality report, without an IoU match threshold).
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    lab_t, n_t = ndimage.label(truth, structure=eight)
    lab_p, n_p = ndimage.label(label, structure=eight)
    both = label & truth
    hit_t = np.unique(lab_t[both])
    hit_p = np.unique(lab_p[both])
    return int(n_t), int(n_t - np.count_nonzero(hit_t)), int(n_p - np.count_nonzero(hit_p))


def _path_of(v: Any) -> str | None:
    return str(v) if isinstance(v, (str, Path)) else None


def _file_uri(p: str) -> str:
    try:
        return Path(p).resolve().as_uri()
    except ValueError:
        return p


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def _cell(v: Any) -> dict[str, Any]:
    return {"text": _fmt(v), "num": _is_num(v) and v is not None, "sort": _num(v)}


def _kv_table(title: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "key": str(k),
            "label": key_label(str(k)),
            "definition": definition(str(k)),
            **_cell(v),
            "long": isinstance(v, str) and len(v) > 60,
        }
        for k, v in data.items()
        if not isinstance(v, (Mapping, list, tuple))
    ]
    return {"kind": "kv", "title": title, "rows": rows}


def _rows_table(
    title: str | None,
    rows: Sequence[Mapping[str, Any]],
    row_flags: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    cols: list[str] = []
    for r in rows:
        cols.extend(str(k) for k in r if str(k) not in cols)
    columns = [
        {
            "key": c,
            "label": key_label(c),
            "definition": definition(c),
            "num": all(_is_num(r.get(c)) for r in rows),
        }
        for c in cols
    ]
    body = []
    for k, r in enumerate(rows):
        flag = row_flags[k] if row_flags else None
        body.append({"cells": [_cell(r.get(c)) for c in cols], "flag": flag})
    return {"kind": "rows", "title": title, "columns": columns, "rows": body}


def _tables(title: str | None, table: Any) -> list[dict[str, Any]]:
    """A dict -> key/value table (+ one per nested dict / list of dicts); a list of dicts -> rows."""
    if isinstance(table, Mapping):
        scalars = {k: v for k, v in table.items() if not isinstance(v, (Mapping, list, tuple))}
        out = [_kv_table(title, scalars)] if scalars else []
        for k, v in table.items():
            if isinstance(v, Mapping):
                out.extend(_tables(f"{title}: {key_label(str(k))}" if title else str(k), v))
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
                out.append(_rows_table(str(k), v))
        return out
    if isinstance(table, (list, tuple)):
        return [_rows_table(title, table)]
    return [{"kind": "text", "title": title, "text": str(table)}]


def _used_keys(tables: Sequence[Mapping[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for t in tables:
        if t["kind"] == "kv":
            keys.update(r["key"] for r in t["rows"])
        elif t["kind"] == "rows":
            keys.update(c["key"] for c in t["columns"])
    return keys


# --------------------------------------------------------------------------------------------
# items
# --------------------------------------------------------------------------------------------


def _status(item: ReportItem, filtered: bool) -> str | None:
    if item.kept is None:
        return None
    if not filtered:
        return "unfiltered"
    return "kept" if item.kept else "rejected"


def _prepare(item: ReportItem, idx: int, filtered: bool) -> dict[str, Any]:
    """Table row of one item (masks read, IoUs and flags derived); image pixels not touched."""
    errors: list[str] = []

    def load(kind: str, value: Any) -> np.ndarray | None:
        try:
            return _load_mask(value)
        except DataError as err:  # one unreadable file must not cost the whole report
            log.warning("report: %s", err)
            errors.append(f"{kind}: {err}")
            return None

    inp, out, tru = load("input label", item.input_label), load("label", item.output), None
    tru = load("truth", item.truth)
    label = out if out is not None else inp
    valid = None
    if tru is not None and (item.true_iou is None or item.input_iou is None):
        try:  # pixels the truth marks "ignore" are not scored (as in elnet evaluate)
            valid = _truth_valid(item.truth)
        except DataError:
            valid = None
    true_iou = _num(item.true_iou)
    if true_iou is None:
        true_iou = _iou(label, tru, valid)
    input_iou = _num(item.input_iou)
    if input_iou is None and out is not None:
        input_iou = _iou(inp, tru, valid)
    flag = None
    objects = None
    if tru is not None and label is not None and label.shape == tru.shape:
        objects = object_counts(label, tru)
        if not tru.any():
            flag = "false alarm" if label.any() else "correct empty"
        elif not label.any():
            flag = "missed"
    paths = {
        k: p
        for k, p in (
            ("label", _path_of(item.output)),
            ("image", _path_of(item.image)),
            ("input label", _path_of(item.input_label)),
            ("truth", _path_of(item.truth)),
            ("probability", _path_of(item.probability)),
        )
        if p
    }
    fp = item.footprint
    if fp is None and isinstance(item.image, (str, Path)):
        fp = figs.read_footprint(item.image)
    return {
        "idx": idx,
        "name": item.name,
        "status": _status(item, filtered),
        "predicted": _num(item.predicted_iou),
        "true": true_iou,
        "input": input_iou if out is not None and inp is not None else None,
        "gain": (true_iou - input_iou)
        if (true_iou is not None and input_iou is not None and out is not None)
        else None,
        "area_px": int(label.sum()) if label is not None else None,
        "area_frac": float(label.mean()) if label is not None and label.size else None,
        "truth_px": int(tru.sum()) if tru is not None else None,
        "objects": objects[0] if objects else None,
        "missed": objects[1] if objects else None,
        "extra_objects": objects[2] if objects else None,
        "flag": flag,
        "paths": [{"kind": k, "path": p, "uri": _file_uri(p)} for k, p in paths.items()],
        "errors": errors,
        "extra": [(key_label(str(k)), _fmt(v)) for k, v in item.extra.items()],
        "footprint": fp,
    }


def _try_mask(value: Any) -> np.ndarray | None:
    try:
        return _load_mask(value)
    except DataError:  # already named on the item by _prepare
        return None


def _card(
    view: dict[str, Any], item: ReportItem, thumb_px: int, full_px: int, styles: list
) -> None:
    """Add the picture layers of a shown item to ``view`` (image embedded once as a CSS class)."""
    inp, out, tru = (
        _try_mask(item.input_label),
        _try_mask(item.output),
        _try_mask(item.truth),
    )
    rgb = None
    if item.image is not None:
        try:
            rgb = display_rgb(item.image)
        except (DataError, ValueError) as err:
            log.warning("report: %s", err)
            view["errors"].append(f"image: {err}")
    shapes = [a.shape[:2] for a in (inp, out, tru) if a is not None]
    native = rgb.shape[:2] if rgb is not None else (shapes[0] if shapes else (thumb_px, thumb_px))
    fh, fw = figs.fit_shape(native, full_px)
    th, tw = figs.fit_shape(native, thumb_px)
    # tiny chips (e.g. 64 px) are drawn up to twice as large, pixels kept sharp
    up = min(2.0, thumb_px / max(th, tw))
    if up > 1.0:
        th, tw = round(th * up), round(tw * up)
    cls = f"im{view['idx']}"
    if rgb is not None:
        styles.append((cls, figs.image_data_uri(figs.resize_rgb(rgb, (fh, fw)))))
    width = max(1, round(max(fh, fw) / max(th, tw)))  # outline still visible on the card
    small = {
        k: (figs.resize_mask(m, (fh, fw)) if m is not None else None)
        for k, m in (("input", inp), ("output", out), ("truth", tru))
    }
    layers = []
    if small["input"] is not None:
        layers.append(
            ("input", "input label", figs.mask_layer(small["input"], COLORS["input"], width))
        )
    if small["output"] is not None:
        layers.append(
            ("output", "label", figs.mask_layer(small["output"], COLORS["output"], width))
        )
    if small["truth"] is not None:
        layers.append(
            ("truth", "ground truth", figs.mask_layer(small["truth"], COLORS["truth"], width))
        )
    cmp_ = small["output"] if small["output"] is not None else small["input"]
    if small["truth"] is not None and cmp_ is not None:
        cap = "errors" if small["output"] is not None else "label errors"
        layers.append(("errors", cap, figs.error_layer(cmp_, small["truth"])))
    prob = None
    if item.probability is not None:
        try:
            prob = figs.probability_layer(_load_prob(item.probability), (fh, fw))
        except (DataError, ValueError) as err:
            log.warning("report: %s", err)
            view["errors"].append(f"probability: {err}")
    view["card"] = {
        "cls": cls,
        "has_image": rgb is not None,
        "tw": tw,
        "th": th,
        "fw": fw,
        "fh": fh,
        "native": f"{native[1]} × {native[0]} px",
        "pixelated": up > 1.0,
        "layers": [
            {"key": k, "caption": c, "src": figs.png_data_uri(a, palette=True)}
            for k, c, a in layers
        ],
        "prob": figs.png_data_uri(prob) if prob is not None else None,
    }


def _order(views: list[dict[str, Any]], order: str) -> tuple[list[dict[str, Any]], str]:
    """Sort by predicted IoU (else true IoU, else name); items without a score go last."""
    if order not in ("worst", "best", "name"):
        raise ValueError("order must be 'worst', 'best' or 'name'")
    if order == "name":
        return sorted(views, key=lambda v: v["name"]), "by name"
    attr = "predicted" if any(v["predicted"] is not None for v in views) else "true"
    if not any(v[attr] is not None for v in views):
        return sorted(views, key=lambda v: v["name"]), "by name (no quality scores given)"
    sign = 1.0 if order == "worst" else -1.0
    scored = sorted(
        (v for v in views if v[attr] is not None), key=lambda v: (sign * v[attr], v["name"])
    )
    rest = sorted((v for v in views if v[attr] is None), key=lambda v: v["name"])
    what = "predicted IoU" if attr == "predicted" else "true IoU"
    return scored + rest, f"by {what}, {'worst' if order == 'worst' else 'best'} first"


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sam2elnet.pipeline", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    env.filters["fmt3"] = lambda v: "—" if v is None else f"{float(v):.3f}"
    return env


def _figures(figures: Sequence[Any] | Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    if isinstance(figures, Mapping):
        return [(str(k), v) for k, v in figures.items()]
    return [("", f) for f in (figures or [])]


def render_report(
    items: Sequence[ReportItem],
    *,
    title: str,
    metrics: Mapping[str, Any] | None = None,
    quality_threshold: float | None = None,
    notes: str | Sequence[str] | None = None,
    max_items: int = 200,
    order: str = "worst",
    figures: Sequence[Any] | Mapping[str, Any] | None = None,
    tables: Mapping[str, Any] | None = None,
    thumb_px: int = 160,
    full_px: int = 512,
    filter_applied: bool | None = None,
    tau: float | None = None,
    target_precision: float | None = None,
    warnings: Sequence[str] = (),
    table_flags: Mapping[str, Sequence[str | None]] | None = None,
    next_steps: Sequence[str] = (),
) -> str:
    """The report as an HTML string (arguments: :func:`sam2elnet.pipeline.report.write_report`)."""
    items = list(items)
    if filter_applied is None:
        filter_applied = _finite(quality_threshold) or any(i.kept is False for i in items)
    views = [_prepare(it, k, filter_applied) for k, it in enumerate(items)]
    ordered, order_text = _order(views, order)
    shown = ordered[: max(0, max_items)]
    styles: list[tuple[str, str]] = []
    for v in shown:
        _card(v, items[v["idx"]], thumb_px, full_px, styles)
    for v in views:
        v.setdefault("card", None)

    statuses = [v["status"] for v in views]
    n_kept, n_rej = statuses.count("kept"), statuses.count("rejected")
    empty = [v for v in views if v["flag"] in ("false alarm", "correct empty")]
    alarms = [v for v in views if v["flag"] == "false alarm"]
    summary: dict[str, Any] = {"items": len(items)}
    if filter_applied:
        summary["kept"], summary["rejected"] = n_kept, n_rej
    if _finite(quality_threshold):
        summary["threshold"] = float(quality_threshold)  # type: ignore[arg-type]
    q = [v["predicted"] for v in views if v["predicted"] is not None]
    if q:
        summary["mean_predicted_iou"] = float(np.mean(q))
    t = [v["true"] for v in views if v["true"] is not None]
    if t:
        summary["mean_image_iou"] = float(np.mean(t))
    if empty:
        summary["empty_truth"] = len(empty)
        summary["false_alarms"] = len(alarms)
    counted = [v for v in views if v["objects"] is not None]
    if counted:
        summary["true_objects"] = sum(v["objects"] for v in counted)
        summary["missed_objects"] = sum(v["missed"] for v in counted)
        summary["extra_objects"] = sum(v["extra_objects"] for v in counted)

    page_warnings = list(warnings)
    if not filter_applied and any(s == "unfiltered" for s in statuses):
        page_warnings.append(
            "No quality filter ran (no --min-quality / --target-precision): every label was kept "
            "as it is. Status 'unfiltered' means no decision was made; sort the table by predicted "
            "IoU to find the labels to review first."
        )
    info: list[str] = []
    if alarms:
        info.append(
            f"{len(alarms)} of {len(empty)} image(s) with empty ground truth got a non-empty "
            "label: false alarms. Their IoU is 0 by definition (nothing to overlap), which pulls mean "
            "IoUs down; they are marked 'false alarm' in the table and as orange crosses in the "
            "scatter plot."
        )

    tbls = _tables("summary", summary)
    for k, v in (metrics or {}).items():
        if isinstance(v, (Mapping, list, tuple)):
            tbls += _tables(str(k), v)
    scalars = {
        k: v for k, v in (metrics or {}).items() if not isinstance(v, (Mapping, list, tuple))
    }
    if scalars:
        tbls.insert(1, _kv_table("metrics", scalars))
    caller_tables: list[dict[str, Any]] = []
    for k, v in (tables or {}).items():
        flags = (table_flags or {}).get(str(k))
        if isinstance(v, (list, tuple)) and flags is not None:
            caller_tables.append(_rows_table(str(k), v, flags))
        else:
            caller_tables.extend(_tables(str(k), v))

    # plots
    plots: list[dict[str, str]] = []
    fig = figs.quality_histogram([v["predicted"] for v in views], [v["true"] for v in views],
                                 _num(quality_threshold))  # fmt: skip
    if fig is not None:
        plots.append({"caption": "", "src": figs.figure_data_uri(fig)})
    both = [v for v in views if v["predicted"] is not None and v["true"] is not None]
    if len(both) >= 2:
        fig = figs.quality_scatter(
            [v["predicted"] for v in both],
            [v["true"] for v in both],
            [v["status"] or "not filtered" for v in both],
            [v["flag"] == "false alarm" for v in both],
            _num(quality_threshold),
        )
        plots.append({"caption": "", "src": figs.figure_data_uri(fig)})
    used_tau = float(tau) if _finite(tau) else DEFAULT_TAU
    # the filter's own labels (those with a decision) when there are any, else every label
    judged = [v for v in both if v["status"] is not None] or both
    if len(judged) >= 3:
        curves = figs.filter_curves(
            [v["predicted"] for v in judged], [v["true"] for v in judged], used_tau
        )
        if curves.n_good:
            fig = figs.threshold_curves(curves, _num(quality_threshold), _num(target_precision))
            plots.append(
                {
                    "caption": "Quality filter: precision and recall of 'keep labels with "
                    f"predicted IoU >= t' on the {len(judged)} labels with known truth (good "
                    f"label: true IoU >= {used_tau:.2f}).",
                    "src": figs.figure_data_uri(fig),
                }
            )
        else:
            info.append(
                f"No quality-filter curves: none of the {len(judged)} labels with known truth "
                f"reaches the good-label IoU τ = {used_tau:.2f}, so every threshold has "
                "precision 0."
            )
    for cap, f in _figures(figures):
        plots.append({"caption": cap, "src": figs.figure_data_uri(f)})

    geo = figs.footprint_map([v["footprint"] for v in views], [v["predicted"] for v in views])
    for v in views:
        v.pop("footprint", None)
    for box in (geo or {}).get("boxes", []):
        box["name"], box["true"] = views[box["index"]]["name"], views[box["index"]]["true"]
    cardw = max(
        [(1 + len(v["card"]["layers"])) * (v["card"]["tw"] + 6) + 18 for v in shown] or [300]
    )

    glossary_keys = _used_keys(tbls + caller_tables) | {"predicted_iou", "true_iou"}
    if any(v["input"] is not None for v in views):
        glossary_keys.add("input_iou")
    if empty:
        glossary_keys |= {"false_alarms"}
    glossary = sorted(
        (
            {"key": k, "label": GLOSSARY[k][0], "definition": GLOSSARY[k][1]}
            for k in glossary_keys
            if k in GLOSSARY
        ),
        key=lambda g: g["label"].lower(),
    )
    note_list = [notes] if isinstance(notes, str) else list(notes or [])
    from sam2elnet import __version__

    ctx = {
        "title": title,
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "warnings": page_warnings,
        "info": info,
        "notes": note_list,
        "tables": tbls,
        "caller_tables": caller_tables,
        "plots": plots,
        "geo": geo,
        "items": ordered,
        "shown": shown,
        "n_items": len(items),
        "order_text": order_text,
        "styles": styles,
        "cardw": cardw,
        "glossary": glossary,
        "colors": {k: "rgb({},{},{})".format(*c) for k, c in COLORS.items()},
        "has_input": any(v["input"] is not None for v in views),
        "has_true": any(v["true"] is not None for v in views),
        "has_truth": any(v["truth_px"] is not None for v in views),
        "has_objects": bool(counted),
        "has_status": any(v["status"] is not None for v in views),
        "has_flags": any(v["flag"] for v in views),
        "filter_applied": filter_applied,
        "next_steps": list(next_steps),
    }
    return _environment().get_template("report.html.j2").render(**ctx)
