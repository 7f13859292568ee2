"""Self-contained HTML report: image / label / output / ground-truth overlays, quality, metrics.

One ``report.html`` file carries everything (thumbnails as base64 PNG data URIs, inline CSS, no
JavaScript, no external links), so it can be mailed, attached to an issue or opened offline.

Size is kept down on purpose: each item's image is embedded *once* (as a CSS background shared by
all of that item's panels) and the label overlays are small transparent palette PNGs stacked on
top of it. Thumbnails are at most ``thumb_px`` (160) pixels on their long side, and the image is
quantised (32 grey levels / 64 colours), so a 200-item report stays a few MB.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError

log = logging.getLogger(__name__)

__all__ = [
    "ReportItem",
    "write_report",
    "write_run_report",
    "render_report",
    "overlay_rgb",
    "display_rgb",
    "COLORS",
]

#: Overlay colours (RGB) used throughout the report; exported so other figures can match them.
COLORS: dict[str, tuple[int, int, int]] = {
    "input": (255, 200, 0),  # amber: the label given to the model (coarse / original)
    "output": (0, 200, 255),  # cyan: the model's mask
    "truth": (60, 220, 60),  # green: ground truth
    "fp": (255, 40, 40),  # red: output but not truth
    "fn": (40, 90, 255),  # blue: truth but not output
}


@dataclass
class ReportItem:
    """One image of the report.

    ``image`` is (C, H, W) or (H, W) array (any dtype; SAR is fine, it is percentile-stretched) or a
    path to an image file. ``input_label`` / ``output`` / ``truth`` are (H, W) masks (bool or 0/1,
    or a path); any of them may be None. ``predicted_iou`` is the model's quality estimate,
    ``true_iou`` the IoU of ``output`` (or of ``input_label`` if no output) against ``truth`` when
    known, ``kept`` the accept/reject decision. ``extra`` is shown as small key/value lines.
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


# --------------------------------------------------------------------------------------------
# image helpers
# --------------------------------------------------------------------------------------------


def _read_image_file(path: Path) -> np.ndarray:
    """(C, H, W) array from an image file: data layer reader if present, else rasterio / PIL."""
    try:
        from sam2elnet.data.raster import read_image  # type: ignore[attr-defined]

        img = read_image(path)
        if img.nodata is None:
            return np.asarray(img.data)
        data = img.data.astype(np.float32)  # nodata -> NaN: out of every display stretch
        data[:, img.nodata] = np.nan
        return data
    except ImportError:
        pass
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import rasterio

            with rasterio.open(path) as src:
                return src.read()
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB") if im.mode in ("P", "CMYK", "YCbCr") else im)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"cannot read image for the report ({err})", path) from err
    if arr.ndim == 3:
        arr = np.moveaxis(arr, -1, 0)
    return arr


def _to_chw(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise ValueError(f"image must be (C,H,W) or (H,W), got shape {a.shape}")
    if a.shape[0] > 4 and a.shape[-1] <= 4:  # (H, W, C) from PIL: be lenient
        a = np.moveaxis(a, -1, 0)
    return a


def display_rgb(image: np.ndarray | str | Path, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """uint8 (H, W, 3) for display.

    1- or 2-band images (SAR) show the first band in grey with a ``low``..``high`` percentile
    stretch (SAR amplitudes are heavy-tailed; a min/max stretch would show black). 3+ band images
    show the first three bands; uint8 RGB is shown as is, anything else gets one joint percentile
    stretch so colour balance is kept. RGBA alpha is dropped. NaNs show black.
    """
    if isinstance(image, (str, Path)):
        image = _read_image_file(Path(image))
    a = _to_chw(image)
    if a.shape[0] == 4 and a.dtype == np.uint8:
        a = a[:3]
    if a.shape[0] >= 3:
        a = a[:3]
        if a.dtype == np.uint8:
            return np.ascontiguousarray(np.moveaxis(a, 0, -1))
    else:
        a = a[:1]
    f = a.astype(np.float32)
    fin = np.isfinite(f)
    if not fin.any():
        return np.zeros((*a.shape[1:], 3), dtype=np.uint8)
    lo, hi = np.percentile(f[fin], [low, high])
    if hi <= lo:
        lo, hi = float(f[fin].min()), float(f[fin].max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.clip((np.where(fin, f, lo) - lo) * scale, 0, 255).astype(np.uint8)
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def _edge(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Inner outline of a mask, ``width`` pixels thick (frame does not count as background)."""
    from scipy import ndimage

    if not mask.any():
        return mask.copy()
    er = ndimage.binary_erosion(mask, iterations=width, border_value=1)
    return mask & ~er


def overlay_rgb(
    image: np.ndarray | str | Path,
    mask: np.ndarray | None,
    color: tuple[int, int, int] = (0, 200, 255),
    alpha: float = 0.35,
    outline: bool = True,
) -> np.ndarray:
    """Image with ``mask`` drawn on it: a semi-transparent fill (``alpha``) plus a solid outline.

    ``image`` is anything :func:`display_rgb` accepts (or already uint8 (H, W, 3)); returns uint8
    (H, W, 3). A mask of another size than the image is resized (nearest neighbour).
    """
    if (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[-1] == 3
        and image.dtype == np.uint8
    ):
        rgb = image.copy()
    else:
        rgb = display_rgb(image)
    if mask is None:
        return rgb
    m = _resize_mask(np.asarray(mask) > 0, rgb.shape[:2])
    col = np.array(color, dtype=np.float32)
    out = rgb.astype(np.float32)
    out[m] = (1 - alpha) * out[m] + alpha * col
    if outline:
        out[_edge(m, max(1, round(min(m.shape) / 200)))] = col
    return np.clip(out, 0, 255).astype(np.uint8)


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask; downscaling keeps a pixel when at least half of its footprint is set."""
    if mask.shape == tuple(shape):
        return mask
    from PIL import Image

    im = Image.fromarray(mask.astype(np.uint8) * 255)
    down = shape[0] < mask.shape[0]
    im = im.resize((shape[1], shape[0]), Image.Resampling.BOX if down else Image.Resampling.NEAREST)
    return np.asarray(im) > 127


def _thumb_shape(shape: tuple[int, int], max_px: int) -> tuple[int, int]:
    h, w = shape
    s = min(1.0, max_px / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def _png_b64(arr: np.ndarray, palette_colors: int | None = None, grey_levels: int = 32) -> str:
    """Base64 PNG of a uint8 (H, W), (H, W, 3) or (H, W, 4) array, optionally palette-quantised."""
    from PIL import Image

    im = Image.fromarray(arr)
    if palette_colors:
        if im.mode == "RGB" and _is_grey(arr):
            im = im.convert("L")
            # fewer grey levels compress much better and look the same at thumbnail size
            n = max(2, min(256, grey_levels)) - 1
            im = im.point([round(round(v * n / 255) * 255 / n) for v in range(256)])
        elif im.mode == "RGB":
            im = im.quantize(
                colors=palette_colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
            )
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def _rgba_layer(
    layers: Sequence[tuple[np.ndarray, tuple[int, int, int], int]], shape: tuple[int, int]
) -> np.ndarray:
    """Transparent RGBA overlay from (mask, colour, alpha 0..255) layers painted in order."""
    out = np.zeros((*shape, 4), dtype=np.uint8)
    for m, col, a in layers:
        out[m, :3] = col
        out[m, 3] = a
    return out


def _load_mask(m: np.ndarray | str | Path | None) -> np.ndarray | None:
    if m is None:
        return None
    if isinstance(m, (str, Path)):
        from sam2elnet.engine.metrics import read_binary_mask

        return read_binary_mask(m)
    a = np.asarray(m)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    return a > 0.5 if np.issubdtype(a.dtype, np.floating) else a != 0


def _fig_b64(fig: Any) -> str:
    """PNG (base64) of a matplotlib Figure, or pass PNG bytes through."""
    if isinstance(fig, (bytes, bytearray)):
        return base64.b64encode(bytes(fig)).decode("ascii")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------
# plots (matplotlib object API + Agg canvas: no pyplot global state, no display needed)
# --------------------------------------------------------------------------------------------


def _new_figure(w: float = 5.0, h: float = 3.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _quality_histogram(items: Sequence[ReportItem], threshold: float | None) -> str | None:
    q = np.array([i.predicted_iou for i in items if _finite(i.predicted_iou)], dtype=float)
    t = np.array([i.true_iou for i in items if _finite(i.true_iou)], dtype=float)
    if q.size == 0 and t.size == 0:
        return None
    fig = _new_figure()
    ax = fig.add_subplot(111)
    bins = np.linspace(0, 1, 21)
    if q.size:
        ax.hist(
            np.clip(q, 0, 1),
            bins=bins,
            color="#3b82c4",
            alpha=0.8,
            label=f"predicted quality (n={q.size})",
        )
    if t.size:
        ax.hist(
            np.clip(t, 0, 1),
            bins=bins,
            histtype="step",
            lw=2,
            color="#2a9d4b",
            label=f"true IoU (n={t.size})",
        )
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="#d62828", ls="--", lw=2, label=f"threshold {threshold:.2f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU")
    ax.set_ylabel("images")
    ax.set_title("Label quality distribution")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.grid(alpha=0.3)
    return _fig_b64(fig)


def _quality_scatter(items: Sequence[ReportItem], threshold: float | None) -> str | None:
    pairs = [
        (i.predicted_iou, i.true_iou, i.kept)
        for i in items
        if _finite(i.predicted_iou) and _finite(i.true_iou)
    ]
    if len(pairs) < 2:
        return None
    fig = _new_figure(4.0, 3.6)
    ax = fig.add_subplot(111)
    p = np.array([a for a, _, _ in pairs], dtype=float)
    t = np.array([b for _, b, _ in pairs], dtype=float)
    k = np.array([bool(c) for _, _, c in pairs])
    ax.scatter(p[~k], t[~k], s=12, c="#d62828", alpha=0.7, label="rejected")
    ax.scatter(p[k], t[k], s=12, c="#2a9d4b", alpha=0.7, label="kept")
    ax.plot([0, 1], [0, 1], color="#888", lw=1)
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="#d62828", ls="--", lw=1.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted quality")
    ax.set_ylabel("true IoU")
    ax.set_title("Predicted vs true IoU")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _fig_b64(fig)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;
 background:#f4f5f7;color:#1d2433;line-height:1.4}
header{background:#1d2a44;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .sub{opacity:.8;font-size:13px}
main{padding:18px 28px;max-width:1600px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:0 0 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:12px 0 6px}
table.kv{border-collapse:collapse;font-size:13px;margin:0 18px 8px 0;display:inline-table;vertical-align:top}
table.kv th,table.kv td{padding:3px 10px;border-bottom:1px solid #e6e8ec;text-align:left}
table.kv td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv thead th{background:#eef1f5}
.plots img{max-width:100%;margin:0 14px 8px 0;vertical-align:top}
.notes li{font-size:13px}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border-radius:8px;padding:8px;box-shadow:0 1px 3px rgba(0,0,0,.1);border-top:4px solid #9aa3b2}
.card.kept{border-top-color:#2a9d4b}
.card.rej{border-top-color:#d62828}
.card .hd{font-size:13px;margin-bottom:6px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.card .nm{font-weight:600;word-break:break-all;max-width:420px}
.badge{font-size:11px;padding:1px 7px;border-radius:9px;color:#fff;background:#9aa3b2}
.badge.kept{background:#2a9d4b}.badge.rej{background:#d62828}
.m{font-size:12px;color:#44506a;font-variant-numeric:tabular-nums}
.panels{display:flex;gap:6px}
figure{margin:0;text-align:center}
figure .pn{position:relative;background-size:100% 100%;image-rendering:auto}
figure .pn img{position:absolute;left:0;top:0;width:100%;height:100%}
figcaption{font-size:11px;color:#5b6578}
.ex{font-size:11px;color:#5b6578;margin-top:4px}
footer{font-size:12px;color:#7a8396;padding:0 28px 24px}
"""


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "—" if v is None else ("yes" if v else "no")
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "—"
        return f"{float(v):.4f}"
    return html.escape(str(v))


def _kv_table(title: str | None, data: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td class='num'>{_fmt(v)}</td></tr>"
        for k, v in data.items()
        if not isinstance(v, (Mapping, list, tuple))
    )
    head = f"<thead><tr><th colspan='2'>{html.escape(title)}</th></tr></thead>" if title else ""
    return f"<table class='kv'>{head}<tbody>{rows}</tbody></table>"


def _rows_table(title: str | None, rows: Sequence[Mapping[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols.extend(str(k) for k in r if str(k) not in cols)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    cap = f"<h3>{html.escape(title)}</h3>" if title else ""
    return f"{cap}<table class='kv'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table_html(title: str | None, table: Any) -> str:
    """A dict -> key/value table; a dict of dicts -> one table each; a list of dicts -> rows."""
    if isinstance(table, Mapping):
        scalars = {k: v for k, v in table.items() if not isinstance(v, (Mapping, list, tuple))}
        parts = [_kv_table(title, scalars)] if scalars else []
        for k, v in table.items():
            if isinstance(v, Mapping):
                parts.append(_kv_table(str(k), v))
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
                parts.append(_rows_table(str(k), v))
        return "".join(parts)
    if isinstance(table, (list, tuple)):
        return _rows_table(title, table)
    return f"<p>{html.escape(str(table))}</p>"


def _sort_items(items: Sequence[ReportItem], order: str) -> tuple[list[ReportItem], str]:
    """Sort by predicted quality (else true IoU, else name); items without a score go last."""
    if order not in ("worst", "best", "name"):
        raise ValueError("order must be 'worst', 'best' or 'name'")
    if order == "name":
        return sorted(items, key=lambda i: i.name), "by name"
    use_pred = any(_finite(i.predicted_iou) for i in items)
    use_true = not use_pred and any(_finite(i.true_iou) for i in items)
    if not (use_pred or use_true):
        return sorted(items, key=lambda i: i.name), "by name (no quality scores given)"
    attr = "predicted_iou" if use_pred else "true_iou"
    sign = 1.0 if order == "worst" else -1.0
    scored = [i for i in items if _finite(getattr(i, attr))]
    rest = [i for i in items if not _finite(getattr(i, attr))]
    scored.sort(key=lambda i: (sign * float(getattr(i, attr)), i.name))
    what = "predicted quality" if use_pred else "true IoU"
    return scored + sorted(rest, key=lambda i: i.name), (
        f"by {what}, {'worst' if order == 'worst' else 'best'} first"
    )


def _item_html(idx: int, item: ReportItem, thumb_px: int, styles: list[str]) -> str:
    """One card. The image goes once into ``styles`` as a CSS class; panels stack overlays on it."""
    img_rgb = None
    if item.image is not None:
        try:
            img_rgb = display_rgb(item.image)
        except DataError as err:  # one unreadable image must not cost the whole report
            log.warning("report: %s", err)
    inp, out, tru = _load_mask(item.input_label), _load_mask(item.output), _load_mask(item.truth)
    shapes = [a.shape[:2] for a in (inp, out, tru) if a is not None]
    full = (
        img_rgb.shape[:2]
        if img_rgb is not None
        else (shapes[0] if shapes else (thumb_px, thumb_px))
    )
    th, tw = _thumb_shape(full, thumb_px)
    cls = f"im{idx}"
    if img_rgb is not None:
        from PIL import Image

        small = np.asarray(Image.fromarray(img_rgb).resize((tw, th), Image.Resampling.LANCZOS))
        styles.append(
            f".{cls}{{background-image:url(data:image/png;base64,{_png_b64(small, 64, grey_levels=32)})}}"
        )
    else:
        styles.append(f".{cls}{{background:#222}}")

    def small_mask(m: np.ndarray | None) -> np.ndarray | None:
        return None if m is None else _resize_mask(m, (th, tw))

    si, so, st = small_mask(inp), small_mask(out), small_mask(tru)
    width = 1 if max(th, tw) <= 256 else 2
    panels: list[tuple[str, np.ndarray | None]] = [("image", None)]
    if si is not None:
        panels.append(
            (
                "input label",
                _rgba_layer(
                    [(si, COLORS["input"], 90), (_edge(si, width), COLORS["input"], 255)], (th, tw)
                ),
            )
        )
    if so is not None:
        panels.append(
            (
                "output",
                _rgba_layer(
                    [(so, COLORS["output"], 90), (_edge(so, width), COLORS["output"], 255)],
                    (th, tw),
                ),
            )
        )
    if st is not None:
        panels.append(
            (
                "ground truth",
                _rgba_layer(
                    [(st, COLORS["truth"], 90), (_edge(st, width), COLORS["truth"], 255)], (th, tw)
                ),
            )
        )
    cmp_ = so if so is not None else si
    if st is not None and cmp_ is not None:
        panels.append(
            (
                "errors" if so is not None else "label errors",
                _rgba_layer(
                    [
                        (cmp_ & st, COLORS["truth"], 70),
                        (cmp_ & ~st, COLORS["fp"], 190),
                        (~cmp_ & st, COLORS["fn"], 190),
                    ],
                    (th, tw),
                ),
            )
        )
    figs = []
    for cap, layer in panels:
        ov = (
            f"<img alt='' src='data:image/png;base64,{_png_b64(layer)}'>"
            if layer is not None
            else ""
        )
        figs.append(
            f"<figure><div class='pn {cls}' style='width:{tw}px;height:{th}px'>{ov}</div>"
            f"<figcaption>{cap}</figcaption></figure>"
        )

    kept_cls, badge = "", ""
    if item.kept is True:
        kept_cls, badge = " kept", "<span class='badge kept'>kept</span>"
    elif item.kept is False:
        kept_cls, badge = " rej", "<span class='badge rej'>rejected</span>"
    ms = []
    if _finite(item.predicted_iou):
        ms.append(f"quality <b>{float(item.predicted_iou):.3f}</b>")
    if _finite(item.true_iou):
        ms.append(f"true IoU <b>{float(item.true_iou):.3f}</b>")
    extra = " · ".join(f"{html.escape(str(k))}: {_fmt(v)}" for k, v in item.extra.items())
    return (
        f"<div class='card{kept_cls}'><div class='hd'><span class='nm'>{html.escape(item.name)}</span>"
        f"{badge}<span class='m'>{' · '.join(ms)}</span></div>"
        f"<div class='panels'>{''.join(figs)}</div>"
        + (f"<div class='ex'>{extra}</div>" if extra else "")
        + "</div>"
    )


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
) -> str:
    """The report as an HTML string (see :func:`write_report` for the arguments)."""
    items = list(items)
    ordered, order_text = _sort_items(items, order)
    shown = ordered[: max(0, max_items)]
    n_kept = sum(1 for i in items if i.kept is True)
    n_rej = sum(1 for i in items if i.kept is False)

    summary: dict[str, Any] = {"items": len(items)}
    if n_kept or n_rej:
        summary["kept"] = n_kept
        summary["rejected"] = n_rej
    if quality_threshold is not None:
        summary["quality threshold"] = float(quality_threshold)
    q = [float(i.predicted_iou) for i in items if _finite(i.predicted_iou)]
    if q:
        summary["mean predicted quality"] = float(np.mean(q))
    t = [float(i.true_iou) for i in items if _finite(i.true_iou)]
    if t:
        summary["mean true IoU"] = float(np.mean(t))

    parts: list[str] = []
    if notes:
        note_list = [notes] if isinstance(notes, str) else list(notes)
        parts.append(
            "<section class='notes'><h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(str(n))}</li>" for n in note_list)
            + "</ul></section>"
        )
    tbl = _kv_table("summary", summary)
    if metrics:
        tbl += _table_html("metrics", metrics)
    parts.append(f"<section><h2>Metrics</h2>{tbl}</section>")

    plots = [
        p
        for p in (
            _quality_histogram(items, quality_threshold),
            _quality_scatter(items, quality_threshold),
        )
        if p
    ]
    fig_list: list[tuple[str, Any]] = []
    if isinstance(figures, Mapping):
        fig_list = [(str(k), v) for k, v in figures.items()]
    elif figures:
        fig_list = [("", f) for f in figures]
    imgs = "".join(f"<img alt='plot' src='data:image/png;base64,{p}'>" for p in plots)
    for cap, f in fig_list:
        imgs += f"<figure style='display:inline-block'><img alt='{html.escape(cap)}' src='data:image/png;base64,{_fig_b64(f)}'>"
        imgs += f"<figcaption>{html.escape(cap)}</figcaption></figure>" if cap else "</figure>"
    if imgs:
        parts.append(f"<section class='plots'><h2>Plots</h2>{imgs}</section>")
    if tables:
        parts.append(
            "<section><h2>Tables</h2>"
            + "".join(
                _table_html(str(k), v) if isinstance(v, Mapping) else _rows_table(str(k), v)
                for k, v in tables.items()
            )
            + "</section>"
        )

    styles: list[str] = []
    cards = "".join(_item_html(k, it, thumb_px, styles) for k, it in enumerate(shown))
    legend = "".join(
        f"<span><i class='sw' style='background:rgb{c}'></i>{html.escape(n)}</span>"
        for n, c in (
            ("input label", COLORS["input"]),
            ("output", COLORS["output"]),
            ("ground truth / agreement", COLORS["truth"]),
            ("false positive", COLORS["fp"]),
            ("false negative", COLORS["fn"]),
        )
    )
    count = f"all {len(items)}" if len(shown) == len(items) else f"{len(shown)} of {len(items)}"
    parts.append(
        f"<section><h2>Images ({count}, sorted {html.escape(order_text)})</h2>"
        f"<p class='legend'>{legend}</p><div class='grid'>{cards}</div></section>"
    )
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from sam2elnet import __version__

    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}{''.join(styles)}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><div class='sub'>sam2elnet {__version__} · {now}</div></header>"
        f"<main>{''.join(parts)}</main>"
        "<footer>Self-contained report: every image is embedded; no network access needed.</footer>"
        "</body></html>\n"
    )


def write_report(
    path: str | Path,
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
) -> Path:
    """Write a self-contained ``report.html`` and return its path (atomic write).

    ``items`` are drawn as cards of panels (image, input label, output, ground truth, and an error
    map when output/label and truth are both given), sorted by predicted quality (``order="worst"``:
    worst first, the default, since those need a human look; ``"best"``; or ``"name"``), at most
    ``max_items`` of them. ``metrics`` is a dict (nested dicts become sub-tables; lists of dicts
    become row tables). The quality histogram (with ``quality_threshold`` as a dashed line) and a
    predicted-vs-true scatter are drawn when scores are present. ``figures`` are extra matplotlib
    figures or PNG bytes (a list, or a dict caption -> figure); ``tables`` maps a title to a dict
    or a list of row dicts. ``notes`` is a string or list of strings shown at the top.
    """
    from sam2elnet.utils.atomic import write_text_atomic

    text = render_report(
        items,
        title=title,
        metrics=metrics,
        quality_threshold=quality_threshold,
        notes=notes,
        max_items=max_items,
        order=order,
        figures=figures,
        tables=tables,
        thumb_px=thumb_px,
    )
    return write_text_atomic(path, text)


def write_run_report(
    run_dir: str | Path,
    *,
    kind: str | None = None,
    title: str | None = None,
    summary: Mapping[str, Any] | None = None,
    quality_csv: str | Path | None = None,
    truth_dir: str | Path | None = None,
    path: str | Path | None = None,
    quality_threshold: float | None = None,
    max_items: int = 200,
) -> Path:
    """``report.html`` for an ``elnet annotate`` / ``elnet enhance`` output folder.

    Reads ``run_dir/quality.csv`` (columns ``image``, ``label`` relative to ``run_dir``,
    ``predicted_iou``, ``kept``, optional ``coarse`` = input label path, + features) and
    ``summary.json`` (metrics table; ``threshold`` for the histogram line) unless ``summary`` is
    given. With ``truth_dir`` each label is also scored against its ground truth (true IoU), so the
    predicted-vs-true plot appears. Writes ``run_dir/report.html`` unless ``path`` is given.
    """
    import csv
    import json

    from sam2elnet.engine.metrics import confusion, mask_key, read_binary_mask, scores
    from sam2elnet.errors import UserError

    run = Path(run_dir)
    qpath = Path(quality_csv) if quality_csv is not None else run / "quality.csv"
    if not qpath.is_file():
        raise UserError(
            "no quality.csv in the run folder; is it an annotate/enhance output?", qpath
        )
    with qpath.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if summary is None and (run / "summary.json").is_file():
        try:
            summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        except ValueError:
            summary = None
    if quality_threshold is None and summary is not None and _finite(summary.get("threshold")):
        quality_threshold = float(summary["threshold"])

    truths: dict[str, Path] = {}
    if truth_dir is not None:
        for f in sorted(Path(truth_dir).iterdir()):
            if f.is_file() and f.suffix.lower() in (".png", ".tif", ".tiff", ".jpg", ".bmp"):
                if not f.stem.lower().endswith(("_sat", "_image", "_img")):
                    truths.setdefault(mask_key(f.name), f)

    def existing(p: str | None, base: Path) -> Path | None:
        if not p:
            return None
        q = Path(p)
        for cand in (q, base / q):
            if cand.is_file():
                return cand
        return None

    items: list[ReportItem] = []
    for row in rows:
        label = existing(row.get("label"), run)
        name = Path(row.get("label") or row.get("image") or "?").stem
        kept_txt = str(row.get("kept", "")).strip().lower()
        kept = (
            True
            if kept_txt in ("1", "true", "yes")
            else False
            if kept_txt in ("0", "false", "no")
            else None
        )
        true_iou = None
        truth = truths.get(mask_key(name)) if truths else None
        if truth is not None and label is not None:
            true_iou = scores(confusion(read_binary_mask(label), read_binary_mask(truth)))["iou"]
        extra = {k: row[k] for k in ("added_px", "removed_px") if row.get(k) not in (None, "")}
        items.append(
            ReportItem(
                name=name,
                image=existing(row.get("image"), run),
                input_label=existing(row.get("coarse"), run),
                output=label,
                truth=truth,
                predicted_iou=float(row["predicted_iou"])
                if _finite(row.get("predicted_iou"))
                else None,
                true_iou=true_iou,
                kept=kept,
                extra=extra,
            )
        )
    metrics = None
    if summary is not None:
        metrics = {k: v for k, v in summary.items() if not isinstance(v, (list, tuple))}
    label_kind = kind or (summary or {}).get("task") or "run"
    return write_report(
        path if path is not None else run / "report.html",
        items,
        title=title or f"sam2elnet {label_kind}: {run.name}",
        metrics=metrics,
        quality_threshold=quality_threshold,
        notes=[f"run folder: {run}", f"quality table: {qpath}"],
        max_items=max_items,
    )
