"""Mask operations of the coarse-label simulator: each one a way a hurried annotator errs.

Douglas-Peucker polygons, smooth boundary displacement, dilation / erosion, dropped small and
thin parts, whole objects left out, spurious blobs, drawing on a coarse grid, blur-and-threshold, translation, freehand
outlines and fixed-width strips along centre lines (roads). Each takes a bool (H, W) mask and
returns one; amplitudes in pixels are defined for 256 px images and scale with the image size
(:func:`pixel_scale`). :mod:`sam2elnet.data.coarse` combines them into profiles.
"""

from __future__ import annotations

import cv2
import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks; two empty masks agree perfectly (1.0)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b)) / union


def pixel_scale(shape: tuple[int, ...]) -> float:
    """Pixel amplitudes are defined for 256 px images and scale with image size."""
    return float(np.sqrt(shape[0] * shape[1])) / 256.0


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _u8(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(mask, dtype=np.uint8)


# --------------------------------------------------------------------------- single operations
def simplify_polygons(
    mask: np.ndarray,
    rel_eps: float,
    min_eps: float = 0.0,
    max_eps: float = np.inf,
    min_hole: float = 0.0,
) -> np.ndarray:
    """Replace every contour by a polygon with few vertices, as an annotator clicking vertices does.

    ``rel_eps`` is the Douglas-Peucker tolerance as a fraction of each contour's perimeter (clipped
    to ``[min_eps, max_eps]`` px). Holes smaller than ``min_hole`` px are filled; larger ones (the
    blocks between roads) are kept as simplified polygons too.
    """
    contours, hier = cv2.findContours(_u8(mask), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(mask.shape, dtype=np.uint8)
    if not contours:
        return out.astype(bool)
    parents = hier[0][:, 3]

    def poly(c: np.ndarray) -> np.ndarray:
        eps = min(max_eps, max(min_eps, rel_eps * cv2.arcLength(c, True)))
        return cv2.approxPolyDP(c, eps, True) if eps > 0 else c

    outers = [i for i in range(len(contours)) if parents[i] < 0]
    outers.sort(key=lambda i: -cv2.contourArea(contours[i]))
    for i in outers:
        cv2.fillPoly(out, [poly(contours[i])], 1)
        for j in np.flatnonzero(parents == i):
            if cv2.contourArea(contours[j]) >= min_hole:
                cv2.fillPoly(out, [poly(contours[j])], 0)
    return out.astype(bool)


def morph(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate (radius > 0) or erode (radius < 0) with a disk: bloated or shrunk boundaries."""
    if radius == 0:
        return mask.copy()
    op = cv2.dilate if radius > 0 else cv2.erode
    return op(_u8(mask), _disk(abs(int(radius)))).astype(bool)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A smooth random field with unit standard deviation and correlation length ~``scale`` px."""
    gh = max(2, int(round(shape[0] / max(scale, 1.0))) + 1)
    gw = max(2, int(round(shape[1] / max(scale, 1.0))) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field_ = cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    std = float(field_.std())
    return field_ / std if std > 0 else field_


def displace(mask: np.ndarray, dx: np.ndarray, dy: np.ndarray, amplitude: float) -> np.ndarray:
    """Move the boundary by a smooth random displacement field (unit fields ``dx``, ``dy``)."""
    if amplitude <= 0:
        return mask.copy()
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = xs + amplitude * dx
    my = ys + amplitude * dy
    warped = cv2.remap(
        _u8(mask) * np.float32(1.0), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return warped > 0.5


def drop_parts(mask: np.ndarray, min_area: float, thin_radius: int) -> np.ndarray:
    """Drop components smaller than ``min_area`` px and parts thinner than ``2*thin_radius``."""
    out = mask.copy()
    if thin_radius > 0:
        opened = cv2.morphologyEx(_u8(out), cv2.MORPH_OPEN, _disk(thin_radius)).astype(bool)
        out = opened
    if min_area > 0 and out.any():
        n, labels, stats, _ = cv2.connectedComponentsWithStats(_u8(out), connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        small = small[small > 0]
        if small.size:
            out[np.isin(labels, small)] = False
    return out


def drop_objects(mask: np.ndarray, rng: np.random.Generator, p: float) -> tuple[np.ndarray, int]:
    """Whole objects left out, as an annotator who overlooked them: each 8-connected component
    of the bool (H, W) ``mask`` is dropped when its uniform draw from ``rng`` (one per component,
    in raster order of the components' first pixels) is below ``p`` (0-1), so a larger ``p`` drops
    the same objects and more. Returns the bool (H, W) mask and how many objects were dropped."""
    n, labels = cv2.connectedComponents(_u8(mask), connectivity=8)
    if n <= 1:
        return mask.copy(), 0
    drop = np.flatnonzero(rng.random(n - 1) < p) + 1
    out = mask & ~np.isin(labels, drop)
    return out, int(drop.size)


def add_blobs(
    mask: np.ndarray, blobs: list[tuple[float, float, float, float, float]]
) -> np.ndarray:
    """Add false-positive ellipses given as (cx, cy, ax, ay, angle_deg) in pixels."""
    out = _u8(mask).copy()
    for cx, cy, ax, ay, ang in blobs:
        if ax < 0.5 or ay < 0.5:
            continue
        cv2.ellipse(out, (int(cx), int(cy)), (max(1, int(ax)), max(1, int(ay))), ang, 0, 360, 1, -1)
    return out.astype(bool)


def blockify(
    mask: np.ndarray, block: int, threshold: float, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Down-sample by ``block`` (area average), threshold, up-sample: a label drawn on a coarse grid."""
    if block <= 1:
        return mask.copy()
    h, w = mask.shape
    oy, ox = offset[0] % block, offset[1] % block
    padded = np.zeros((h + block + oy, w + block + ox), dtype=np.float32)
    padded[oy : oy + h, ox : ox + w] = mask
    gh, gw = padded.shape[0] // block, padded.shape[1] // block
    cells = padded[: gh * block, : gw * block].reshape(gh, block, gw, block).mean(axis=(1, 3))
    up = np.repeat(np.repeat(cells > threshold, block, axis=0), block, axis=1)
    return up[oy : oy + h, ox : ox + w]


def blur_threshold(mask: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    """Gaussian-blur the mask (``sigma`` px) and threshold it at ``threshold`` in (0, 1).

    A boundary drawn by eye: corners are rounded, the boundary moves out (``threshold`` < 0.5) or
    in (> 0.5) by an amount that grows with ``sigma``, thin parts vanish and narrow gaps close.
    """
    if sigma <= 0:
        return mask.copy()
    soft = cv2.GaussianBlur(_u8(mask) * np.float32(1.0), (0, 0), sigmaX=float(sigma))
    return soft > float(threshold)


def translate(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Shift the whole label by (``dx``, ``dy``) px (misregistration); vacated pixels are empty."""
    if dx == 0 and dy == 0:
        return mask.copy()
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(_u8(mask), m, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST)
    return out.astype(bool)


def freehand_outline(
    mask: np.ndarray,
    rng: np.random.Generator,
    step: float,
    wobble: float,
    bias: float,
    merge_radius: int,
    min_area: float,
) -> np.ndarray:
    """Trace every object as a hand-drawn closed outline and fill it.

    What an annotator with a mouse or pen does, and none of the training profiles does: objects
    closer than ~``2 * merge_radius`` px get one outline around both, components smaller than
    ``min_area`` px are skipped, holes are not traced (filled), and the outline is a polyline
    through points every ``step`` px along the true contour, each moved along the contour normal
    by ``bias`` px outwards (people draw around, not inside) plus a hand wobble: a random walk
    along the contour, low-pass filtered, with standard deviation ``wobble`` px.
    """
    work = _u8(mask)
    if merge_radius > 0:
        work = cv2.morphologyEx(work, cv2.MORPH_CLOSE, _disk(merge_radius))
    contours, _ = cv2.findContours(work, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(mask.shape, dtype=np.uint8)
    for c in contours:
        if cv2.contourArea(c) < min_area or len(c) < 3:
            continue
        pts = c[:, 0, :].astype(np.float64)
        # Resample at ``step`` px of arc length (at least 6 points per outline).
        seg = np.linalg.norm(np.diff(pts, axis=0, append=pts[:1]), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        total = float(arc[-1])
        n = max(6, int(round(total / max(step, 1.0))))
        t = np.linspace(0.0, total, n, endpoint=False)
        closed = np.vstack([pts, pts[:1]])
        xy = np.stack([np.interp(t, arc, closed[:, 0]), np.interp(t, arc, closed[:, 1])], axis=1)
        # Outward normals from the resampled polygon's orientation.
        tangent = np.roll(xy, -1, axis=0) - np.roll(xy, 1, axis=0)
        normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        signed_area = 0.5 * float(
            np.sum(xy[:, 0] * np.roll(xy[:, 1], -1) - np.roll(xy[:, 0], -1) * xy[:, 1])
        )
        if signed_area < 0:
            normal = -normal
        # Hand wobble: a closed random walk, smoothed over ~3 points, scaled to ``wobble`` px.
        walk = np.cumsum(rng.standard_normal(n))
        walk -= np.linspace(0.0, walk[-1], n)  # close the loop
        kernel = np.ones(3) / 3.0
        walk = np.convolve(np.concatenate([walk[-1:], walk, walk[:1]]), kernel, mode="valid")
        walk -= walk.mean()
        sd = float(walk.std())
        offset = bias + (wobble * walk / sd if sd > 0 else 0.0)
        drawn = xy + normal * np.asarray(offset)[:, None]
        cv2.fillPoly(out, [np.round(drawn).astype(np.int32)], 1)
    return out.astype(bool)


def centerline_width(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Skeleton of ``mask`` and the typical object width (twice the median distance to the edge)."""
    from skimage.morphology import skeletonize

    skel = skeletonize(mask.astype(bool))
    if not skel.any():
        return skel, 0.0
    dist = cv2.distanceTransform(_u8(mask), cv2.DIST_L2, 5)
    return skel, max(1.0, 2.0 * float(np.median(dist[skel])) - 0.5)


def strip(
    mask: np.ndarray,
    width: float,
    simplify_eps: float,
    shift: tuple[float, float],
    skel: np.ndarray | None = None,
) -> np.ndarray:
    """Replace line-like objects by a fixed-width strip along their (simplified) centre line.

    The strip is moved sideways by ``shift`` = (dx, dy) pixels, like a road drawn next to itself.
    """
    if skel is None:
        skel, _ = centerline_width(mask)
    if not skel.any():
        return mask.copy()
    contours, _ = cv2.findContours(_u8(skel), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    lines = np.ones(mask.shape, dtype=np.uint8)
    for c in contours:
        line = cv2.approxPolyDP(c, simplify_eps, False) if simplify_eps > 0 else c
        cv2.polylines(lines, [line], False, 0, thickness=1)
    # a strip is every pixel within width/2 of the centre line: continuous in width, unlike thick lines
    out = (cv2.distanceTransform(lines, cv2.DIST_L2, 5) < max(width, 1.0) / 2.0).astype(np.uint8)
    if shift != (0.0, 0.0):
        m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        out = cv2.warpAffine(out, m, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST)
    return out.astype(bool)


def is_linear(mask: np.ndarray) -> bool:
    """Heuristic: thin, long structures (roads, rivers) rather than blobs (slicks)."""
    if not mask.any():
        return False
    skel, width = centerline_width(mask)
    length = float(np.count_nonzero(skel))
    return width > 0 and length >= 4.0 * width
