"""Synthetic SAR oil-spill scenes (task ``oil-spill`` of :mod:`sam2elnet.data.synthetic`).

Single-band SAR-like images: sea clutter whose backscatter follows a wind field (large-scale
gradient, patchiness, wind streaks), multiplicative gamma speckle with ``looks`` looks, dark
elongated slicks with fractal edges, *look-alikes* (low-wind patches: rounder, with diffuse
edges, less dark and smooth inside) that are not oil, optional bright ships and land. The
slick/look-alike distinction is learnable from shape, edge sharpness, contrast and texture, but
the ranges overlap so it is not trivial.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from sam2elnet.data.synthetic_scene import Scene, fractal_field

__all__ = ["oil_spill_scene"]


def _rotated_coords(
    shape: tuple[int, int], cx: float, cy: float, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (u along ``angle``, v across it) relative to (cx, cy)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return dx * c + dy * s, -dx * s + dy * c


def _streaks(rng: np.random.Generator, size: int, angle: float, length: int) -> np.ndarray:
    """Wind streaks: white noise smeared along the wind direction (a rotated line kernel)."""
    k = length | 1
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(
        kernel,
        (int(round(c - dx)), int(round(c - dy))),
        (int(round(c + dx)), int(round(c + dy))),
        1.0,
        1,
    )
    kernel /= kernel.sum()
    noise = rng.standard_normal((size, size)).astype(np.float32)
    out = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    out = cv2.GaussianBlur(out, (0, 0), 1.2)
    std = float(out.std())
    return out / std if std > 0 else out


def _blob(
    rng: np.random.Generator,
    size: int,
    length: float,
    aspect: float,
    angle: float,
    roughness: float,
    bend: float,
    center: tuple[float, float] | None = None,
) -> np.ndarray:
    """A signed 'inside-ness' field: > 0 inside an irregular, possibly bent, elongated shape."""
    shape = (size, size)
    cx, cy = (
        center
        if center is not None
        else (rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size)
    )
    u, v = _rotated_coords(shape, cx, cy, angle)
    a = max(length / 2, 2.0)
    b = max(a / aspect, 1.5)
    v = v - bend * (u**2) / a
    env = 1.0 - (u / a) ** 2 - (v / b) ** 2
    f = fractal_field(rng, shape, (size / 6, size / 16, size / 40))
    return env + roughness * f


def _speckle(rng: np.random.Generator, shape: tuple[int, int], looks: float) -> np.ndarray:
    """Multiplicative speckle: gamma distributed with mean 1 and variance 1/looks."""
    return rng.gamma(looks, 1.0 / looks, size=shape).astype(np.float32)


def oil_spill_scene(
    size: int = 256,
    seed: int | np.random.Generator = 0,
    looks: float = 4.0,
    p_slick: float = 0.8,
    max_slicks: int = 3,
    max_lookalikes: int = 3,
    p_ship: float = 0.4,
    p_land: float = 0.15,
) -> Scene:
    """One SAR-like scene (1, H, W) uint8 with its exact slick mask."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (size, size)
    wind = rng.uniform(0, 2 * np.pi)
    # sea: wind-speed field (gradient + patchiness) -> backscatter ~ wind^2, with streaks
    u, _ = _rotated_coords(shape, size / 2, size / 2, rng.uniform(0, 2 * np.pi))
    w = (
        1.0
        + rng.uniform(0.0, 0.35) * u / size
        + 0.12 * fractal_field(rng, shape, (size / 2, size / 5))
    )
    sigma0 = np.clip(w, 0.3, None) ** 2
    streak_amp = rng.uniform(0.05, 0.25)
    streaks = _streaks(rng, size, wind, max(9, size // 8))
    texture = 1.0 + streak_amp * streaks
    # slicks: dark, elongated (along the wind), sharp-edged, fractal outlines
    slick_field = np.full(shape, -1.0, np.float32)
    n_slicks = int(rng.integers(1, max_slicks + 1)) if rng.random() < p_slick else 0
    damping = np.ones(shape, np.float32)
    for _ in range(n_slicks):
        length = rng.uniform(0.2, 0.7) * size
        f = _blob(
            rng,
            size,
            length,
            rng.uniform(3.0, 10.0),
            wind + rng.normal(0, 0.35),
            rng.uniform(0.25, 0.6),
            rng.uniform(-0.6, 0.6),
        )
        slick_field = np.maximum(slick_field, f)
    mask = slick_field > 0
    if n_slicks:
        d = rng.uniform(0.2, 0.5)
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), rng.uniform(0.6, 1.5))
        damping *= 1.0 - (1.0 - d) * soft
        texture = 1.0 + (texture - 1.0) * (1.0 - 0.8 * soft)
    # look-alikes: low-wind areas, rounder, diffuse edges, less dark, smooth (no streaks) inside
    n_look = int(rng.integers(0, max_lookalikes + 1))
    lookalike = np.zeros(shape, bool)
    for _ in range(n_look):
        f = _blob(
            rng,
            size,
            rng.uniform(0.2, 0.6) * size,
            rng.uniform(1.0, 2.5),
            rng.uniform(0, np.pi),
            0.3,
            0.0,
        )
        soft = 0.5 * (1.0 + np.tanh(f / (2.0 * rng.uniform(0.15, 0.35))))  # logistic, no overflow
        d = rng.uniform(0.4, 0.8)
        lookalike |= soft > 0.5
        damping *= 1.0 - (1.0 - d) * soft
        texture = 1.0 + (texture - 1.0) * (1.0 - 0.9 * soft)
    intensity = sigma0 * texture * damping
    meta: dict[str, Any] = {"slicks": n_slicks, "lookalikes": n_look, "ships": 0, "land": False}
    # land: a bright, heterogeneous region entering from one side (never oil)
    if rng.random() < p_land:
        lu, _ = _rotated_coords(shape, size / 2, size / 2, rng.uniform(0, 2 * np.pi))
        land = lu / size + 0.15 * fractal_field(
            rng, shape, (size / 4, size / 12, size / 30)
        ) > rng.uniform(0.2, 0.4)
        land_i = rng.uniform(3.0, 8.0) * np.exp(
            0.6 * fractal_field(rng, shape, (size / 10, size / 30))
        )
        intensity = np.where(land, land_i, intensity)
        mask &= ~land
        meta["land"] = bool(land.any())
    # ships: bright point targets, a few pixels
    if rng.random() < p_ship:
        n = int(rng.integers(1, 4))
        for _ in range(n):
            cx, cy = rng.integers(0, size, 2)
            r = max(1, int(round(rng.uniform(0.5, 2.0) * size / 256)))
            cv2.ellipse(
                intensity,
                (int(cx), int(cy)),
                (r + 1, r),
                float(rng.uniform(0, 180)),
                0,
                360,
                float(rng.uniform(15, 40)),
                -1,
            )
        meta["ships"] = n
    intensity = intensity * _speckle(rng, shape, looks)
    db = 10.0 * np.log10(np.maximum(intensity, 1e-4))
    ref = float(np.median(db)) + rng.uniform(-2.0, 2.0)
    grey = np.clip((db - (ref - 14.0)) / 20.0 * 255.0, 0, 255).astype(np.uint8)
    return Scene(image=grey[None], mask=mask, meta=meta, distractor=lookalike & ~mask)
