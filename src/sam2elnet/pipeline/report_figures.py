"""Pictures for the HTML report: display stretch, mask layers and embedded images.

Everything here returns data the template embeds as it is: ``data:`` URIs (base64 PNG / JPEG), so
the report needs no network and no other file. The plots are :mod:`sam2elnet.pipeline.report_plots`,
the footprint map :mod:`sam2elnet.pipeline.report_map`; the page layout itself lives in
``templates/report.html.j2`` (see :mod:`sam2elnet.pipeline.report`).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError

__all__ = [
    "COLORS",
    "display_rgb",
    "overlay_rgb",
    "mask_layer",
    "error_layer",
    "probability_layer",
    "image_data_uri",
    "png_data_uri",
    "figure_data_uri",
]

#: Overlay colours (RGB) used throughout the report; exported so other figures can match them.
COLORS: dict[str, tuple[int, int, int]] = {
    "input": (255, 200, 0),  # amber: the label given to the model (coarse / original)
    "output": (0, 200, 255),  # cyan: the model's mask
    "truth": (60, 220, 60),  # green: ground truth
    "fp": (255, 40, 40),  # red: output but not truth
    "fn": (40, 90, 255),  # blue: truth but not output
    "nodata": (128, 128, 128),  # grey, hatched: not scored (ignore / nodata pixels)
}
#: Marker colour for labels drawn on an image whose truth is empty (false alarms).
FALSE_ALARM_COLOR = "#e07b00"


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
    """An image for display.

    1- or 2-band images (SAR) show the first band in grey with a ``low``..``high`` percentile
    stretch (SAR amplitudes are heavy-tailed; a min/max stretch would show black). 3+ band images
    show the first three bands; uint8 RGB is shown as is, anything else gets one joint percentile
    stretch so colour balance is kept. RGBA alpha is dropped. NaNs show black.

    Args:
        image: (C, H, W) or (H, W) array of any dtype, or an image file.
        low, high: Stretch percentiles (0-100).

    Returns:
        uint8 (H, W, 3).

    Raises:
        ValueError: an array that is not (C, H, W) / (H, W).
        DataError: an unreadable file.
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
    """Image with ``mask`` drawn on it: a semi-transparent fill plus a solid outline.

    Args:
        image: Anything :func:`display_rgb` accepts (or already uint8 (H, W, 3)).
        mask: bool (h, w); another size than the image is resized (nearest neighbour).
        color: RGB 0-255.
        alpha: Fill opacity in [0, 1].
        outline: Draw the inner outline (1 px per 200 px of the shorter side, at least 1).

    Returns:
        uint8 (H, W, 3).
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
    """RGBA layer of a mask: translucent fill (alpha 90 of 255) + solid outline.

    Args:
        mask: bool (H, W).
        color: RGB 0-255.
        width: Outline width, px.

    Returns:
        uint8 (H, W, 4).
    """
    return _rgba([(mask, color, 90), (edge(mask, width), color, 255)], mask.shape)


def error_layer(
    label: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """RGBA error map of a label against its truth.

    Args:
        label: bool (H, W).
        truth: bool (H, W).
        valid: bool (H, W) of the pixels scored (None: all), e.g. False where the truth says
            "ignore" or the label is nodata; the others are drawn as not scored, never as
            agreement or error.

    Returns:
        uint8 (H, W, 4): agreement green (faint), false positive red, false negative blue,
        not scored grey (``COLORS["nodata"]``) in diagonal stripes (alpha 210 and 110, 3 px
        each, so it stays visible on a grey SAR image), background transparent.
    """
    layers = [
        (label & truth, COLORS["truth"], 70),
        (label & ~truth, COLORS["fp"], 190),
        (~label & truth, COLORS["fn"], 190),
    ]
    if valid is not None:
        out = ~np.asarray(valid, dtype=bool)
        rows, cols = np.indices(out.shape)
        stripe = ((rows + cols) // 3) % 2 == 0
        layers += [(out & stripe, COLORS["nodata"], 210), (out & ~stripe, COLORS["nodata"], 110)]
    return _rgba(layers, label.shape)


def probability_layer(prob: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """RGBA layer of a probability map (magma colour map, alpha rising with p).

    Args:
        prob: (H, W) float in [0, 1], or uint8 0-255 (rescaled); NaN counts as 0.
        shape: Output (H, W), or None for the input size.

    Returns:
        uint8 (H, W, 4).
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
