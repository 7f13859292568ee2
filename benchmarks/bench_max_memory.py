"""Peak resident memory of ``elnet annotate --max-memory B`` against B.

For each budget the script builds (once, under ``--work``) a random-weight model of the given size
with 3 input bands, asks the memory model (``Predictor.fits_whole``) for the largest square image
(a multiple of 16 px) it predicts whole within B - ``--images N`` of them, one folder - writes
3-band PNGs of uniform noise of that side (or of ``--side``), and runs::

    elnet annotate --model M --images IN --out OUT --max-memory B --no-progress [--tile T]

in a fresh child process, which writes its own peak RSS (``VmHWM`` of ``/proc/self/status``) at
exit (not ``ru_maxrss``, which Linux carries over ``exec`` from this parent). One JSON line per
budget: the side, the estimate, the peak, peak / budget, and whether the window path ran.

Run (one at a time on a shared machine; a few seconds each)::

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/bench_max_memory.py micro 500M 700M 800M
    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/bench_max_memory.py tiny 1G 1.5G
    PYTHONPATH=src .venv/bin/python benchmarks/bench_max_memory.py micro 800M --images 8
    PYTHONPATH=src .venv/bin/python benchmarks/bench_max_memory.py micro 700M --side 1200 --tile 256

Results: docs/benchmarks.md, "--max-memory against the measured peak".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_memory import ELNET_PEAK_CHILD, run_child  # noqa: E402  (one peak-RSS child)


def model_file(work: Path, size: str) -> Path:
    """A random-weight 3-band model of ``size`` saved as ``elnet train`` saves one."""
    path = work / f"{size}-3.pt"
    if path.exists():
        return path
    from common import build_ours

    from sam2elnet.model import save_model

    model = build_ours(size, in_bands=3, modality="optical")
    save_model(model, path, extra={"normalization": model.config.normalization})
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("size", help="model size: micro, tiny, ...")
    ap.add_argument("budgets", nargs="+", help="--max-memory values, e.g. 500M 800M 1.5G")
    ap.add_argument("--images", type=int, default=1, help="images of the side in the folder")
    ap.add_argument("--side", type=int, default=0, help="image side, px (default: the planned)")
    ap.add_argument("--tile", type=int, default=0, help="--tile for the window path")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = ap.parse_args()
    import cv2
    import numpy as np

    from sam2elnet.engine.predictor import Predictor

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-max-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    model = model_file(work, args.size)
    src = str(Path(__file__).resolve().parents[1] / "src")
    for budget in args.budgets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = Predictor.from_file(model, max_memory=budget)
        side = args.side
        if not side:  # the largest side (16 px steps) whose images fit the budget whole together
            side = 16
            while plan.fits_whole((side + 16) ** 2 * args.images):
                side += 16
        run = work / f"{args.size}-{budget}-{args.images}x{side}-{args.tile}"
        (run / "in").mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(args.images):
            img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            cv2.imwrite(str(run / "in" / f"i{i}.png"), img)
        out, hwm = run / "out", run / "hwm"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        cmd = [sys.executable, "-c", ELNET_PEAK_CHILD, "annotate", "--model", str(model)]
        cmd += ["--images", str(run / "in"), "--out", str(out), "--no-progress"]
        cmd += ["--max-memory", budget] + (["--tile", str(args.tile)] if args.tile else [])
        peak_gb, _, rc = run_child(cmd, dict(os.environ, PYTHONPATH=src), hwm)
        peak = peak_gb * 1e9
        row = {
            "size": args.size,
            "budget": budget,
            "images": args.images,
            "side": side,
            "estimate_mb": round(plan.whole_bytes(side * side * args.images) / 1e6, 1),
            "base_mb": round(plan.whole_bytes(0) / 1e6, 1),
            "peak_mb": round(peak / 1e6, 1),
            "peak_over_budget": round(peak / plan.max_memory, 3),
            "window_path": (out / "tiles").exists(),
            "exit": rc,
        }
        print(json.dumps(row), flush=True)
    print(f"(work folder: {work}; base_mb: the estimate before any pixel)")


if __name__ == "__main__":
    main()
