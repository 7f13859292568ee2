"""The look before a job at a large raster (is this ``--images`` folder masks, this
``--labels`` folder images?): time of the bounded sample, run under ``/usr/bin/time -v`` for the
peak RSS (docs/benchmarks.md, "The images-vs-masks check on a large raster").

    python benchmarks/bench_content_check.py --make DIR      # writes the test rasters
    /usr/bin/time -v python benchmarks/bench_content_check.py FILE

``--make`` writes ``photo_striped.tif`` / ``photo_tiled.tif`` (10,000^2 px, 3 bands, uint8, JPEG
(YCbCr) compressed, striped / 256 px tiles: about 2 MB on disk, 300 MB decoded) and
``raw_6000.tif`` (6,000^2 px, 3 bands of uniform noise, uncompressed: 108 MB, over the old 64 MiB
limit of the check), written strip by strip.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np


def make(folder: Path) -> None:
    """Write the three test rasters into ``folder`` (see the module docstring)."""
    import rasterio
    from rasterio.windows import Window

    folder.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")  # not georeferenced
    side = 10_000
    for tiled in (False, True):
        kw: dict[str, object] = dict(driver="GTiff", width=side, height=side, count=3,
                                     dtype="uint8", compress="jpeg", photometric="ycbcr")  # fmt: skip
        if tiled:
            kw.update(tiled=True, blockxsize=256, blockysize=256)
        name = f"photo_{'tiled' if tiled else 'striped'}.tif"
        with rasterio.open(folder / name, "w", **kw) as dst:
            xx = np.arange(side)
            for r0 in range(0, side, 512):
                h = min(512, side - r0)
                yy = np.arange(r0, r0 + h)[:, None]
                base = np.sin(xx / 300.0)[None] * 60 + np.cos(yy / 200.0) * 60 + 120
                rgb = np.stack([base, base * 0.8 + 20 * np.sin(yy / 50.0), 255 - base])
                dst.write(rgb.clip(0, 255).astype(np.uint8), window=Window(0, r0, side, h))
    side = 6000
    rng = np.random.default_rng(0)
    with rasterio.open(folder / "raw_6000.tif", "w", driver="GTiff", width=side, height=side,
                       count=3, dtype="uint8") as dst:  # fmt: skip
        for r0 in range(0, side, 500):
            noise = rng.integers(0, 256, (3, 500, side), dtype=np.uint8)
            dst.write(noise, window=Window(0, r0, side, 500))


def look(path: Path) -> None:
    """Time both content rules on ``path``, as the checks before a job call them."""
    from sam2elnet.data.masks import image_like_label, image_values

    t0 = time.perf_counter()
    values = image_values(path)
    t1 = time.perf_counter()
    kind = image_like_label(path)
    t2 = time.perf_counter()
    print(f"image_values {t1 - t0:.2f} s ({values}); image_like_label {t2 - t1:.2f} s ({kind!r})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--make", action="store_true", help="write the test rasters into PATH")
    args = ap.parse_args()
    if args.make:
        make(args.path)
    else:
        look(args.path)


if __name__ == "__main__":
    main()
