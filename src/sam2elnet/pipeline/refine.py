"""Classical label-refinement baselines, so the gain of learned label enhancement is *measured*.

Every refiner has the same signature, ``refiner(image, coarse, **options) -> bool (H, W)``, where
``image`` is the normalised image ``(C, H, W)`` (roughly 0..1, as produced by
:func:`sam2elnet.data.normalize.normalize`) and ``coarse`` the coarse label ``bool (H, W)``.

- ``no_change``: the coarse label itself (the floor every method must beat).
- ``morphological``: opening + closing + hole filling + small-component removal; image-blind, removes the
  blobby noise and small holes of hand-drawn polygons.
- ``guided``: He et al.'s guided filter (box filters, written here: ``cv2.ximgproc`` is not in headless
  OpenCV) of the coarse mask with the image as guide, thresholded at 0.5: snaps edges to image edges.
- ``grabcut``: OpenCV GrabCut initialised from the coarse mask: a band around the label boundary is
  "probably foreground / background", the rest is fixed.

Both image-guided methods first smooth the image slightly (Gaussian, ~1 % of the image side) because
SAR speckle otherwise drives them.

Sizes (structuring element, filter radius, band width) scale with the image size by default so the same
settings behave alike at 64 and 512 px.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from scipy import ndimage as ndi

Refiner = Callable[..., np.ndarray]


def _check(image: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    coarse = np.asarray(coarse).astype(bool)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[1:] != coarse.shape:
        raise ValueError(
            f"image (C,H,W) {image.shape} and coarse mask (H,W) {coarse.shape} do not match"
        )
    return image, coarse


def _scale_radius(shape: tuple[int, int], fraction: float, minimum: int = 1) -> int:
    return max(minimum, int(round(fraction * min(shape))))


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius


def no_change(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Return the coarse label unchanged (copy)."""
    _, coarse = _check(image, coarse)
    return coarse.copy()


def morphological(
    image: np.ndarray,
    coarse: np.ndarray,
    radius: int | None = None,
    min_size: int | None = None,
) -> np.ndarray:
    """Open, close, fill holes, drop components smaller than ``min_size`` pixels.

    ``radius`` defaults to ~1.5 % of the shorter side (at least 1 px), ``min_size`` to 0.1 % of the area
    (at least 4 px).
    """
    _, coarse = _check(image, coarse)
    if not coarse.any():
        return coarse.copy()
    r = radius if radius is not None else _scale_radius(coarse.shape, 0.015)
    se = _disk(r)
    m = ndi.binary_opening(coarse, structure=se, border_value=0)
    # Closing with border_value=0 would erode objects touching the border; pad with edge values instead.
    pad = r + 1
    mp = np.pad(m, pad, mode="edge")
    m = ndi.binary_closing(mp, structure=se)[pad:-pad, pad:-pad]
    m = ndi.binary_fill_holes(m)
    ms = min_size if min_size is not None else max(4, int(0.001 * coarse.size))
    lab, n = ndi.label(m)
    if n:
        sizes = np.bincount(lab.ravel())
        small = sizes < ms
        small[0] = False
        m[small[lab]] = False
    return m.astype(bool)


def _guide(image: np.ndarray) -> np.ndarray:
    """Single-channel float32 guide: mean of the bands, nodata-robust percentile stretch to 0..1."""
    g = np.nan_to_num(image.astype(np.float32).mean(axis=0))
    lo, hi = np.percentile(g, [1, 99])
    if hi - lo < 1e-6:
        return np.zeros_like(g)
    return np.clip((g - lo) / (hi - lo), 0.0, 1.0)


def _smooth(image: np.ndarray, sigma: float | None) -> np.ndarray:
    """Gaussian pre-smoothing of every band: SAR speckle otherwise dominates colour models and local
    variances (measured on SOS and synthetic SAR: GrabCut label IoU 0.64 -> 0.70 and 0.39 -> 0.69).
    ``sigma`` None = 1 % of the shorter side (at least 1 px); 0 = off."""
    s = max(1.0, min(image.shape[1:]) / 100.0) if sigma is None else float(sigma)
    if s <= 0:
        return image
    return np.stack([cv2.GaussianBlur(b.astype(np.float32), (0, 0), s) for b in image])


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, reflecting at the border (cv2's box filter is O(1) per pixel)."""
    return cv2.boxFilter(
        x, ddepth=-1, ksize=(2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT
    )


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He, Sun & Tang's guided filter (grey guide): edge-preserving smoothing of ``src`` along ``guide``.

    Locally ``q = a * I + b`` with ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) - a * mean(I)``,
    then ``a`` and ``b`` are averaged over the windows covering each pixel.
    """
    i = guide.astype(np.float32)
    p = src.astype(np.float32)
    mean_i = _box(i, radius)
    mean_p = _box(p, radius)
    cov_ip = _box(i * p, radius) - mean_i * mean_p
    var_i = _box(i * i, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * i + _box(b, radius)


def guided(
    image: np.ndarray,
    coarse: np.ndarray,
    radius: int | None = None,
    eps: float = 1e-2,
    threshold: float = 0.5,
    smooth: float | None = None,
) -> np.ndarray:
    """Guided-filter the coarse mask with the image as guide and threshold it.

    ``radius`` defaults to ~3 % of the shorter side (at least 2 px). Larger ``eps`` = smoother, less
    image-driven; ``1e-2`` suits guides in 0..1.
    """
    image, coarse = _check(image, coarse)
    if not coarse.any() or coarse.all():
        return coarse.copy()
    r = radius if radius is not None else _scale_radius(coarse.shape, 0.03, minimum=2)
    q = guided_filter(_guide(_smooth(image, smooth)), coarse.astype(np.float32), r, eps)
    return q > threshold


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    """(C,H,W) float -> (H,W,3) uint8 for GrabCut: 1 band replicated, 2 bands + mean, >3 first three."""
    c = image.shape[0]
    if c == 1:
        bands = [image[0]] * 3
    elif c == 2:
        bands = [image[0], image[1], image.mean(axis=0)]
    else:
        bands = [image[0], image[1], image[2]]
    out = []
    for b in bands:
        b = np.nan_to_num(b.astype(np.float32))
        lo, hi = np.percentile(b, [1, 99])
        s = np.zeros_like(b) if hi - lo < 1e-6 else np.clip((b - lo) / (hi - lo), 0, 1)
        out.append((s * 255).astype(np.uint8))
    return np.ascontiguousarray(np.stack(out, axis=-1))


def grabcut(
    image: np.ndarray,
    coarse: np.ndarray,
    band: int | None = None,
    iterations: int = 3,
    seed: int = 0,
    smooth: float | None = None,
) -> np.ndarray:
    """GrabCut from the coarse mask: fixed fg/bg far from its boundary, probable fg/bg within ``band``.

    ``band`` defaults to ~4 % of the shorter side (at least 2 px). Falls back to the coarse mask when
    GrabCut cannot run (empty or full label, degenerate image).
    """
    image, coarse = _check(image, coarse)
    if not coarse.any() or coarse.all():
        return coarse.copy()
    b = band if band is not None else _scale_radius(coarse.shape, 0.04, minimum=2)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * b + 1, 2 * b + 1))
    c8 = coarse.astype(np.uint8)
    inner = cv2.erode(c8, k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    outer = cv2.dilate(c8, k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    gc = np.full(coarse.shape, cv2.GC_BGD, np.uint8)
    gc[outer] = cv2.GC_PR_BGD
    gc[coarse] = cv2.GC_PR_FGD
    gc[inner] = cv2.GC_FGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    try:
        cv2.grabCut(
            _to_bgr8(_smooth(image, smooth)), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK
        )
    except cv2.error:
        return coarse.copy()
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


REFINERS: dict[str, Refiner] = {
    "no_change": no_change,
    "morphological": morphological,
    "guided": guided,
    "grabcut": grabcut,
}


def refine(method: str, image: np.ndarray, coarse: np.ndarray, **options: object) -> np.ndarray:
    """Apply the refinement baseline ``method`` (a key of :data:`REFINERS`)."""
    try:
        fn = REFINERS[method]
    except KeyError:
        raise ValueError(
            f"unknown refinement method {method!r}; known: {', '.join(REFINERS)}"
        ) from None
    return np.asarray(fn(image, coarse, **options), dtype=bool)
