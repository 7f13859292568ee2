"""``elnet evaluate --pred DIR --truth FILE.gpkg``: one polygon file shared by many tiles.

Times :func:`sam2elnet.engine.evaluate.evaluate_folders` on generated GeoTIFF tiles (EPSG:32633,
10 m pixels) against one GeoPackage of polygons drawn in EPSG:4326 (every tenth an invalid
bow-tie), with the shared file reprojected and repaired once per CRS and each tile given only the
features near it (``reuse``, the default) against placing the whole file on every tile (the code
before it), alternating rounds in one process; checks that both give the same pixel counts.

    python benchmarks/bench_eval_polygons.py --tiles 50 --polygons 300 --reps 6 --cpu-time
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import alternate, machine  # also puts src/ on the path


def make_data(root: Path, tiles: int, polygons: int, size: int) -> None:
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from shapely.geometry import Polygon

    rng = np.random.default_rng(0)
    (root / "pred").mkdir(parents=True)
    cols = int(np.ceil(np.sqrt(tiles * 2)))
    span = 10.0 * size
    x0, y0 = 500_000.0, 4_000_000.0
    for i in range(tiles):
        r, c = divmod(i, cols)
        a = (rng.random((size, size)) > 0.7).astype(np.uint8) * 255
        t = Affine(10, 0, x0 + c * span, 0, -10, y0 - r * span)
        with rasterio.open(root / "pred" / f"t{i:03d}.tif", "w", driver="GTiff", width=size,
                           height=size, count=1, dtype="uint8", crs="EPSG:32633",
                           transform=t) as ds:  # fmt: skip
            ds.write(a[None])
    rows = int(np.ceil(tiles / cols))
    geoms = []
    for k in range(polygons):
        cx, cy = x0 + rng.random() * cols * span, y0 - rng.random() * rows * span
        if k % 10 == 0:  # a bow-tie: invalid, repaired by make_valid
            pts = [(cx, cy), (cx + 100, cy + 100), (cx + 100, cy), (cx, cy + 100)]
        else:  # a star-shaped polygon of 24 vertices, 30-110 m radius
            ang, rad = np.sort(rng.random(24) * 2 * np.pi), 30 + rng.random(24) * 80
            pts = [(cx + q * np.cos(t), cy + q * np.sin(t)) for t, q in zip(ang, rad, strict=True)]
        geoms.append(Polygon(pts))
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_crs(4326).to_file(root / "truth.gpkg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=50)
    ap.add_argument("--polygons", type=int, default=300)
    ap.add_argument("--size", type=int, default=64, help="tile size, px")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--cpu-time", action="store_true", help="CPU seconds (process_time)")
    a = ap.parse_args()
    from sam2elnet.engine import evaluate as ev

    logging.disable(logging.WARNING)  # the reader's notes, once per run
    root = Path(tempfile.mkdtemp(prefix="bench-eval-polygons-"))
    try:
        make_data(root, a.tiles, a.polygons, a.size)
        real, totals = ev.pair_inputs, {}

        def run(reuse: bool) -> None:
            def patched(*args: object, **kw: object):  # noqa: ANN202
                pairs = real(*args, **kw)
                pairs.layer.reuse = reuse
                return pairs

            ev.pair_inputs = patched
            try:
                res = ev.evaluate_folders(root / "pred", root / "truth.gpkg", progress=False)
            finally:
                ev.pair_inputs = real
            totals[reuse] = res.total.as_dict()

        med = alternate(
            {"whole file per tile": lambda: run(False), "once per CRS": lambda: run(True)},
            a.reps,
            clock=time.process_time if a.cpu_time else None,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert totals[True] == totals[False], totals
    unit = "CPU s" if a.cpu_time else "s"
    print(machine())
    print(f"{a.tiles} tiles of {a.size} px, {a.polygons} polygons; median of {a.reps} rounds")
    for k, v in med.items():
        print(f"  {k:22s} {v:.3f} {unit} ({1000 * v / a.tiles:.1f} ms/tile)")
    print(f"  same pixel counts: {totals[True]}")


if __name__ == "__main__":
    main()
