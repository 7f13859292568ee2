"""Peak resident memory of every command on one large image, against the 1.5 GB goal.

For each image size (one square 1-band uint8 GeoTIFF with a matching coarse/truth label, written
strip by strip so the generator itself stays small) the script runs, each in a fresh child
process, the commands a user runs on such an image::

    elnet annotate  --model M --images IMG --out A --no-progress
    elnet enhance   --model M --images IMG --labels LABELS --out E --no-progress
    elnet evaluate  --pred A/labels --truth LABELS
    elnet evaluate  --pred A/labels --truth LABELS --boundary --no-roads   (evaluate-boundary)
    elnet export    --labels A/labels --out A/labels.gpkg                  (export)
    elnet export    --labels A/labels --out A/coco.json --format coco      (export-coco)
    elnet export    --labels A/labels --out A/ls/tasks.json --format label-studio  (export-ls)
    elnet train     --data DATA --out T --size SIZE --epochs 3 --image-size 256 --no-progress

(``train`` on the one-image folder: three steps, the data check, the statistics and the quality
fit; a GeoTIFF above 64 MB of decoded pixels - 2,300^2 px here - is read by windows, see
docs/training.md).

and reads each child's own peak RSS (``VmHWM`` from ``/proc/self/status``, written by the child at
exit; not ``ru_maxrss``, which Linux carries over ``exec`` from this parent, torch loaded). It prints a table: peak RSS in GB, whether it meets the goal (default 1.5 GB, the
``--max-memory`` default) and seconds per megapixel (time should grow linearly with the area).

Run::

    .venv/bin/python benchmarks/bench_memory.py --quick            # 1,000^2 and 3,000^2 px
    .venv/bin/python benchmarks/bench_memory.py --sizes 1000 3000 6000 12000 --model-size tiny
    .venv/bin/python benchmarks/bench_memory.py --sizes 256 512 --model-size micro   # smoke run

The model is a random-weight network of ``--model-size`` (default tiny, the smallest SAM2 size;
memory does not depend on the weights) saved once under ``--work``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import build_ours, save_ours  # noqa: E402

GOAL_GB = 1.5
COMMANDS = (
    "annotate",
    "enhance",
    "evaluate",
    "evaluate-boundary",
    "export",
    "export-coco",
    "export-ls",
    "train",
)


def make_pair(img: Path, label: Path, size: int, strip: int = 512) -> None:
    """A 1-band uint8 GeoTIFF (SAR-like amplitude, as the benchmark model takes) with smooth
    blobs and noise, and its uint8 0/255 label."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    geo = {"crs": "EPSG:32633", "transform": from_origin(500000, 4000000, 10, 10)}
    common = dict(driver="GTiff", height=size, width=size, dtype="uint8", tiled=True,
                  blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER", **geo)  # fmt: skip
    xs = np.sin(np.arange(size, dtype=np.float32) / 180.0)
    with (
        rasterio.Env(GDAL_PAM_ENABLED="NO"),
        rasterio.open(img, "w", count=1, **common) as di,
        rasterio.open(label, "w", count=1, **common) as dl,
    ):
        for r0 in range(0, size, strip):
            rows = min(strip, size - r0)
            ys = np.sin(np.arange(r0, r0 + rows, dtype=np.float32) / 230.0)
            blob = (ys[:, None] * xs[None, :]) > 0.55
            rng = np.random.default_rng(r0)
            win = Window(0, r0, size, rows)
            band = 20 + rng.integers(0, 40, (rows, size), dtype=np.uint8) + blob * 150
            di.write(band.astype(np.uint8), 1, window=win)
            dl.write((blob * 255).astype(np.uint8), 1, window=win)


# `python -c ELNET_PEAK_CHILD ARGS` runs `elnet ARGS` and writes its own peak RSS (VmHWM, KiB)
# to $BENCH_HWM at exit (also used by bench_max_memory.py)
ELNET_PEAK_CHILD = """
import atexit, os, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["BENCH_HWM"], "w").write(line.split()[1])
atexit.register(_hwm)
from sam2elnet.cli import entry
sys.argv[0] = "elnet"
entry()
"""


def run_child(args: list[str], env: dict[str, str], hwm: Path) -> tuple[float, float, int]:
    """Run ``args``; (peak RSS in GB of that child alone, seconds, exit code)."""
    hwm.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(args, env={**env, "BENCH_HWM": str(hwm)}, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"  {args[3]}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    kib = float(hwm.read_text()) if hwm.exists() else float("nan")
    return kib * 1024 / 1e9, dt, proc.returncode


def commands(cmd: str, work: Path, model: Path, size: int, model_size: str) -> list[str]:
    d = work / f"s{size}"
    img, labels = d / "data" / "images" / "img.tif", d / "data" / "masks"
    elnet = [sys.executable, "-c", ELNET_PEAK_CHILD]
    return {
        "annotate": [*elnet, "annotate", "--model", str(model), "--images", str(img),
                     "--out", str(d / "annotate"), "--no-progress"],
        "enhance": [*elnet, "enhance", "--model", str(model), "--images", str(img),
                    "--labels", str(labels), "--out", str(d / "enhance"), "--no-progress"],
        "evaluate": [*elnet, "evaluate", "--pred", str(d / "annotate" / "labels"),
                     "--truth", str(labels)],
        "evaluate-boundary": [*elnet, "evaluate", "--pred", str(d / "annotate" / "labels"),
                              "--truth", str(labels), "--boundary", "--no-roads"],
        "export": [*elnet, "export", "--labels", str(d / "annotate" / "labels"),
                   "--out", str(d / "annotate" / "labels.gpkg")],
        "export-coco": [*elnet, "export", "--labels", str(d / "annotate" / "labels"),
                        "--out", str(d / "annotate" / "coco.json"), "--format", "coco"],
        "export-ls": [*elnet, "export", "--labels", str(d / "annotate" / "labels"),
                      "--out", str(d / "annotate" / "ls" / "tasks.json"),
                      "--format", "label-studio"],
        "train": [*elnet, "train", "--data", str(d / "data"), "--out", str(d / "train"),
                  "--size", model_size, "--epochs", "3", "--image-size", "256", "--no-progress"],
    }[cmd]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 6000, 12000])
    ap.add_argument("--quick", action="store_true", help="only 1,000^2 and 3,000^2 px")
    ap.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=COMMANDS)
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--goal-gb", type=float, default=GOAL_GB)
    args = ap.parse_args()
    sizes = [1000, 3000] if args.quick else args.sizes
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / f"{args.model_size}.pt"
    if not model.exists():
        save_ours(build_ours(args.model_size), model)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    rows: list[tuple[str, int, float, float, int]] = []
    for size in sizes:
        if rows:  # time is linear in area: the last size's s/Mpx predicts this one
            last = rows[-1][1]
            est = sum(spm for c, sz, _, spm, _ in rows if sz == last) * size * size / 1e6
            print(f"{size}^2 px: about {est / 60:.0f} min (from the {last}^2 px s/Mpx)")
        d = work / f"s{size}"
        (d / "data" / "images").mkdir(parents=True, exist_ok=True)
        (d / "data" / "masks").mkdir(parents=True, exist_ok=True)
        img, lab = d / "data" / "images" / "img.tif", d / "data" / "masks" / "img.tif"
        if not img.exists():
            make_pair(img, lab, size)
        for cmd in args.commands:
            argv = commands(cmd, work, model, size, args.model_size)
            gb, dt, rc = run_child(argv, env, work / "hwm.txt")
            mpx = size * size / 1e6
            rows.append((cmd, size, gb, dt / mpx, rc))
            print(f"{cmd:17s} {size:>6d} px  peak {gb:6.2f} GB  {dt / mpx:7.2f} s/Mpx  exit {rc}")
    print(f"\nmodel {args.model_size}, goal <= {args.goal_gb:.1f} GB peak RSS per command")
    print(f"{'command':17s} {'size px':>9s} {'peak GB':>8s} {'goal':>5s} {'s/Mpx':>8s}")
    for cmd, size, gb, spm, rc in rows:
        ok = "ok" if gb <= args.goal_gb and rc == 0 else ("FAIL" if rc else "over")
        print(f"{cmd:17s} {size:>7d}^2 {gb:8.2f} {ok:>5s} {spm:8.2f}")


if __name__ == "__main__":
    main()
