"""Peak memory and time of whole-scene prediction versus scene size.

Each size runs in a fresh subprocess (its own peak RSS, ``VmHWM``) on a synthetic
GeoTIFF generated strip by strip on disk (never held in memory either). The default predictor is
the deterministic :class:`~sam2elnet.engine.executors.SmoothingPredictor` (a Gaussian filter and a
sigmoid), which isolates the cost of the scene machinery itself: windowed reads, normalisation,
blending, streaming writes. ``--model PATH`` (or ``--micro``, which builds a random micro model)
adds rows with the real network at small sizes.

Run::

    .venv/bin/python benchmarks/bench_scene.py                     # 2k, 6k, 20k px, fake predictor
    .venv/bin/python benchmarks/bench_scene.py --sizes 2000 6000 --micro --model-sizes 512 1024

The claim to check: peak RSS stays flat while the scene grows 100x in area, and time grows
linearly with the area (seconds per megapixel roughly constant).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_scene(path: Path, size: int, strip: int = 512) -> None:
    """Synthetic uint8 single-band scene: smooth blobs plus noise, written strip by strip."""
    import rasterio
    from rasterio.transform import from_origin

    prof = dict(
        driver="GTiff",
        height=size,
        width=size,
        count=1,
        dtype="uint8",
        nodata=0,
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 10, 10),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        BIGTIFF="IF_SAFER",
    )
    xs = np.arange(size, dtype=np.float32)
    sx = np.sin(xs / 180.0)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **prof) as dst:
        for r0 in range(0, size, strip):
            rows = min(strip, size - r0)
            sy = np.sin((np.arange(r0, r0 + rows, dtype=np.float32)) / 230.0)
            blob = (sy[:, None] * sx[None, :]) > 0.55
            rng = np.random.default_rng(r0)
            img = (
                20 + rng.integers(0, 40, (rows, size), dtype=np.uint8) + blob.astype(np.uint8) * 150
            )
            img[img == 0] = 1
            dst.write(img.astype(np.uint8), 1, window=rasterio.windows.Window(0, r0, size, rows))


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``) in MB.

    Not ``getrusage().ru_maxrss``: Linux carries that over ``exec`` from the forking parent, so a
    child of a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(args: argparse.Namespace) -> None:
    """Child process: predict one scene and print a JSON line with time and peak RSS."""
    import warnings

    warnings.simplefilter("ignore")
    # import what a scene run imports lazily, so the baseline includes the libraries
    import geopandas  # noqa: F401
    import rasterio  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import tqdm  # noqa: F401

    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene import predict_scene
    from sam2elnet.pipeline.scenes import load_scene_predictor

    if args.model:
        pred = load_scene_predictor(args.model, batch_size=args.batch_size)
    else:
        pred = SmoothingPredictor()
    # imports and model loaded: this is the baseline the scene adds to
    base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    res = predict_scene(
        args.scene,
        args.out,
        pred,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        prob_path=args.prob,
        progress=False,
    )
    dt = time.perf_counter() - t0
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "seconds": dt,
                "peak_rss_mb": peak,
                "base_rss_mb": base_rss,
                "windows": res.n_predicted,
                "foreground": res.foreground_fraction,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 6000, 20000])
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--overlap", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument(
        "--model", type=str, default=None, help="model file: extra rows with the real network"
    )
    ap.add_argument(
        "--micro", action="store_true", help="build a random micro model for the model rows"
    )
    ap.add_argument("--model-sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--model-tile", type=int, default=256)
    ap.add_argument("--model-overlap", type=int, default=32)
    ap.add_argument(
        "--prob", action="store_true", help="also write the float32 probability GeoTIFF"
    )
    ap.add_argument("--workdir", type=Path, default=None)
    # child mode
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scene", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        if args.prob:
            args.prob = args.out.with_name(args.out.stem + "_prob.tif")
        else:
            args.prob = None
        run_one(args)
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_scene_"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if args.micro and model is None:
        import warnings

        warnings.simplefilter("ignore")
        from sam2elnet.model import ModelConfig, build_model, save_model

        model = str(work / "micro.pt")
        save_model(
            build_model(ModelConfig(size="micro", in_bands=1)),
            model,
            extra={"normalization": {"method": "percentile"}},
        )

    plan = [("fake", s, args.tile, args.overlap, None) for s in args.sizes]
    if model:
        plan += [("model", s, args.model_tile, args.model_overlap, model) for s in args.model_sizes]
    rows = []
    for kind, size, tile, overlap, mdl in plan:
        scene = work / f"scene_{size}.tif"
        if not scene.exists():
            t = time.perf_counter()
            make_scene(scene, size)
            print(
                f"# generated {scene.name} ({scene.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s",
                flush=True,
            )
        out = work / f"out_{kind}_{size}.tif"
        cmd = [
            sys.executable,
            __file__,
            "--one",
            "--scene",
            str(scene),
            "--out",
            str(out),
            "--tile",
            str(tile),
            "--overlap",
            str(overlap),
            "--batch-size",
            str(args.batch_size),
        ]
        if mdl:
            cmd += ["--model", mdl]
        if args.prob:
            cmd += ["--prob"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(proc.returncode)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        mpx = size * size / 1e6
        rows.append(
            (
                kind,
                size,
                tile,
                overlap,
                r["windows"],
                r["seconds"],
                r["seconds"] / mpx,
                r["base_rss_mb"],
                r["peak_rss_mb"],
            )
        )
        print(
            f"# {kind} {size}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True
        )
        out.unlink(missing_ok=True)

    print()
    print(
        "| predictor | scene (px) | tile/overlap | windows | time (s) | s / Mpx | RSS after load (MB) | peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind, size, tile, overlap, n, sec, spm, base, peak in rows:
        print(
            f"| {kind} | {size:,} x {size:,} | {tile}/{overlap} | {n} | {sec:.1f} | {spm:.2f} | {base:.0f} | {peak:.0f} |"
        )
    print(f"\n(scenes kept in {work}; delete when done)")


if __name__ == "__main__":
    main()
