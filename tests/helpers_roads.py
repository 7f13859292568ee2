"""Tiny synthetic road datasets (images/ + masks/, no dataset.json) for the roads tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def one_road_label(size: tuple[int, int] = (40, 60)) -> np.ndarray:
    """uint8 0/255 label of one straight road, rows 18-20, columns 5-54 (a 50 x 3 px bar)."""
    m = np.zeros(size, np.uint8)
    m[18:21, 5:55] = 255
    return m


def road_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 0/255 mask of 2-3 straight roads, 3-4 px wide, crossing the whole image."""
    m = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(2, 4))):
        if rng.random() < 0.5:  # roughly horizontal
            p0 = (0, int(rng.integers(4, size - 4)))
            p1 = (size - 1, int(rng.integers(4, size - 4)))
        else:
            p0 = (int(rng.integers(4, size - 4)), 0)
            p1 = (int(rng.integers(4, size - 4)), size - 1)
        cv2.line(m, p0, p1, 255, int(rng.integers(3, 5)))
    return m


def make_road_dataset(
    root: Path, n: int = 12, size: int = 48, seed: int = 0, two_looks: bool = False
) -> Path:
    """RGB road scenes: grey roads on textured ground. ``two_looks``: the first half of the images
    (ids r00..) are dark green countryside, the second half bright reddish desert, i.e. two
    visibly different appearance groups."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        m = road_mask(size, rng)
        desert = two_looks and i >= n // 2
        ground = np.array([200, 150, 110] if desert else [60, 110, 50], np.float64)
        img = ground + rng.normal(0, 18, (size, size, 3))
        img[m > 0] = np.array([120, 120, 125]) + rng.normal(0, 8, (int((m > 0).sum()), 3))
        bgr = img.clip(0, 255).astype(np.uint8)[:, :, ::-1]
        cv2.imwrite(str(root / "images" / f"r{i:02d}.png"), np.ascontiguousarray(bgr))
        cv2.imwrite(str(root / "masks" / f"r{i:02d}.png"), m)
    return root


def gapped_predictions(roads: Path, pred: Path) -> Path:
    """``pred``: the masks of :func:`make_road_dataset` folder ``roads`` with a gap cut into every
    road (columns 16..31 set to 0), as predictions to score against them."""
    pred.mkdir(parents=True, exist_ok=True)
    for m in sorted((roads / "masks").glob("*.png")):
        a = cv2.imread(str(m), cv2.IMREAD_GRAYSCALE)
        a[:, 16:32] = 0
        cv2.imwrite(str(pred / m.name), a)
    return pred


def mercator_y(lat: float) -> float:
    """Web Mercator (EPSG:3857) northing of latitude ``lat`` (deg), metres."""
    import math

    return 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def make_mercator_road_dataset(
    root: Path, lats: tuple[float, ...] = (60.0, 0.0), n: int = 6, size: int = 64
) -> Path:
    """:func:`make_road_dataset`'s scenes as GeoTIFFs (images/ RGB, masks/ 0/255) in Web
    Mercator with 0.5 m CRS pixels, image ``i`` at latitude ``lats[i % len(lats)]`` (at 60 deg
    N a pixel is 0.25 m on the ground, at the equator 0.5 m)."""
    import rasterio
    from affine import Affine

    png = make_road_dataset(root / "png", n=n, size=size)
    for i in range(n):
        y = mercator_y(lats[i % len(lats)])
        geo = {"crs": "EPSG:3857", "transform": Affine(0.5, 0, 1000.0, 0, -0.5, y + size / 4)}
        img = cv2.imread(str(png / "images" / f"r{i:02d}.png"))[:, :, ::-1].transpose(2, 0, 1)
        mask = cv2.imread(str(png / "masks" / f"r{i:02d}.png"), cv2.IMREAD_GRAYSCALE)[None]
        for sub, arr in (("images", img), ("masks", mask)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            with rasterio.open(root / sub / f"r{i:02d}.tif", "w", driver="GTiff", width=size,
                               height=size, count=arr.shape[0], dtype="uint8", **geo) as ds:  # fmt: skip
                ds.write(np.ascontiguousarray(arr))
    import shutil

    shutil.rmtree(png)
    return root


def record_road_buffers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every buffer (px) the road measures are computed with from now on (the test's list;
    ``engine.metrics.road_counts`` still computes them)."""
    import sam2elnet.engine.metrics as metrics

    seen: list[float] = []
    real = metrics.road_counts

    def recorded(pred, truth, buffer_px=None, **kw):  # noqa: ANN001
        seen.append(buffer_px)
        return real(pred, truth, buffer_px=buffer_px, **kw)

    monkeypatch.setattr(metrics, "road_counts", recorded)
    return seen
