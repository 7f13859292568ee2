"""Every benchmark in one go (``make bench``), then every ratio with its goal.

Runs, in this order, each in its own process: ``bench_infer.py``, ``bench_train.py``,
``bench_downstream.py``, ``bench_contention.py``, ``bench_scale.py``, ``bench_scene.py`` and
``bench_heap.py``; streams their output; writes
their JSON results to ``--out`` (default ``bench-out/``) and ends with all ``GOAL`` lines and the
total wall time.

Modes: default = the ``--quick`` settings of each script (sized for <= 15 minutes on an idle 2-core
machine; ``make bench``); ``--full`` = each script's full settings (``make bench-full``, about
20-25 minutes); ``--smoke`` = the smallest settings, only to check that everything runs.

Measure on a quiet machine: the first line of each script prints the load average; anything above
~0.5 on 2 cores makes the numbers unreliable.
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

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="full settings (~20-25 min)")
    mode.add_argument("--smoke", action="store_true", help="smallest settings (checks only)")
    ap.add_argument("--out", default="bench-out", help="folder for the JSON results")
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="infer train downstream contention scale scene heap (default all)",
    )
    ap.add_argument("--compile", action="store_true", help="bench_infer: add the compile lever")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    flag = ["--smoke"] if args.smoke else ([] if args.full else ["--quick"])
    scene_tmp = tempfile.mkdtemp(prefix="bench_scene_")
    scene_sizes = ["500", "1000"] if args.smoke else ["2000", "6000", "20000"]
    scene_model = ["--micro", "--model-sizes", "256"] if args.smoke else ["--micro"]
    plan = {
        "infer": ["bench_infer.py", *flag, *(["--compile"] if args.compile else [])],
        "train": ["bench_train.py", *flag],
        "downstream": ["bench_downstream.py", *flag],
        "contention": ["bench_contention.py", *flag],
        "scale": ["bench_scale.py", *flag],
        "scene": ["bench_scene.py", "--sizes", *scene_sizes, *scene_model, "--workdir", scene_tmp],
        "heap": ["bench_heap.py", *flag],
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    failed = []
    times = {}
    for name, cmd in plan.items():
        if args.only and name not in args.only:
            continue
        js = out / f"{name}.json"
        full = [sys.executable, str(HERE / cmd[0]), *cmd[1:]]
        if name != "scene":
            full += ["--json", str(js)]
        print(f"\n===== {name}: {' '.join(cmd)}", flush=True)
        t = time.perf_counter()
        rc = subprocess.call(full, env=env, cwd=HERE)
        times[name] = time.perf_counter() - t
        print(f"===== {name}: {times[name]:.0f} s, exit code {rc}", flush=True)
        if rc != 0:
            failed.append(name)
    import shutil

    shutil.rmtree(scene_tmp, ignore_errors=True)
    print("\n===== all goals")
    for name in plan:
        js = out / f"{name}.json"
        if not js.is_file():
            continue
        for g in json.loads(js.read_text()).get("goals", []):
            fmt = ".0%" if g["unit"] == "%" else ".3f"
            unit = "" if g["unit"] == "%" else g["unit"]
            op = ">=" if g["higher"] else "<="
            print(
                f"GOAL {g['name']:<58} {format(g['value'], fmt) + unit:>8}  "
                f"(goal {op} {format(g['goal'], fmt) + unit})  {'met' if g['met'] else 'NOT met'}"
            )
    total = time.perf_counter() - t0
    print(
        f"\ntotal {total / 60:.1f} min ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
        + f"); JSON in {out}/"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
