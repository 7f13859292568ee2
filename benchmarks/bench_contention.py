"""Throughput on a busy machine: annotate and train, idle and next to CPU-bound competitors.

Each measurement is a fresh Python process that imports ``sam2elnet`` exactly as a user would (so
the product's thread policy applies: thread count from the usable CPUs, sleeping OpenMP threads),
warms up, then runs its workload for ``--seconds`` and reports images/s:

* ``annotate``: ``annotate_folder`` (read, normalise, network, quality score, write) on a folder of
  synthetic SAR images, repeated into fresh output folders;
* ``train``: ``engine.train``'s step (bf16, coarse label on half the batch, full loss, backward,
  clipping, AdamW) on fixed random inputs.

Beside it run 0, 1 or 2 competitor processes: pure-Python busy loops (one core each), started just
before the workload and stopped right after it (they also end by themselves after a deadline).
Printed: images/s and the **ratio to idle** with its goal — >= 0.40 with one competitor on 2 cores
(a fair share is 0.5) and >= 1/3 (no run slower than 3x idle) with two.

``--compare-off`` repeats everything with ``SAM2ELNET_OMP_DEFAULTS=0`` (the product sets no OpenMP
variables: the spinning default that used to collapse under contention), for the record.

Usage::

    python benchmarks/bench_contention.py                   # tiny model, 256 px, 15 s per point
    python benchmarks/bench_contention.py --quick           # 8 s per point
    python benchmarks/bench_contention.py --smoke           # micro model, 64 px, 2 s per point
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


# ------------------------------------------------------------------------ the measured workload
def workload(kind: str, seconds: float, size: int, model_size: str, work: str, batch: int) -> dict:
    """Run ``kind`` in this process for ``seconds`` after a warm-up; return images/s."""
    sys.path.insert(0, str(HERE))
    import common  # noqa: F401  (imports sam2elnet first: the thread policy)

    # isort: split
    import torch

    from sam2elnet.utils.threads import applied

    work_p = Path(work)
    if kind == "annotate":
        from common import write_images

        from sam2elnet.engine.infer import annotate_folder
        from sam2elnet.engine.predictor import Predictor

        files = write_images(work_p / f"img{size}", batch, size)
        pred = Predictor.from_file(work_p / f"model-{model_size}.pt", batch_size=batch, tta=0)
        outs = itertools.count()

        def one() -> int:
            out = work_p / f"out-{os.getpid()}-{next(outs)}"
            annotate_folder(pred.path, files, out, predictor=pred, progress=False)
            return len(files)

    elif kind == "train":
        from bench_train import our_step
        from common import LEVERS, apply_lever, build_ours

        lever = LEVERS["default"]  # as elnet train runs it (channels-last model and inputs)
        step = our_step(apply_lever(build_ours(model_size), lever, train=True), lever, batch, size)

        def one() -> int:
            step()
            return batch

    else:
        raise ValueError(kind)
    one()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += one()
    dt = time.perf_counter() - t0
    pol = applied()
    return {
        "images": n,
        "seconds": dt,
        "img_s": n / dt,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "policy_set": pol.set_env if pol else {},
    }


# ------------------------------------------------------------------------ the driver
def run_point(args: argparse.Namespace, kind: str, competitors: int, off: bool, work: Path) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME"):
        if not args.keep_env:
            env.pop(var, None)
    env.pop("SAM2ELNET_THREADS", None)
    if args.threads:
        env["SAM2ELNET_THREADS"] = str(args.threads)
    if off:
        env["SAM2ELNET_OMP_DEFAULTS"] = "0"
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    spec = {
        "kind": kind,
        "seconds": args.seconds,
        "size": args.size,
        "model_size": args.model_size,
        "work": str(work),
        "batch": args.batch,
    }
    # a point that takes longer than this counts as collapsed (reported, not waited for);
    # competitors end by themselves after it even if this driver is killed
    deadline = args.point_timeout or (90 + 6 * args.seconds)
    busy = [
        subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=deadline)])
        for _ in range(competitors)
    ]
    try:
        res = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=deadline,
        )
    except subprocess.TimeoutExpired:
        return {
            "images": 0,
            "seconds": deadline,
            "img_s": 0.0,
            "threads": 0,
            "omp_wait_policy": "?",
            "timed_out": True,
        }
    finally:
        for p in busy:
            p.terminate()
        for p in busy:
            p.wait()
    if res.returncode != 0:
        raise RuntimeError(f"{kind} with {competitors} competitors failed:\n{res.stderr[-1500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", nargs="+", default=["annotate", "train"])
    ap.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=15.0, help="measured time per point")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--point-timeout", type=float, default=None, help="s per point (90 + 6 x --seconds)"
    )
    ap.add_argument("--threads", type=int, default=None, help="force SAM2ELNET_THREADS")
    ap.add_argument("--compare-off", action="store_true", help="also without the OpenMP policy")
    ap.add_argument("--keep-env", action="store_true", help="keep the caller's OMP_* variables")
    ap.add_argument("--quick", action="store_true", help="8 s per point")
    ap.add_argument("--smoke", action="store_true", help="micro model, 64 px, 2 s per point")
    ap.add_argument("--json", help="write the results and goals here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(workload(**json.loads(args.one))))
        return 0
    if args.smoke:
        args.seconds, args.size, args.model_size = 2.0, 64, "micro"
    elif args.quick:
        args.seconds = 8.0
    if 0 not in args.competitors:
        args.competitors.insert(0, 0)

    # a SIGTERM (e.g. `timeout`) must still stop the competitors in run_point's finally
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, str(HERE))
    from common import Goals, build_ours, machine, save_ours

    print(f"machine: {machine()}")
    print(
        f"workloads: {', '.join(args.workloads)}; Hiera-{args.model_size}, {args.size} px, batch "
        f"{args.batch}, {args.seconds:g} s measured per point; competitors: pure-Python busy loops"
    )
    goals = Goals()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        save_ours(build_ours(args.model_size), work / f"model-{args.model_size}.pt")
        print(f"{'workload':<9} {'policy':<8} competitors  img/s  threads  wait policy  x idle")
        for kind, off in itertools.product(args.workloads, [False, True][: 1 + args.compare_off]):
            idle = None
            for k in args.competitors:
                r = run_point(args, kind, k, off, work)
                idle = r["img_s"] if k == 0 else idle
                ratio = r["img_s"] / idle if idle else float("nan")
                policy = "off" if off else "product"
                note = f"  (timed out after {r['seconds']:.0f} s)" if r.get("timed_out") else ""
                print(
                    f"{kind:<9} {policy:<8} {k:11d}  {r['img_s']:5.2f}  {r['threads']:7d}  "
                    f"{r['omp_wait_policy']:>11}  {ratio:6.2f}{note}",
                    flush=True,
                )
                results.append({"workload": kind, "policy": policy, "competitors": k, **r})
                if not off and k == 1:
                    goals.add(f"{kind}: 1 competitor / idle", ratio, 0.40)
                if not off and k == 2:
                    goals.add(f"{kind}: 2 competitors / idle (3x slower = 0.33)", ratio, 1 / 3)
    goals.print("bench_contention")
    goals.dump(args.json, {"results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
