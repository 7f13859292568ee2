"""Scaling curves: time and peak memory vs work, one fresh process per point.

* ``annotate``: ``annotate_folder`` on 16 .. 128 images (256 px): seconds per image should stay
  constant and peak memory flat (the folder job streams chunks and writes each label at once);
* ``train``: one epoch of ``engine.train.train`` (``elnet train``) vs the number of training images
  (crop 128 px) and vs the crop size (128 .. 512 px): images/s should not fall with the image count
  and peak memory should not grow with it; with the crop size, time and memory grow with the pixels.

Scene size (area up to 20,000^2 px) is ``benchmarks/bench_scene.py``; ``run_all.py`` runs both.
Peak memory is ``VmHWM`` of the point's own process (``ru_maxrss`` would inherit the parent's).

Usage::

    python benchmarks/bench_scale.py              # both curves
    python benchmarks/bench_scale.py --quick      # fewer / smaller points
    python benchmarks/bench_scale.py --smoke      # micro model, tiny points: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_annotate(model: str, images: str, n: int, out: str, batch: int) -> dict:
    sys.path.insert(0, str(HERE))
    from common import peak_rss_mb  # first: the product's thread policy before torch

    # isort: split
    from sam2elnet.engine.infer import annotate_folder

    files = sorted(Path(images).glob("*.png"))[:n]
    t = time.perf_counter()
    annotate_folder(model, files, out, batch_size=batch, tta=0, progress=False)
    dt = time.perf_counter() - t
    return {"n": n, "seconds": dt, "s_per_img": dt / n, "peak_rss_mb": peak_rss_mb()}


def one_train(data: str, out: str, n: int, crop: int, model_size: str, batch: int) -> dict:
    sys.path.insert(0, str(HERE))
    from common import peak_rss_mb  # first: the product's thread policy before torch

    # isort: split
    import warnings

    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train import train

    cfg = TrainConfig(
        data=Path(data),
        out=Path(out),
        size=model_size,
        epochs=1,
        batch_size=batch,
        image_size=crop,
        max_train=n,
        val_fraction=0.1,
        fit_quality=False,
        progress=False,
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train(cfg)
    dt = time.perf_counter() - t
    row = res.history[-1]
    return {
        "n": n,
        "crop": crop,
        "seconds": dt,
        "train_img_s": float(row["train_img_per_s"]),
        "peak_rss_mb": peak_rss_mb(),
    }


def _child(kind: str, spec: dict) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps({"kind": kind, **spec})],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{kind} {spec} failed:\n{res.stderr[-1500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--curves", nargs="+", default=["annotate", "train"])
    ap.add_argument("--counts", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--size", type=int, default=256, help="annotate image size")
    ap.add_argument("--train-counts", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--crops", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="annotate 8..64 at 128 px; train 16/32")
    ap.add_argument("--smoke", action="store_true", help="micro model, 2-4 images at 64 px")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        spec = json.loads(args.one)
        kind = spec.pop("kind")
        print(json.dumps((one_annotate if kind == "annotate" else one_train)(**spec)))
        return 0
    if args.smoke:
        args.model_size, args.size, args.counts = "micro", 64, [2, 4]
        args.train_counts, args.crops, args.batch = [4, 8], [64, 96], 4
    elif args.quick:
        args.size, args.counts = 128, [8, 16, 32, 64]
        args.train_counts, args.crops = [16, 32], [128, 256]

    sys.path.insert(0, str(HERE))
    from common import LEVERS, build_ours, lever_precision, machine, save_ours, write_images

    print(f"machine: {machine()}")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shipped = "bf16" if lever_precision(LEVERS["default"]) == "bf16" else "fp32"
        if "annotate" in args.curves:
            model = save_ours(build_ours(args.model_size), work / "model.pt")
            write_images(work / "images", max(args.counts), args.size)
            print(
                f"\nannotate_folder, Hiera-{args.model_size}, {args.size} px, batch {args.batch}, "
                f"{shipped}, one view"
            )
            print("    n   seconds  s/image  peak RSS MB")
            rows = results.setdefault("annotate", [])
            for n in args.counts:
                spec = {
                    "model": str(model),
                    "images": str(work / "images"),
                    "n": n,
                    "out": str(work / f"out{n}"),
                    "batch": args.batch,
                }
                r = _child("annotate", spec)
                rows.append(r)
                print(
                    f"{n:5d}  {r['seconds']:8.2f}  {r['s_per_img']:7.3f}  {r['peak_rss_mb']:11.0f}",
                    flush=True,
                )
        if "train" in args.curves:
            from sam2elnet.data.synthetic import generate_dataset

            print(
                f"\ntraining, one epoch of `elnet train`, Hiera-{args.model_size}, batch "
                f"{args.batch}, {shipped}"
            )
            print(" crop      n   seconds  train img/s  peak RSS MB")
            rows = results.setdefault("train", [])
            points = [(min(args.crops), n) for n in args.train_counts] + [
                (c, min(args.train_counts)) for c in args.crops if c != min(args.crops)
            ]
            for crop, n in points:
                data = work / f"data{crop}"
                if not data.exists():
                    count = int(max(args.train_counts) / 0.9) + 2
                    generate_dataset(data, count=count, size=crop, seed=0, progress=False)
                spec = {
                    "data": str(data),
                    "out": str(work / f"run{crop}_{n}"),
                    "n": n,
                    "crop": crop,
                    "model_size": args.model_size,
                    "batch": args.batch,
                }
                r = _child("train", spec)
                rows.append(r)
                print(
                    f"{crop:5d}  {n:5d}  {r['seconds']:8.2f}  {r['train_img_s']:11.2f}  "
                    f"{r['peak_rss_mb']:11.0f}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
