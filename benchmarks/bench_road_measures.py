"""Road measures per image (``sam2elnet.engine.metrics.road_counts``): the project's border-only
Guo-Hall thinning (``sam2elnet.data.skeleton.thin``) against ``skimage.morphology.thin``, side
by side in one run.

``elnet evaluate`` (and ``elnet cv``) scored road images at 0.74 img/s on a loaded 2-core
machine; cProfile put ~80 % of ``road_counts`` in the two thinnings (skimage correlates the
whole image in each of ~2 x half-a-road-width sub-iterations). This script times
``road_counts`` on real road masks (``../shared/data/roads-dev``, or synthetic road networks when
absent) with each thinning, alternating the two so load hits both alike, and asserts that every
image's :class:`~sam2elnet.engine.metrics.RoadCounts` are identical. The prediction is the truth
shifted by a few pixels, eroded and sprinkled with noise (a plausible imperfect label).

Run (under nice, about half a minute)::

    SAM2ELNET_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_road_measures.py --n 12
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from common import SHARED_DATA, alternate, machine  # noqa: E402
from scipy import ndimage  # noqa: E402

from sam2elnet.data import skeleton  # noqa: E402
from sam2elnet.engine.metrics import road_counts  # noqa: E402
from sam2elnet.option_values import ROAD_BUFFER_PX  # noqa: E402

ROADS = SHARED_DATA / "roads-dev" / "masks"


def masks(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (prediction, truth) pairs of bool (400, 400) masks."""
    rng = np.random.default_rng(seed)
    truths: list[np.ndarray] = []
    if ROADS.is_dir():
        from PIL import Image

        for f in sorted(ROADS.glob("*.png"))[:n]:
            t = np.asarray(Image.open(f)) > 127
            truths.append(t if t.ndim == 2 else t[..., 0])
    # without the shared data (or with fewer masks): four straight roads 8-23 px wide per mask,
    # horizontal and vertical; simpler than real networks (no curves, no junction shapes)
    while len(truths) < n:
        t = np.zeros((400, 400), dtype=bool)
        for _ in range(4):
            r, w = rng.integers(0, 380), rng.integers(8, 24)
            t[r : r + w] = True
            t = t.T
        truths.append(t)
    pairs = []
    for t in truths:
        p = ndimage.shift(t.astype(np.uint8), rng.integers(-4, 5, 2), order=0) > 0
        p = ndimage.binary_erosion(p, iterations=2)
        p[rng.random(p.shape) < 0.002] = True
        pairs.append((p, t))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12, help="images (default 12)")
    ap.add_argument("--reps", type=int, default=3, help="timed rounds of each, median (default 3)")
    ap.add_argument(
        "--buffer",
        type=float,
        default=ROAD_BUFFER_PX,
        help=f"road buffer, px (default {ROAD_BUFFER_PX:g}, as elnet evaluate)",
    )
    args = ap.parse_args()
    from skimage.morphology import thin as skimage_thin

    pairs = masks(args.n)

    def run() -> list:
        return [road_counts(p, t, buffer_px=args.buffer) for p, t in pairs]

    def old() -> list:
        with mock.patch.object(skeleton, "thin", skimage_thin):
            return run()

    assert run() == old(), "road counts differ between the two thinnings"
    times = alternate({"skimage thin": old, "border thin": run}, args.reps, time.process_time)
    print(machine())
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {len(pairs)} images")
    print(f"{'thinning':<14} {'s/img (CPU)':>12} {'img/s':>8}")
    for k, s in times.items():
        print(f"{k:<14} {s / len(pairs):>12.4f} {len(pairs) / s:>8.1f}")
    print(f"ratio old/new {times['skimage thin'] / times['border thin']:.2f}x; counts identical")


if __name__ == "__main__":
    main()
