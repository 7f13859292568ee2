"""Road centre lines of a large label: the whole thinning against row strips with a halo.

For each size the script writes one synthetic road network (a tiled, DEFLATE 0/1 GeoTIFF of
about 300 px road blocks: straight roads 4-16 px wide at random angles, winding roads,
roundabouts and a few 24-32 px squares) and vectorises its centre lines the way
``elnet export`` does (:meth:`sam2elnet.export.centreline_layer.CentreLineLayer.label_lines`:
``LabelRaster`` reads, thinning, segments, merge, spurs, simplification), each in a fresh child
process, once per mode:

* ``whole``: the whole label read and thinned at once (the code before the strips);
* ``strips``: thinned in row strips under ``--budget-mb`` (default 64 MB, so even 2,000^2 px
  is cut into strips; ``elnet export`` uses 256 MB, ``MEMORY_BUDGET_BYTES``).

Each child reports its peak resident memory (``VmHWM`` from ``/proc/self/status``, minus the
resident memory after the imports, so the figures are what the centre lines cost) and the
wall time of the vectorisation. The table shows both modes side by side and checks that they
give the same lines (count, total length).

Run (alone, under nice; a few minutes on 2 cores)::

    nice -n 10 .venv/bin/python benchmarks/bench_centrelines.py --sizes 2000 5000 10000
    .venv/bin/python benchmarks/bench_centrelines.py --sizes 512 --budget-mb 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402  (also puts src/ on the path)

SRC = Path(__file__).resolve().parent.parent / "src"


def make_label(path: Path, size: int, seed: int = 0) -> float:
    """Write a ``size`` x ``size`` road network GeoTIFF; returns its road fraction."""
    import cv2
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    m = np.zeros((size, size), np.uint8)
    block = 300
    n = max(1, size // block)
    for k in range(n + 1):  # a jittered grid: roads across the whole label at random angles
        c = int(k * block + rng.integers(-40, 40))
        d = int(rng.integers(-size // 8, size // 8))
        cv2.line(m, (c, 0), (c + d, size - 1), 1, int(rng.integers(4, 17)))
        cv2.line(m, (0, c), (size - 1, c + d), 1, int(rng.integers(4, 17)))
    for _ in range(n * n // 2 + 1):  # winding roads: random walks of 8-20 steps
        p = rng.integers(0, size, 2).astype(np.float64)
        ang = rng.random() * 2 * np.pi
        pts = [p.copy()]
        for _ in range(int(rng.integers(8, 21))):
            ang += rng.normal(0, 0.4)
            p += 40 * np.array([np.cos(ang), np.sin(ang)])
            pts.append(p.copy())
        poly = np.array(pts, np.int32).reshape(-1, 1, 2)
        cv2.polylines(m, [poly], False, 1, int(rng.integers(4, 11)))
    for _ in range(n):  # roundabouts and squares
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        cv2.circle(m, (cx, cy), int(rng.integers(15, 40)), 1, int(rng.integers(5, 9)))
        cx, cy, s = *(int(v) for v in rng.integers(0, size, 2)), int(rng.integers(24, 33))
        m[max(0, cy - s // 2) : cy + s // 2, max(0, cx - s // 2) : cx + s // 2] = 1
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8",
        crs="EPSG:32633", transform=from_origin(500000, 4000000, 0.5, 0.5),
        tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    ) as ds:  # fmt: skip
        ds.write(m, 1)
    return float(m.mean())


_CHILD = """
import json, sys, time
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
path, mode, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy, shapely, skimage.morphology, scipy.ndimage, rasterio
from sam2elnet.data.skeleton import strip_rows_for
from sam2elnet.export.centreline_layer import CentreLineLayer
from sam2elnet.export.labels import LabelRaster
lab = LabelRaster(__import__("pathlib").Path(path))
base = rss("VmRSS:")
layer = CentreLineLayer(progress=False, budget_bytes=10**15 if mode == "whole" else budget)
t0 = time.perf_counter()
lines = layer.label_lines(lab, "label")
dt = time.perf_counter() - t0
rows = strip_rows_for(lab.width, budget)
strips = 1 if mode == "whole" or rows >= lab.height else -(-lab.height // rows)
print(json.dumps({"s": dt, "peak": rss("VmHWM:") - base, "base": base, "lines": len(lines),
                  "length": sum(g.length for g in lines), "strips": strips,
                  "rows": lab.height if strips == 1 else rows}))
"""


def run_child(path: Path, mode: str, budget: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "SAM2ELNET_THREADS": "1"}
    args = [sys.executable, "-c", _CHILD, str(path), mode, str(budget)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    ap.add_argument("--budget-mb", type=float, default=64.0, help="memory budget of the strips")
    ap.add_argument("--work", type=Path, default=None, help="folder for the labels (temporary)")
    a = ap.parse_args()
    budget = int(a.budget_mb * 1e6)
    print(machine())
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-centrelines-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"strips: budget {a.budget_mb:g} MB; peak = VmHWM - RSS after imports and label open")
    head = f"{'size':>7} {'road':>5} | {'whole s':>8} {'peak GB':>8} | "
    print(head + f"{'strips':>6} {'rows':>5} {'s':>7} {'peak GB':>8} | lines  length px  same")
    for size in a.sizes:
        path = work / f"roads_{size}.tif"
        t0 = time.perf_counter()
        frac = make_label(path, size)
        gen = time.perf_counter() - t0
        w = run_child(path, "whole", budget)
        s = run_child(path, "strips", budget)
        same = w["lines"] == s["lines"] and abs(w["length"] - s["length"]) < 1e-6 * w["length"]
        print(
            f"{size:>7} {frac:>5.3f} | {w['s']:>8.2f} {w['peak'] / 1e9:>8.3f} | "
            f"{s['strips']:>6} {s['rows']:>5} {s['s']:>7.2f} {s['peak'] / 1e9:>8.3f} | "
            f"{w['lines']:>5} {w['length']:>10.0f}  {'yes' if same else 'NO'}"
            f"   (label written in {gen:.1f} s; whole: {w['peak'] / size**2:.1f} B/px)"
        )
        path.unlink()
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
