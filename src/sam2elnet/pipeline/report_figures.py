"""Pictures for the HTML report: display stretch, mask layers, embedded images, matplotlib plots, map.

Everything here returns data the template embeds as it is: ``data:`` URIs (base64 PNG / JPEG) or
plain numbers for the footprint map, so the report needs no network and no other file. The page
layout itself lives in ``templates/report.html.j2`` (see :mod:`sam2elnet.pipeline.report`).

Plots use matplotlib's object API on an Agg canvas (no pyplot global state, no display needed).
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError

log = logging.getLogger(__name__)

__all__ = [
    "COLORS",
    "Footprint",
    "display_rgb",
    "overlay_rgb",
    "mask_layer",
    "error_layer",
    "probability_layer",
    "image_data_uri",
    "png_data_uri",
    "figure_data_uri",
    "quality_histogram",
    "quality_scatter",
    "threshold_curves",
    "filter_curves",
    "read_footprint",
    "footprint_map",
]

#: Overlay colours (RGB) used throughout the report; exported so other figures can match them.
COLORS: dict[str, tuple[int, int, int]] = {
    "input": (255, 200, 0),  # amber: the label given to the model (coarse / original)
    "output": (0, 200, 255),  # cyan: the model's mask
    "truth": (60, 220, 60),  # green: ground truth
    "fp": (255, 40, 40),  # red: output but not truth
    "fn": (40, 90, 255),  # blue: truth but not output
}
#: Marker colour for labels drawn on an image whose truth is empty (false alarms).
FALSE_ALARM_COLOR = "#e07b00"


# --------------------------------------------------------------------------------------------
# images and mask layers
# --------------------------------------------------------------------------------------------


def _read_image_file(path: Path) -> np.ndarray:
    """(C, H, W) array of an image file through :func:`sam2elnet.data.images.read_image`;
    nodata pixels become NaN (float32) so they stay out of the display stretch and show black."""
    from sam2elnet.data.images import read_image

    try:
        img = read_image(path)
        if img.nodata is None:
            return np.asarray(img.data)
        data = img.data.astype(np.float32)
        data[:, img.nodata] = np.nan
        return data
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure becomes one readable error
        raise DataError(f"cannot read image for the report ({err})", path) from err


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
    Raises ValueError for arrays that are not (C, H, W) / (H, W), DataError for unreadable files.
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


def edge(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Inner outline of a bool mask, ``width`` pixels thick (the frame does not count as edge)."""
    from scipy import ndimage

    if not mask.any():
        return mask.copy()
    er = ndimage.binary_erosion(mask, iterations=width, border_value=1)
    return mask & ~er


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask; downscaling keeps a pixel when at least half of its footprint is set."""
    if mask.shape == tuple(shape):
        return mask
    from PIL import Image

    im = Image.fromarray(mask.astype(np.uint8) * 255)
    down = shape[0] < mask.shape[0]
    im = im.resize((shape[1], shape[0]), Image.Resampling.BOX if down else Image.Resampling.NEAREST)
    return np.asarray(im) > 127


def resize_rgb(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 (H, W, 3) image with Lanczos filtering (no-op at the same size)."""
    if rgb.shape[:2] == tuple(shape):
        return rgb
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((shape[1], shape[0]), Image.Resampling.LANCZOS))


def fit_shape(shape: tuple[int, int], max_px: int) -> tuple[int, int]:
    """(H, W) scaled so the long side is at most ``max_px`` (never enlarged)."""
    h, w = shape
    s = min(1.0, max_px / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


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
    m = resize_mask(np.asarray(mask) > 0, rgb.shape[:2])
    col = np.array(color, dtype=np.float32)
    out = rgb.astype(np.float32)
    out[m] = (1 - alpha) * out[m] + alpha * col
    if outline:
        out[edge(m, max(1, round(min(m.shape) / 200)))] = col
    return np.clip(out, 0, 255).astype(np.uint8)


def _rgba(layers: Sequence[tuple[np.ndarray, tuple[int, int, int], int]], shape) -> np.ndarray:
    """Transparent RGBA overlay from (mask, colour, alpha 0..255) layers painted in order."""
    out = np.zeros((*shape, 4), dtype=np.uint8)
    for m, col, a in layers:
        out[m, :3] = col
        out[m, 3] = a
    return out


def mask_layer(mask: np.ndarray, color: tuple[int, int, int], width: int = 1) -> np.ndarray:
    """RGBA (H, W, 4) uint8 layer of a bool mask: translucent fill (alpha 90) + solid outline."""
    return _rgba([(mask, color, 90), (edge(mask, width), color, 255)], mask.shape)


def error_layer(label: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RGBA error map: agreement green (faint), false positive red, false negative blue."""
    return _rgba(
        [
            (label & truth, COLORS["truth"], 70),
            (label & ~truth, COLORS["fp"], 190),
            (~label & truth, COLORS["fn"], 190),
        ],
        label.shape,
    )


def probability_layer(prob: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """RGBA layer of a probability map in [0, 1] (magma colour map, alpha rising with p).

    ``prob`` is (H, W) float (or uint8 0-255, rescaled); NaN counts as 0.
    """
    from matplotlib import colormaps

    p = np.asarray(prob)
    if p.ndim == 3:
        p = p[0]
    p = p.astype(np.float32) / (255.0 if p.dtype == np.uint8 else 1.0)
    p = np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)
    if shape is not None and p.shape != tuple(shape):
        from PIL import Image

        p = np.asarray(
            Image.fromarray(p).resize((shape[1], shape[0]), Image.Resampling.BILINEAR),
            dtype=np.float32,
        )
    rgba = (colormaps["magma"](p) * 255).astype(np.uint8)
    rgba[..., 3] = np.where(p < 0.02, 0, 40 + 215 * p).astype(np.uint8)
    return rgba


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def png_data_uri(arr: np.ndarray, palette: bool = False) -> str:
    """``data:image/png;base64,...`` of a uint8 (H, W), (H, W, 3) or (H, W, 4) array.

    ``palette=True`` stores an image of few colours (a mask overlay: <= 16 RGBA values) as a
    palette PNG, which keeps a mask layer at a few hundred bytes.
    """
    from PIL import Image

    im = Image.fromarray(arr)
    if palette:
        im = im.quantize(colors=16, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_data_uri(rgb: np.ndarray, quality: int = 75) -> str:
    """``data:`` URI of a display image (uint8 (H, W, 3)): JPEG (grey JPEG for SAR) at ``quality``.

    JPEG because remote-sensing images (speckle, texture) do not compress losslessly: a noisy
    256 px SAR tile is ~46 kB as PNG and ~30 kB as JPEG at quality 75, which keeps a 200-image
    report under 10 MB.
    """
    from PIL import Image

    im = Image.fromarray(rgb)
    if _is_grey(rgb):
        im = im.convert("L")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(quality), optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_data_uri(fig: Any) -> str:
    """``data:image/png;base64,...`` of a matplotlib Figure (100 dpi), or of PNG bytes as given."""
    if isinstance(fig, (bytes, bytearray)):
        return "data:image/png;base64," + base64.b64encode(bytes(fig)).decode("ascii")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def _new_figure(w: float = 5.0, h: float = 3.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _finite_array(values: Sequence[Any]) -> np.ndarray:
    a = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    return a[np.isfinite(a)]


def quality_histogram(
    predicted: Sequence[float | None],
    true: Sequence[float | None],
    threshold: float | None = None,
) -> Any | None:
    """Histogram of predicted quality (bars) and true IoU (outline), 20 bins over [0, 1], with the
    acceptance ``threshold`` as a dashed line; legend outside the axes. None when nothing to draw."""
    q, t = _finite_array(predicted), _finite_array(true)
    if q.size == 0 and t.size == 0:
        return None
    fig = _new_figure(5.2, 3.2)
    ax = fig.add_subplot(111)
    bins = np.linspace(0, 1, 21)
    if q.size:
        ax.hist(
            np.clip(q, 0, 1),
            bins=bins,
            color="#3b82c4",
            alpha=0.8,
            label=f"predicted IoU ({q.size})",
        )
    if t.size:
        ax.hist(
            np.clip(t, 0, 1),
            bins=bins,
            histtype="step",
            lw=2,
            color="#2a9d4b",
            label=f"true IoU ({t.size})",
        )
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="#d62828", ls="--", lw=2, label=f"threshold {threshold:.2f}")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU")
    ax.set_ylabel("images")
    ax.set_title("Label quality distribution")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    return fig


def quality_scatter(
    predicted: Sequence[float],
    true: Sequence[float],
    status: Sequence[str],
    false_alarm: Sequence[bool],
    threshold: float | None = None,
) -> Any | None:
    """Predicted vs true IoU, one point per label: kept green, rejected red, not filtered blue;
    labels on images with empty truth (IoU 0 by definition) as orange crosses. The legend sits
    below the axes so it never covers a point. None with fewer than 2 points."""
    p = np.asarray(predicted, dtype=float)
    t = np.asarray(true, dtype=float)
    if p.size < 2:
        return None
    st = np.asarray(status)
    fa = np.asarray(false_alarm, dtype=bool)
    fig = _new_figure(4.2, 4.4)
    ax = fig.add_subplot(111)
    for name, colour in (("kept", "#2a9d4b"), ("rejected", "#d62828"), ("not filtered", "#3b82c4")):
        sel = (st == name) & ~fa
        if sel.any():
            ax.scatter(p[sel], t[sel], s=14, c=colour, alpha=0.75, label=f"{name} ({sel.sum()})")
    if fa.any():
        ax.scatter(
            p[fa],
            t[fa],
            s=30,
            marker="x",
            c=FALSE_ALARM_COLOR,
            label=f"false alarm on empty truth ({fa.sum()})",
        )
    ax.plot([0, 1], [0, 1], color="#888", lw=1)
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="#d62828", ls="--", lw=1.5, label=f"threshold {threshold:.2f}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("predicted IoU (quality evaluator)")
    ax.set_ylabel("true IoU")
    ax.set_title("Predicted vs true IoU")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    return fig


@dataclass
class FilterCurves:
    """Quality-filter behaviour at every candidate threshold (ascending)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    kept_fraction: np.ndarray
    tau: float
    n: int
    n_good: int


def filter_curves(predicted: Sequence[float], true: Sequence[float], tau: float) -> FilterCurves:
    """Precision / recall / kept fraction of the rule "keep labels with predicted IoU >= t".

    A label is good when its true IoU >= ``tau`` (the rule of
    :meth:`sam2elnet.model.quality.QualityEvaluator.threshold_for_precision`). At threshold t:
    precision = good kept / kept (NaN when nothing is kept), recall = good kept / good,
    kept fraction = kept / all. Thresholds are 0, every distinct predicted score and 1.
    """
    p = np.asarray(predicted, dtype=float)
    y = np.asarray(true, dtype=float) >= tau
    ts = np.unique(np.concatenate([[0.0], np.clip(p, 0, 1), [1.0]]))
    prec, rec, frac = [], [], []
    n_good = int(y.sum())
    for t in ts:
        kept = p >= t
        k = int(kept.sum())
        prec.append(float(y[kept].mean()) if k else float("nan"))
        rec.append(float((y & kept).sum() / n_good) if n_good else float("nan"))
        frac.append(k / max(1, p.size))
    return FilterCurves(ts, np.array(prec), np.array(rec), np.array(frac), tau, p.size, n_good)


def threshold_curves(
    curves: FilterCurves,
    threshold: float | None = None,
    target_precision: float | None = None,
) -> Any:
    """Precision and recall of the quality filter vs its threshold (step curves), kept fraction
    dashed, the chosen ``threshold`` as a vertical line with its precision/recall annotated and the
    ``target_precision`` as a dotted horizontal line."""
    fig = _new_figure(5.2, 3.4)
    ax = fig.add_subplot(111)
    c = curves
    ax.step(c.thresholds, c.precision, where="post", color="#1f6fb2", lw=2, label="precision")
    ax.step(c.thresholds, c.recall, where="post", color="#2a9d4b", lw=2, label="recall")
    ax.step(
        c.thresholds, c.kept_fraction, where="post", color="#777", lw=1.2, ls="--", label="kept"
    )
    if target_precision is not None and math.isfinite(target_precision):
        ax.axhline(
            target_precision, color="#1f6fb2", ls=":", lw=1.2, label=f"target {target_precision:g}"
        )
    if threshold is not None and math.isfinite(threshold):
        i = int(np.searchsorted(c.thresholds, threshold, side="right") - 1)
        i = min(max(i, 0), len(c.thresholds) - 1)
        ax.axvline(threshold, color="#d62828", ls="--", lw=1.5, label=f"threshold {threshold:.2f}")
        pr, rc = c.precision[i], c.recall[i]
        txt = f"P {pr:.2f} · R {rc:.2f}" if np.isfinite(pr) and np.isfinite(rc) else "nothing kept"
        ax.annotate(
            txt,
            (min(threshold, 1.0), 0.04),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=8,
            color="#d62828",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.03)
    ax.set_xlabel("quality threshold (keep predicted IoU >= t)")
    ax.set_ylabel("share")
    ax.set_title(f"Quality filter (good label: true IoU >= {c.tau:.2f}; n={c.n}, good={c.n_good})")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------
# footprint map (georeferenced inputs)
# --------------------------------------------------------------------------------------------


@dataclass
class Footprint:
    """Bounds (left, bottom, right, top) of a georeferenced image in its CRS (any WKT/EPSG string)."""

    left: float
    bottom: float
    right: float
    top: float
    crs: str


def read_footprint(path: str | Path) -> Footprint | None:
    """Footprint of a GeoTIFF (or any raster rasterio opens) with a CRS; None for images without
    a georeference (plain PNG/JPEG, pixel-coordinate TIFFs) or files rasterio cannot open."""
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff", ".vrt", ".jp2", ".img"):
        return None
    try:
        import rasterio

        with rasterio.open(p) as src:
            if src.crs is None or src.transform.is_identity:
                return None
            b = src.bounds
            return Footprint(b.left, b.bottom, b.right, b.top, src.crs.to_string())
    except Exception as err:  # noqa: BLE001 - a map is a bonus: a bad file only loses its box
        log.debug("report: no footprint for %s (%s)", p, err)
        return None


def footprint_map(
    footprints: Sequence[Footprint | None],
    values: Sequence[float | None],
    width: int = 640,
) -> dict[str, Any] | None:
    """Geometry for the report's SVG map of image footprints coloured by ``values`` (predicted IoU).

    All footprints are drawn in their common CRS; when the images use several CRSs their bounds are
    transformed to EPSG:4326 (``rasterio.warp.transform_bounds``). Returns ``{"crs", "width",
    "height", "boxes": [{"index", "x", "y", "w", "h", "color", "value"}], "bounds"}`` in SVG pixel
    units (north up), or None when no footprint is given. Colours: RdYlGn over [0, 1]; grey when
    the value is unknown.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    present = [(k, f) for k, f in enumerate(footprints) if f is not None]
    if not present:
        return None
    crss = {f.crs for _, f in present}
    if len(crss) > 1:
        from rasterio.warp import transform_bounds

        boxes = [
            (k, transform_bounds(f.crs, "EPSG:4326", f.left, f.bottom, f.right, f.top))
            for k, f in present
        ]
        crs = "EPSG:4326"
    else:
        boxes = [(k, (f.left, f.bottom, f.right, f.top)) for k, f in present]
        crs = next(iter(crss))
    x0 = min(b[0] for _, b in boxes)
    y0 = min(b[1] for _, b in boxes)
    x1 = max(b[2] for _, b in boxes)
    y1 = max(b[3] for _, b in boxes)
    span_x, span_y = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    pad = 8
    scale = (width - 2 * pad) / span_x
    height = int(min(max(span_y * scale + 2 * pad, 120), 720))
    scale = min(scale, (height - 2 * pad) / span_y)
    cmap = colormaps["RdYlGn"]
    out = []
    for k, (left, bottom, right, top) in boxes:
        v = values[k]
        ok = v is not None and math.isfinite(float(v))
        out.append(
            {
                "index": k,
                "x": round(pad + (left - x0) * scale, 2),
                "y": round(pad + (y1 - top) * scale, 2),
                "w": round(max((right - left) * scale, 1.0), 2),
                "h": round(max((top - bottom) * scale, 1.0), 2),
                "color": to_hex(cmap(float(np.clip(v, 0, 1)))) if ok else "#9aa3b2",
                "value": float(v) if ok else None,
            }
        )
    stops = [(f"{100 * s:.0f}%", to_hex(cmap(s))) for s in np.linspace(0, 1, 6)]
    return {
        "crs": crs,
        "width": width,
        "height": height,
        "boxes": out,
        "bounds": (x0, y0, x1, y1),
        "stops": stops,
    }
