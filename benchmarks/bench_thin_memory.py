"""Peak memory of one whole thinning (``sam2elnet.data.skeleton.centre_lines``), bytes per pixel.

The strips of :func:`sam2elnet.data.skeleton.strip_centre_lines` are planned with
``skeleton.THIN_BYTES_PER_PX`` bytes per window pixel (:func:`~sam2elnet.data.skeleton.
strip_rows_for`); this measures what one thinning holds at its peak, on the road networks of
``benchmarks/bench_centrelines.py`` (``make_label``). For each size a fresh child process reads
the label as a bool array (1 B/px, not counted), then thins it once and reports:

* ``traced``: the peak of Python/NumPy allocations during the thinning (``tracemalloc``), the
  thinned output included;
* ``rss``: the peak resident memory during the thinning over the resident memory just before it
  (``VmHWM`` reset through ``/proc/self/clear_refs``; Linux);
* ``window``: the traced peak of a strip window's thinning as the strips run it (thinned for
  ``(DEFAULT_HALO_ROWS - 2) // 2`` iterations, then thinned once more while kept, the
  convergence check), plus the window's bool mask (1 B/px): what ``THIN_BYTES_PER_PX`` plans.

Run (alone, under nice; about a minute on 2 cores)::

    SAM2ELNET_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_thin_memory.py --sizes 2000 4000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_centrelines import SRC, make_label  # noqa: E402
from common import machine  # noqa: E402

_CHILD = """
import json, sys, time, tracemalloc
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
import numpy as np, rasterio, skimage.morphology
from sam2elnet.data.skeleton import DEFAULT_HALO_ROWS, _thin_window, centre_lines
with rasterio.open(sys.argv[1]) as ds:
    mask = ds.read(1) > 0
centre_lines(mask[:64, :64])  # first-call imports outside the measurement
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := VmRSS
base = rss("VmRSS:")
tracemalloc.start()
t0 = time.perf_counter()
out = centre_lines(mask)
dt = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1]
peak_rss = rss("VmHWM:") - base
del out
tracemalloc.reset_peak()
_thin_window(mask, (DEFAULT_HALO_ROWS - 2) // 2, whole=False)
window = tracemalloc.get_traced_memory()[1] + mask.nbytes
tracemalloc.stop()
print(json.dumps({"px": mask.size, "traced": traced, "rss": peak_rss, "s": dt,
                  "window": window, "road": float(mask.mean())}))
"""


def run_child(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "SAM2ELNET_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000])
    a = ap.parse_args()
    print(machine())
    print(f"{'size':>6} {'road':>5} | {'traced B/px':>11} {'rss B/px':>9} {'s':>7} | window B/px")
    with tempfile.TemporaryDirectory(prefix="bench-thin-") as work:
        for size in a.sizes:
            path = Path(work) / f"roads_{size}.tif"
            make_label(path, size)
            r = run_child(path)
            print(
                f"{size:>6} {r['road']:>5.3f} | {r['traced'] / r['px']:>11.2f} "
                f"{r['rss'] / r['px']:>9.2f} {r['s']:>7.2f} | {r['window'] / r['px']:>11.2f}"
            )


if __name__ == "__main__":
    main()
