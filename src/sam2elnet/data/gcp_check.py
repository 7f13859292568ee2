"""Ground control points that do not fit the others: the per-GCP residual check.

Every GCP-only grid here (Sentinel-1 GRD, QGIS georeferencer output) is placed with GDAL's thin
plate spline through the GCPs (:data:`sam2elnet.data.grids.GCP_METHOD`). The spline passes
exactly through every GCP, so one mistyped GCP (a digit wrong in its map position, or its row /
column) is not averaged away: it silently drags the labels around it towards the wrong place.
Georeferencing tools therefore show each GCP's residual against a least-squares polynomial
(QGIS georeferencer's GCP table, "residual [pixels]"; GDAL's GCP polynomial, ``gdalwarp -order
1|2|3``, and its outlier removal ``gdalwarp -refine_gcps tolerance minimum_gcps``,
https://gdal.org/programs/gdalwarp.html). This module does the same before any label is placed:

* fit column and row as a polynomial of the map position by least squares (:func:`numpy.linalg.
  lstsq`): order 2 (6 coefficients per axis) with at least :data:`MIN_GCPS_ORDER2` GCPs, else
  affine (order 1, 3 coefficients) with at least :data:`MIN_GCPS`; fewer: no check. GDAL picks
  order 2 from 6 GCPs and affine below (``GDALCreateGCPTransformer`` with order 0 in GDAL's
  ``alg/gdal_crs.cpp``); with 6 GCPs a quadratic passes through every one of them and leaves no
  residual to judge, so the check asks for twice the coefficients of each order;
* each GCP's residual is its leave-one-out residual: the distance in pixels between its row /
  column and where the polynomial fitted to the *other* GCPs puts its map position
  (``e_i / (1 - h_ii)``, ``h_ii`` the diagonal of the fit's hat matrix; Cook & Weisberg,
  "Residuals and Influence in Regression", 1982, ch. 2), so a wrong GCP does not hide by pulling
  the fit towards itself;
* a GCP is an outlier when its residual exceeds both :data:`OUTLIER_RATIO` x the median residual
  of all GCPs (robust: one or a few bad GCPs do not move the median; smooth curvature the
  polynomial misses raises every residual, and the median with them) and
  :data:`OUTLIER_FLOOR_PX` pixels (GCPs that fit to a hundredth of a pixel are not outliers at a
  tenth).

The check never refuses a raster (a real GRD geometry is curved, and GRD GCPs in steep terrain
carry terrain displacement a polynomial cannot follow): it warns once per GCP set and run
(:func:`sam2elnet.utils.run_warnings.warn_once`), naming the file, the GCPs and their residuals,
and saying to fix or drop them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.utils.run_warnings import warn_once

log = logging.getLogger(__name__)

__all__ = [
    "GCP_OUTLIER_KIND",
    "MIN_GCPS",
    "MIN_GCPS_ORDER2",
    "OUTLIER_FLOOR_PX",
    "OUTLIER_RATIO",
    "GcpResiduals",
    "check_gcps",
    "gcp_residuals",
]

MIN_GCPS = 6
"""Fewest GCPs checked (affine fit: twice its 3 coefficients per axis); fewer are not checked."""
MIN_GCPS_ORDER2 = 12
"""Fewest GCPs for the order-2 fit (twice its 6 coefficients per axis); fewer: affine."""
OUTLIER_RATIO = 10.0
"""A GCP is an outlier when its residual exceeds this many times the median residual ... Smooth
geometry that the polynomial cannot follow leaves residuals whose largest is at most 5.6 x their
median on the GRD-like grids of ``benchmarks/gcp_transformers.py`` (10 x 21 GCPs: 4.4 x for a
track turning 2 deg / 100 km at 125 m pixels, 5.6 x at 8 deg / 100 km, 3.8-4.4 x with a 300-3000 m
hill; 1.2-4.7 x with 9-20 GCPs), so 5 x would warn about correct GCPs; one wrong GCP among
accurate ones is hundreds of times the median."""
OUTLIER_FLOOR_PX = 3.0
"""... and this many pixels. A mistyped GCP is typically off by tens to thousands of pixels (one
wrong digit of a map coordinate in degrees at 10 m pixels: 0.01 deg is ~100 px); the largest
residual of a flat GRD-like grid without a wrong GCP measured here is 1.8 px (a 250 km scene of
125 m pixels on a track turning 2 deg / 100 km, 10 x 21 GCPs; ``benchmarks/gcp_transformers.py``
geometry)."""
GCP_OUTLIER_KIND = "ground control points far from the others' fit"
"""The :func:`~sam2elnet.utils.run_warnings.warn_once` kind of the warning."""


@dataclass(frozen=True)
class GcpResiduals:
    """Each GCP's leave-one-out residual (see the module docstring).

    Attributes:
        order: polynomial order fitted (1 or 2); 0 when the GCPs were not checked (fewer than
            :data:`MIN_GCPS`, or all on one line).
        residuals: (N,) float64, pixels, in the GCPs' order; NaN where a GCP cannot be predicted
            from the others (it alone fixes a coefficient) or ``order`` is 0.
        threshold: pixels above which a residual is an outlier (NaN when ``order`` is 0).
        outliers: indices of the outlier GCPs, in the order they were found (largest first).
    """

    order: int
    residuals: np.ndarray
    threshold: float
    outliers: tuple[int, ...]


def _design(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """(N, 3) affine or (N, 6) quadratic design matrix of normalised map positions."""
    cols = [np.ones_like(x), x, y]
    if order == 2:
        cols += [x * x, x * y, y * y]
    return np.column_stack(cols)


def _residuals(a: np.ndarray, px: np.ndarray, fit: np.ndarray) -> np.ndarray | None:
    """Pixel distance of every GCP from the least-squares fit to the others: leave-one-out for
    the GCPs in ``fit`` (bool mask; ``e_i / (1 - h_ii)``, NaN where ``h_ii`` ~ 1), the plain
    distance from the fit for the rest. None when the ``fit`` GCPs do not fix the polynomial."""
    af = a[fit]
    q, r = np.linalg.qr(af)
    diag = np.abs(np.diag(r))
    if len(af) <= a.shape[1] or diag.min() <= 1e-9 * diag.max():
        return None
    coef, *_ = np.linalg.lstsq(af, px[fit], rcond=None)
    out = np.hypot(*(px - a @ coef).T)
    lever = 1.0 - (q * q).sum(axis=1)  # 1 - h_ii
    with np.errstate(divide="ignore", invalid="ignore"):
        out[fit] = np.where(lever > 1e-6, out[fit] / lever, np.nan)
    return out


def _threshold(res: np.ndarray, fit: np.ndarray) -> float:
    """:data:`OUTLIER_FLOOR_PX` or :data:`OUTLIER_RATIO` x the median residual of the ``fit``
    GCPs, the larger."""
    finite = res[fit][np.isfinite(res[fit])]
    median = float(np.median(finite)) if len(finite) else 0.0
    return max(OUTLIER_FLOOR_PX, OUTLIER_RATIO * median)


def gcp_residuals(gcps: Any) -> GcpResiduals:
    """Leave-one-out residuals of ``gcps`` against a least-squares polynomial (module docstring).

    Outliers are taken out one at a time, largest residual first, as ``gdalwarp -refine_gcps``
    does: the GCP with the largest residual is an outlier when its distance from the fit to the
    remaining GCPs exceeds :data:`OUTLIER_FLOOR_PX` and :data:`OUTLIER_RATIO` x the median of the
    remaining GCPs' residuals; then the next, against a fit without it (at most a quarter of the
    GCPs, keeping two more than the polynomial's coefficients). So a wrong GCP is measured against
    the good ones only, and the good ones' residuals do not carry the pull of the wrong one (on a
    4 x 4 grid of GCPs one GCP moved by 30 px raises the others' median leave-one-out residual
    from 0 to 5 px).

    Args:
        gcps: sequence of GCPs with ``row``, ``col`` (pixels) and ``x``, ``y`` (map units), e.g.
            ``rasterio.control.GroundControlPoint`` as ``dataset.gcps[0]`` gives them.

    Returns:
        :class:`GcpResiduals`: each residual is the GCP's distance from the fit to the other
        GCPs that are not outliers.
    """
    pts = np.array([(g.x, g.y, g.col, g.row) for g in gcps], dtype=np.float64).reshape(-1, 4)
    n = len(pts)
    none = GcpResiduals(0, np.full(n, np.nan), float("nan"), ())
    if n < MIN_GCPS or not np.isfinite(pts).all():
        return none
    xy = pts[:, :2] - pts[:, :2].mean(axis=0)
    scale = xy.std(axis=0)
    if not (scale > 0).all():
        return none
    px = pts[:, 2:]
    fit = np.ones(n, dtype=bool)
    for order in (2, 1) if n >= MIN_GCPS_ORDER2 else (1,):
        a = _design(xy[:, 0] / scale[0], xy[:, 1] / scale[1], order)
        res = _residuals(a, px, fit)
        if res is not None:  # else: GCPs on a line (or a conic): try affine
            break
    else:
        return none
    threshold = _threshold(res, fit)
    out: list[int] = []
    while len(out) < n // 4 and fit.sum() - 1 >= a.shape[1] + 2:
        cand = int(np.nanargmax(np.where(fit, res, np.nan)))
        fit[cand] = False
        res2 = _residuals(a, px, fit)
        if res2 is None:
            fit[cand] = True
            break
        thr2 = _threshold(res2, fit)
        if not res2[cand] > thr2:
            fit[cand] = True
            break
        out.append(cand)
        res, threshold = res2, thr2
    return GcpResiduals(order, res, threshold, tuple(out))


def _gcp_name(g: Any, i: int) -> str:
    """``GCP 7 (id 7, row 60, col 50)``: 1-based position; the id when short (GDAL's own ids
    are numbers; rasterio makes a UUID for GCPs without one)."""
    gid = str(getattr(g, "id", "") or "")
    ident = f"id {gid}, " if gid and len(gid) <= 16 else ""
    return f"GCP {i + 1} ({ident}row {g.row:.6g}, col {g.col:.6g})"


def _digest(gcps: Any) -> str:
    """A short key of a GCP set (pixel and map positions), so one set warns once per run
    whichever file carries it (a scene and the labels written with its GCPs)."""
    pts = np.array([(g.row, g.col, g.x, g.y) for g in gcps], dtype=np.float64)
    return hashlib.sha1(pts.tobytes()).hexdigest()[:16]


def check_gcps(gcps: Any, path: str | Path | None = None) -> GcpResiduals:
    """Check a raster's GCPs (:func:`gcp_residuals`) and warn when some do not fit the others.

    The warning (``warning: FILE: 1 of its 16 ground control points lies far from where an
    order-2 polynomial fitted to the other GCPs puts it: GCP 6 (id 6, row 72.6667, col 42.6667)
    30.0 px (the others: median 0.00 px) ...``) goes through
    :func:`~sam2elnet.utils.run_warnings.warn_once` with kind :data:`GCP_OUTLIER_KIND` and the
    GCP set as its key: once per GCP set in a run (and, outside a run's scope, once per process),
    into the job's warnings (``summary.json``) like any run warning. Nothing is refused.

    Args:
        gcps: the raster's GCPs (``dataset.gcps[0]``).
        path: the raster, named in the warning.

    Returns:
        :class:`GcpResiduals` (``outliers`` empty when nothing was warned about).
    """
    res = gcp_residuals(gcps)
    if not res.outliers:
        return res
    gl = list(gcps)
    shown = res.outliers[:3]
    which = "; ".join(f"{_gcp_name(gl[i], i)} {res.residuals[i]:.1f} px" for i in shown)
    more = f" and {len(res.outliers) - len(shown)} more" if len(res.outliers) > len(shown) else ""
    kind = "an affine" if res.order == 1 else "an order-2"
    others = np.delete(res.residuals, list(res.outliers))
    median = float(np.nanmedian(others)) if np.isfinite(others).any() else 0.0
    verb, them = ("lies", "it") if len(res.outliers) == 1 else ("lie", "them")
    where = f"{path}: " if path is not None else ""
    text = (
        f"{where}{len(res.outliers)} of its {len(gl)} ground control points {verb} far from where "
        f"{kind} polynomial fitted to the other GCPs puts {them}: {which}{more} (the others: median "
        f"{median:.2f} px). The thin plate spline that places labels passes through every GCP, "
        "so a mistyped one warps the labels around it: check it and fix or drop it (QGIS "
        "georeferencer; gdal_translate -gcp; gdalwarp -refine_gcps), unless the GCPs carry real "
        "terrain displacement (GRD GCPs in steep terrain)"
    )
    warn_once(log, GCP_OUTLIER_KIND, text, key=_digest(gl))
    return res
