"""GDAL's two GCP transformers on a Sentinel-1-like GCP grid: thin plate spline vs polynomial.

Why ``sam2elnet.data.grids.GCP_METHOD`` is the thin plate spline (``gdalwarp -tps``) and not
GDAL's GCP polynomial (``gdalwarp`` default, ``-order n``): this script builds a GRD-like
geometry whose true pixel -> map relation is known, samples it at a 10 lines x 21 GCP grid
(as a Sentinel-1 GRD GeoTIFF carries; GCPs in EPSG:4326) over a 2000 x 2000 px scene, and
measures, on every 8th pixel, in pixels:

* ``tps_vs_poly``: where the spline and the polynomial put the same pixel (the polynomial's
  inverse applied to both map positions);
* ``poly_vs_truth`` / ``tps_vs_truth``: each transformer's pixel for the true map position.

Geometry: a descending-like track (heading 192 deg, turning ``curvature`` deg per 100 km; rows
= azimuth, columns = ground range in UTM 35N metres, then EPSG:4326); optionally a Gaussian
hill (sigma 500 px) whose height ``h`` displaces ground range by ``h / tan(incidence)``
(incidence 30..46 deg across the swath), as terrain moves GRD GCPs. Pure geometry: no model,
CPU seconds.

Usage::

    python benchmarks/gcp_transformers.py
"""

from __future__ import annotations

import numpy as np
from pyproj import Transformer
from rasterio.control import GroundControlPoint
from rasterio.transform import GCPTransformer

H = W = 2000
_TO_LL = Transformer.from_crs("EPSG:32635", "EPSG:4326", always_xy=True)


def ground(rows, cols, ps: float, curve: float, hill: float = 0.0):
    """(lon, lat) of pixel positions (row, col) of a GRD-like scene with ``ps`` m pixels."""
    a = rows * ps
    r = cols * ps
    if hill:
        inc = np.deg2rad(30.0 + 16.0 * cols / W)
        hgt = hill * np.exp(-(((rows - H / 2) ** 2 + (cols - W / 2) ** 2) / (2 * (H / 4) ** 2)))
        r = r + hgt / np.tan(inc)
    k = np.deg2rad(curve) / 100e3
    h0 = np.deg2rad(180.0 - 12.0)
    tx = (np.cos(h0) - np.cos(h0 + k * a)) / k
    ty = (np.sin(h0 + k * a) - np.sin(h0)) / k
    h = h0 + k * a
    x = 400000.0 + tx + r * np.cos(h)
    y = 5000000.0 + ty - r * np.sin(h)
    return _TO_LL.transform(x, y)


def measure(ps: float, curve: float, hill: float = 0.0) -> dict[str, np.ndarray]:
    """Pixel distances (see the module docstring) over every 8th pixel centre."""
    R, C = np.meshgrid(np.linspace(0, H, 10), np.linspace(0, W, 21), indexing="ij")
    lon, lat = ground(R.ravel(), C.ravel(), ps, curve, hill)
    gcps = [
        GroundControlPoint(row=r, col=c, x=x, y=y)
        for r, c, x, y in zip(R.ravel(), C.ravel(), lon, lat, strict=True)
    ]
    rr, cc = (v.ravel() for v in np.meshgrid(np.arange(0, H, 8) + 0.5, np.arange(0, W, 8) + 0.5))
    tlon, tlat = ground(rr, cc, ps, curve, hill)
    same = lambda v: v  # noqa: E731 - fractional pixels from rowcol

    def px(tr, x, y):
        r, c = tr.rowcol(np.asarray(x), np.asarray(y), op=same)
        return np.asarray(r), np.asarray(c)

    with GCPTransformer(gcps) as poly, GCPTransformer(gcps, tps=True) as tps:
        r1, c1 = px(poly, *tps.xy(rr, cc, offset="ul"))
        r2, c2 = px(poly, *poly.xy(rr, cc, offset="ul"))
        out = {"tps_vs_poly": np.hypot(r1 - r2, c1 - c2)}
        for name, tr in (("poly_vs_truth", poly), ("tps_vs_truth", tps)):
            r, c = px(tr, tlon, tlat)
            out[name] = np.hypot(r - rr, c - cc)
    return out


def main() -> None:
    print("pixel distances over every 8th pixel of a 2000 x 2000 px scene, 10 x 21 GCPs:")
    cases = [(10, 0.5, 0.0), (40, 0.5, 0.0), (125, 0.5, 0.0), (125, 2.0, 0.0)]
    cases += [(10, 0.5, 1000.0), (40, 0.5, 1000.0)]
    for ps, curve, hill in cases:
        what = f"{ps:g} m pixels ({H * ps / 1000:.0f} km), track turning {curve} deg/100 km"
        print(what + (f", {hill:.0f} m hill" if hill else ", flat"))
        for name, d in measure(ps, curve, hill).items():
            print(
                f"   {name:14s} max {d.max():7.3f}  p99 {np.percentile(d, 99):7.3f}  "
                f"mean {d.mean():7.3f} px"
            )


if __name__ == "__main__":
    main()
