"""Scaling of ``annotate_folder``: time and peak memory vs number of images.

Each count runs in a fresh subprocess (so ``ru_maxrss`` is that run's own peak). Time should grow
linearly (constant seconds per image) and peak memory should stay flat, because the folder job
streams images in fixed-size chunks and writes every label as soon as it is predicted.

Usage: ``python benchmarks/bench_scale.py [--quick] [--counts 8 16 32 64] [--size 128]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(model: str, images: str, n: int, out: str, batch: int, precision: str) -> dict:
    """Annotate the first ``n`` images of ``images`` (in this process) and return time and memory."""
    from sam2elnet.engine.infer import annotate_folder

    files = sorted(Path(images).glob("*.png"))[:n]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    annotate_folder(model, files, out, batch_size=batch, precision=precision, progress=False)
    dt = time.perf_counter() - t
    return {
        "n": n,
        "seconds": dt,
        "s_per_img": dt / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": base_rss,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--quick", action="store_true", help="counts 8 16 32 64 at 128 px")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(**json.loads(args.one))))
        return 0
    from bench_infer import machine, make_model_file, write_images

    from sam2elnet.engine.runtime import set_threads

    set_threads()

    counts, size = (args.counts, args.size) if not args.quick else ([8, 16, 32, 64], 128)
    print(f"machine: {machine()}")
    print(
        f"annotate_folder, Hiera-{args.model_size}, {size} px, batch {args.batch}, {args.precision}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = make_model_file(work / "model.pt", args.model_size)
        write_images(work / "images", max(counts), size)
        print("    n   seconds  s/image  peak RSS MB")
        for n in counts:
            spec = {
                "model": str(model),
                "images": str(work / "images"),
                "n": n,
                "out": str(work / f"out{n}"),
                "batch": args.batch,
                "precision": args.precision,
            }
            res = subprocess.run(
                [sys.executable, __file__, "--one", json.dumps(spec)],
                capture_output=True,
                text=True,
                check=False,
            )
            if res.returncode != 0:
                print(f"{n}: failed\n{res.stderr[-800:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(
                f"{n:5d}  {r['seconds']:8.2f}  {r['s_per_img']:7.3f}  {r['peak_rss_mb']:11.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
