"""Time to the error of an unusable scene, and the cost of the check on a normal one.

``predict_scene`` refuses a constant or all-nodata scene before any window is predicted
(``SceneInputs.check_usable``: the overview read that fixes the normalisation proves "not
constant" for a scene with content; a flat-looking one is confirmed by a full-resolution strip
pass that reads and never predicts). Before, the refusal came after every window had been
predicted. ``before`` here runs the same code with the check switched off (the old order: the
flag gathered while the windows are predicted), ``after`` the shipped code. (``before`` keeps
the rest of the shipped code: an all-nodata scene's row-by-row proof that no pixel is valid. Run
with ``PYTHONPATH`` at an older checkout for the code before it, whose rows are all ``after``.)

Scenes (``--size`` px square, uint8, 3 bands, tiled 256 px, deflate, generated strip by strip):
``normal`` (blobs and noise), ``zeros`` (all 0, no nodata), ``zeros+ovr`` (the same with
overviews, as GIS exports often have), ``nan`` (float32, all NaN). The predictor is the smoothing
stand-in (:class:`~sam2elnet.engine.executors.SmoothingPredictor`): its windows cost ~ nothing,
so "before" times are a floor; with the network every predicted window costs seconds more.

Run (one thread, as the docs' numbers)::

    SAM2ELNET_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_scene_refusal.py --size 4096
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_scene(path: Path, size: int, kind: str, strip: int = 512) -> Path:
    """Write one test scene strip by strip (never whole in memory)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    dtype = "float32" if kind == "nan" else "uint8"
    prof = dict(
        driver="GTiff", height=size, width=size, count=3, dtype=dtype,
        crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10),
        tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    xs = np.sin(np.arange(size, dtype=np.float32) / 180.0)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **prof) as dst:
        for r0 in range(0, size, strip):
            rows = min(strip, size - r0)
            if kind == "normal":
                ys = np.sin(np.arange(r0, r0 + rows, dtype=np.float32) / 230.0)
                band = 40 + 150 * ((ys[:, None] * xs[None, :]) > 0.55)
                band = band + rng.integers(0, 30, (rows, size))
                block = np.repeat(band.astype(np.uint8)[None], 3, axis=0)
            elif kind == "nan":
                block = np.full((3, rows, size), np.nan, np.float32)
            else:
                block = np.zeros((3, rows, size), np.uint8)
            dst.write(block, window=rasterio.windows.Window(0, r0, size, rows))
        if kind.endswith("+ovr"):
            dst.build_overviews([2, 4, 8, 16], Resampling.nearest)
    return path


class Counting:
    """The smoothing stand-in, counting predicted windows."""

    def __init__(self) -> None:
        from sam2elnet.engine.executors import SmoothingPredictor

        self.inner = SmoothingPredictor(in_bands=3)
        self.in_bands = 3
        self.normalization = None
        self.windows = 0

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        self.windows += len(batch)
        return self.inner.predict_arrays(batch, coarse)


def run_one(src: Path, out: Path, check: bool) -> tuple[float, int, str]:
    """Seconds to the result or the error, windows predicted, outcome."""
    from sam2elnet.engine import scene_inputs
    from sam2elnet.engine.scene import predict_scene
    from sam2elnet.errors import DataError

    shipped = getattr(scene_inputs.SceneInputs, "check_usable", None)  # None: code before it
    if not check and shipped is not None:
        scene_inputs.SceneInputs.check_usable = lambda self: None  # type: ignore[method-assign]
    pred = Counting()
    t0 = time.perf_counter()
    try:
        predict_scene(src, out, pred, tile=1024, overlap=128, progress=False)
        outcome = "label written"
    except DataError as err:
        outcome = "error: " + str(err).split(": ", 2)[-1].split(" (")[0]
    finally:
        if shipped is not None:
            scene_inputs.SceneInputs.check_usable = shipped  # type: ignore[method-assign]
    return time.perf_counter() - t0, pred.windows, outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=2, help="best of N per row")
    ap.add_argument("--kinds", nargs="+", default=["normal", "zeros", "zeros+ovr", "nan"])
    args = ap.parse_args()
    print(f"scene {args.size}^2 px, 3 bands, tile 1024 / overlap 128, smoothing predictor")
    print(f"{'scene':<10} {'mode':<7} {'seconds':>8} {'windows':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            src = make_scene(Path(tmp) / f"{kind}.tif", args.size, kind)
            for mode in ("before", "after"):
                best = None
                for _ in range(args.repeats):
                    r = run_one(src, Path(tmp) / "out.tif", mode == "after")
                    best = r if best is None or r[0] < best[0] else best
                assert best is not None
                print(f"{kind:<10} {mode:<7} {best[0]:8.2f} {best[1]:8d}  {best[2]}")


if __name__ == "__main__":
    main()
