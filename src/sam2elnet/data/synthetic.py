"""Synthetic scenes with exact ground truth, for tests, demos and measuring label enhancement.

Two tasks:

- ``oil-spill``: single-band SAR-like images. Sea clutter whose backscatter follows a wind field
  (large-scale gradient, patchiness, wind streaks), multiplicative gamma speckle with ``looks``
  looks, dark elongated slicks with fractal edges, *look-alikes* (low-wind patches: rounder, with
  diffuse edges, less dark and smooth inside) that are not oil, optional bright ships and land.
  The slick/look-alike distinction is learnable from shape, edge sharpness, contrast and texture,
  but the ranges overlap so it is not trivial.
- ``road``: 3-band optical images. Fields with textures, blocks of buildings with shadows, a road
  network of straight and curved roads with junctions and varying widths, and trees that occlude
  parts of the roads in the image (the mask keeps the road, as a human label would).

Everything is vectorised with numpy/OpenCV; one 256 px scene takes a few milliseconds.
Same seed, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam2elnet.data.coarse import degrade
from sam2elnet.data.coarse_ops import smooth_field
from sam2elnet.data.writers import write_image, write_mask
from sam2elnet.errors import DataError
from sam2elnet.utils.atomic import write_json_atomic

GENERATOR_VERSION = "1.0"
TASKS = {"oil-spill": "sar", "road": "optical"}


@dataclass
class Scene:
    """A synthetic image (C, H, W) uint8 with its exact bool mask (H, W) and what was drawn."""

    image: np.ndarray
    mask: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    distractor: np.ndarray | None = None
    """Bool (H, W) where a look-alike (not the object) was drawn, for tests and analysis."""


def _fractal(
    rng: np.random.Generator, shape: tuple[int, int], scales: tuple[float, ...], decay: float = 0.6
) -> np.ndarray:
    """Sum of smooth fields at several scales: rough, self-similar edges when thresholded."""
    out = np.zeros(shape, dtype=np.float32)
    amp = 1.0
    for s in scales:
        out += amp * smooth_field(rng, shape, s)
        amp *= decay
    std = float(out.std())
    return out / std if std > 0 else out


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
    f = _fractal(rng, shape, (size / 6, size / 16, size / 40))
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
    w = 1.0 + rng.uniform(0.0, 0.35) * u / size + 0.12 * _fractal(rng, shape, (size / 2, size / 5))
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
        land = lu / size + 0.15 * _fractal(
            rng, shape, (size / 4, size / 12, size / 30)
        ) > rng.uniform(0.2, 0.4)
        land_i = rng.uniform(3.0, 8.0) * np.exp(0.6 * _fractal(rng, shape, (size / 10, size / 30)))
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


# --------------------------------------------------------------------------- roads
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
    img = colours[labels] + rows[..., None] + 6 * _fractal(rng, shape, (size / 20, 4))[..., None]
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
            + 10 * _fractal(rng, shape, (size / 10, 3))[..., None]
        )
        img = np.where(town[..., None], ground, img)
        _buildings(
            rng, img, town, cv2.dilate(kerb, np.ones((3, 3), np.uint8)) > 0, rng.uniform(0, np.pi)
        )
    asphalt = rng.uniform(70, 120) + 6 * _fractal(rng, shape, (size / 30, 2))
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
    leaf = np.array([55, 85, 45], np.float32) + 18 * _fractal(rng, shape, (3, 1.5))[..., None]
    img = np.where(crowns[..., None] > 0, leaf, img)
    img = cv2.GaussianBlur(img, (0, 0), 0.6) + rng.normal(0, 3, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    meta = {"roads": len(lines), "urban": urban, "trees": n_trees}
    return Scene(image=np.ascontiguousarray(np.moveaxis(out, 2, 0)), mask=mask, meta=meta)


def make_scene(
    task: str, size: int = 256, seed: int | np.random.Generator = 0, **params: Any
) -> Scene:
    """A synthetic scene of ``task`` ("oil-spill" or "road")."""
    if task == "oil-spill":
        return oil_spill_scene(size, seed, **params)
    if task == "road":
        return road_scene(size, seed, **params)
    raise DataError(f"unknown synthetic task {task!r}; choose one of {', '.join(TASKS)}")


def _remove_stale(root: Path, count: int) -> None:
    """Delete items numbered >= count left by an earlier, larger run, so the folder matches dataset.json."""
    for sub in ("images", "masks", "coarse"):
        for f in (root / sub).glob("*.png"):
            if f.stem.isdigit() and int(f.stem) >= count:
                f.unlink()


def generate_dataset(
    out: str | Path,
    task: str = "oil-spill",
    count: int = 200,
    size: int = 256,
    seed: int = 0,
    coarse_profile: str = "mixed",
    coarse_severity: float = 0.5,
    progress: bool = True,
) -> Path:
    """Write ``count`` scenes in the generic layout (images/, masks/, coarse/) plus dataset.json.

    Item ``i`` depends only on (seed, i), so datasets of different counts share their first items.
    Returns the path of dataset.json.
    """
    from sam2elnet.utils.progress import track

    if task not in TASKS:
        raise DataError(f"unknown synthetic task {task!r}; choose one of {', '.join(TASKS)}")
    if count < 1:
        raise DataError(f"count must be at least 1, got {count}")
    if size < 32:
        raise DataError(f"size must be at least 32 px, got {size}")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise DataError("output path exists and is a file; choose a folder", root)
    ious = []
    n_empty = 0
    for i in track(range(count), f"synth {task}", "scene", progress):
        ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, i, 101])
        scene_ss, coarse_ss = ss.spawn(2)
        scene = make_scene(task, size, np.random.default_rng(scene_ss))
        coarse = degrade(
            scene.mask, coarse_profile, coarse_severity, np.random.default_rng(coarse_ss)
        )
        name = f"{i:05d}.png"
        write_image(root / "images" / name, scene.image)
        write_mask(root / "masks" / name, scene.mask)
        write_mask(root / "coarse" / name, coarse.mask)
        ious.append(coarse.iou)
        n_empty += int(not scene.mask.any())
    _remove_stale(root, count)
    meta = {
        "task": task,
        "modality": TASKS[task],
        "layout": "generic",
        "count": count,
        "size": size,
        "seed": seed,
        "generator": "sam2elnet.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "coarse": {
            "profile": coarse_profile,
            "severity": coarse_severity,
            "mean_iou": round(float(np.mean(ious)), 6),
        },
        "empty_masks": n_empty,
    }
    return write_json_atomic(root / "dataset.json", meta)
