"""Synthetic aerial road scenes (task ``road`` of :mod:`sam2elnet.data.synthetic`).

3-band optical images: fields with textures, blocks of buildings with shadows, a road network of
straight and curved roads with junctions and varying widths, and trees that occlude parts of the
roads in the image (the mask keeps the road, as a human label would).
"""

from __future__ import annotations

import cv2
import numpy as np

from sam2elnet.data.coarse_ops import smooth_field
from sam2elnet.data.synthetic_scene import Scene, fractal_field

__all__ = ["road_scene"]


_FIELD_COLOURS = np.array(
    [
        [96, 128, 62],
        [128, 150, 80],
        [150, 140, 100],
        [170, 160, 120],
        [110, 120, 70],
        [140, 118, 86],
    ],
    np.float32,
)


_ROOF_COLOURS = np.array(
    [[200, 200, 195], [150, 150, 150], [170, 95, 75], [225, 220, 210], [120, 110, 100]], np.float32
)


def _polyline(
    rng: np.random.Generator, p0: np.ndarray, p1: np.ndarray, curve: float, n: int = 32
) -> np.ndarray:
    """Quadratic Bezier from p0 to p1, bent sideways by ``curve`` x its length."""
    d = p1 - p0
    normal = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-6)
    ctrl = (p0 + p1) / 2 + normal * curve * np.linalg.norm(d)
    t = np.linspace(0, 1, n)[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p1
    return np.round(pts).astype(np.int32)


def _border_point(rng: np.random.Generator, size: int, side: int) -> np.ndarray:
    t = rng.uniform(0, size)
    return np.array([[t, -5], [size + 5, t], [t, size + 5], [-5, t]][side], dtype=np.float64)


def _road_lines(rng: np.random.Generator, size: int, urban: bool) -> list[tuple[np.ndarray, int]]:
    """Polylines with widths: through roads, a parallel grid in town, and branches (T-junctions)."""
    k = size / 256
    lines: list[tuple[np.ndarray, int]] = []
    for _ in range(int(rng.integers(1, 4))):
        s0 = int(rng.integers(4))
        s1 = (s0 + int(rng.integers(1, 4))) % 4
        curve = rng.choice([0.0, rng.uniform(-0.25, 0.25)])
        pts = _polyline(rng, _border_point(rng, size, s0), _border_point(rng, size, s1), curve)
        lines.append((pts, int(round(rng.uniform(7, 14) * k))))
    if urban:
        ang = rng.uniform(0, np.pi)
        spacing = rng.uniform(50, 90) * k
        d = np.array([np.cos(ang), np.sin(ang)])
        nrm = np.array([-d[1], d[0]])
        centre = np.array([size / 2, size / 2])
        for j in range(-3, 4):
            if rng.random() < 0.35:
                continue
            base = centre + nrm * (j * spacing + rng.uniform(-5, 5) * k)
            pts = np.stack([base - d * size, base + d * size]).round().astype(np.int32)
            lines.append((pts, int(round(rng.uniform(4, 9) * k))))
    for _ in range(int(rng.integers(1, 5))):
        pts, _w = lines[int(rng.integers(len(lines)))]
        i = int(rng.integers(1, len(pts)))
        start = pts[i - 1].astype(np.float64)
        d = (pts[i] - pts[i - 1]).astype(np.float64)
        d /= np.linalg.norm(d) + 1e-6
        side = rng.choice([-1.0, 1.0])
        end = (
            start
            + side * np.array([-d[1], d[0]]) * rng.uniform(40, 160) * k
            + d * rng.uniform(-30, 30) * k
        )
        lines.append(
            (
                _polyline(rng, start, end, rng.uniform(-0.3, 0.3), 16),
                int(round(rng.uniform(3, 8) * k)),
            )
        )
    return lines


def _fields(rng: np.random.Generator, size: int) -> np.ndarray:
    """Patchwork of fields (argmax of smooth fields), each with its colour and row texture."""
    shape = (size, size)
    n = 5
    stack = np.stack([smooth_field(rng, shape, size / 3) for _ in range(n)])
    labels = np.argmax(stack, axis=0)
    colours = _FIELD_COLOURS[rng.integers(0, len(_FIELD_COLOURS), n)] + rng.normal(0, 8, (n, 3))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    phi = rng.uniform(0, np.pi, n)[labels]
    period = rng.uniform(4, 10, n)[labels] * size / 256
    amp = rng.uniform(0, 14, n)[labels]
    rows = amp * np.sin(2 * np.pi * (xs * np.cos(phi) + ys * np.sin(phi)) / period)
    img = (
        colours[labels] + rows[..., None] + 6 * fractal_field(rng, shape, (size / 20, 4))[..., None]
    )
    return img.astype(np.float32)


def _buildings(
    rng: np.random.Generator, img: np.ndarray, town: np.ndarray, road_zone: np.ndarray, angle: float
) -> None:
    """Rectangular roofs with shadows inside ``town``, none on roads (drawn in place)."""
    size = img.shape[0]
    k = size / 256
    ids = np.zeros((size, size), np.int32)
    shadows = np.zeros((size, size), np.uint8)
    n = int(town.mean() * 120 * k * k) + 1
    cands = np.argwhere(town)
    if len(cands) == 0:
        return
    pick = cands[rng.integers(0, len(cands), n)]
    sun = np.array([rng.uniform(2, 5), rng.uniform(2, 5)]) * k
    colours = _ROOF_COLOURS[rng.integers(0, len(_ROOF_COLOURS), n)] + rng.normal(0, 6, (n, 3))
    for i, (cy, cx) in enumerate(pick, start=1):
        w, h = rng.uniform(8, 26) * k, rng.uniform(8, 22) * k
        box = cv2.boxPoints(((float(cx), float(cy)), (w, h), float(np.degrees(angle)))).astype(
            np.int32
        )
        cv2.fillPoly(shadows, [box + sun.astype(np.int32)], 1)
        cv2.fillPoly(ids, [box], i)
    bad = np.unique(ids[road_zone])
    ids[np.isin(ids, bad[bad > 0])] = 0
    shadows[road_zone] = 0
    img[(shadows > 0) & (ids == 0)] *= 0.45
    roof = ids > 0
    img[roof] = colours[ids[roof] - 1] * (1.0 + 0.04 * rng.standard_normal((int(roof.sum()), 1)))


def road_scene(
    size: int = 256,
    seed: int | np.random.Generator = 0,
    p_urban: float = 0.6,
    tree_density: float = 1.0,
) -> Scene:
    """One aerial-like RGB scene (3, H, W) uint8 with its exact road mask (occluded parts included)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (size, size)
    k = size / 256
    urban = bool(rng.random() < p_urban)
    img = _fields(rng, size)
    lines = _road_lines(rng, size, urban)
    mask_u8 = np.zeros(shape, np.uint8)
    kerb = np.zeros(shape, np.uint8)
    for pts, w in lines:
        cv2.polylines(kerb, [pts], False, 1, thickness=w + max(2, int(3 * k)))
        cv2.polylines(mask_u8, [pts], False, 1, thickness=max(2, w))
    mask = mask_u8.astype(bool)
    if urban:
        town = smooth_field(rng, shape, size / 2) > rng.uniform(-0.8, 0.2)
        ground = (
            np.array([150, 148, 142], np.float32)
            + 10 * fractal_field(rng, shape, (size / 10, 3))[..., None]
        )
        img = np.where(town[..., None], ground, img)
        _buildings(
            rng, img, town, cv2.dilate(kerb, np.ones((3, 3), np.uint8)) > 0, rng.uniform(0, np.pi)
        )
    asphalt = rng.uniform(70, 120) + 6 * fractal_field(rng, shape, (size / 30, 2))
    img[kerb > 0] = np.array([175, 172, 165], np.float32) + rng.normal(0, 4, 3)
    img[mask] = (asphalt[mask, None] + np.array([0, 0, 4], np.float32)).astype(np.float32)
    # trees: clusters of crowns, many along roads, occluding them in the image only
    n_trees = int(rng.integers(10, 60) * tree_density * k * k)
    road_px = np.argwhere(mask)
    near = (
        road_px[rng.integers(0, len(road_px), n_trees)] if len(road_px) else np.zeros((0, 2), int)
    )
    anywhere = rng.integers(0, size, (n_trees, 2))
    along = rng.random(n_trees) < 0.6
    centres = np.where(along[:, None], near + rng.normal(0, 6 * k, (n_trees, 2)), anywhere).astype(
        np.int32
    )
    radii = np.maximum(2, (rng.uniform(3, 8, n_trees) * k)).astype(np.int32)
    crowns = np.zeros(shape, np.uint8)
    shade = np.zeros(shape, np.uint8)
    for (cy, cx), r in zip(centres, radii, strict=True):
        cv2.circle(shade, (int(cx + r // 2), int(cy + r // 2)), int(r), 1, -1)
        cv2.circle(crowns, (int(cx), int(cy)), int(r), 1, -1)
    img[(shade > 0) & (crowns == 0)] *= 0.55
    leaf = np.array([55, 85, 45], np.float32) + 18 * fractal_field(rng, shape, (3, 1.5))[..., None]
    img = np.where(crowns[..., None] > 0, leaf, img)
    img = cv2.GaussianBlur(img, (0, 0), 0.6) + rng.normal(0, 3, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    meta = {"roads": len(lines), "urban": urban, "trees": n_trees}
    return Scene(image=np.ascontiguousarray(np.moveaxis(out, 2, 0)), mask=mask, meta=meta)
