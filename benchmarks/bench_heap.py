"""The heap policy (``sam2elnet.utils.heap``) against glibc's malloc defaults, side by side.

The policy is process-wide (``mallopt`` at ``import sam2elnet``), so each contender runs in its own
fresh child process, and the children alternate: glibc defaults (``SAM2ELNET_HEAP_MB=0``), as
shipped, glibc defaults, as shipped, ... (``--rounds`` pairs), so a change in machine load hits both
alike. The shell's own allocator settings (``GLIBC_TUNABLES``, ``MALLOC_*``, ``LD_PRELOAD``) are
left out of the children (:func:`child_env`): the policy would step aside for them. Each child builds our network as shipped (Hiera-tiny, random weights, ``build_ours``), runs
two warm-up forwards and then ``--forwards`` timed forwards of one batch of the product's size
(``lever_batch``: 8 images at 256 px, 2 at 512 px) and reports images/s, minor page faults per
image, the share of its CPU time spent in the kernel and its peak resident memory (``VmHWM``).
``--train`` adds the same for one training step (``bench_train.our_step``, 256 px, batch 4).

Prints per size the medians of both contenders and the ratios, with two goals: as shipped at least
as fast as glibc's defaults (>= 1.0x images/s) and a peak resident memory within 1.15x of theirs
(the policy keeps freed blocks for reuse; it must not let the peak grow).

Usage::

    python benchmarks/bench_heap.py                # 256 and 512 px, 3 rounds, 6 forwards
    python benchmarks/bench_heap.py --quick        # 2 rounds, 4 forwards (make bench)
    python benchmarks/bench_heap.py --train        # also a training step
    python benchmarks/bench_heap.py --smoke        # micro model, 64 px: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {"glibc defaults": {"SAM2ELNET_HEAP_MB": "0"}, "as shipped": {}}


def child(kind: str, size: int, forwards: int, model_size: str) -> dict:
    """One contender's numbers, in this (fresh) process."""
    import common  # noqa: F401  (the product's thread and heap policies before torch)
    import torch
    from common import (
        LEVERS,
        apply_lever,
        build_ours,
        lever_autocast,
        lever_batch,
        lever_input,
        peak_rss_mb,
    )

    from sam2elnet.utils.heap import applied

    lv = LEVERS["default"]
    model = build_ours(model_size, lv.detail_width, trunk_scale=lv.trunk_scale)
    if kind == "train":
        from bench_train import our_step

        batch = 4
        run = our_step(apply_lever(model, lv, train=True), lv, batch, size)
    else:
        net = apply_lever(model.eval(), lv, train=False)
        batch = lever_batch(lv, 8, 4, size)
        x = lever_input(
            torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0)), lv
        )

        def run() -> None:
            with torch.no_grad(), lever_autocast(lv):
                torch.sigmoid(net(x).logits.float())

    run()
    run()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    for _ in range(forwards):
        run()
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    user, sys_ = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    images = batch * forwards
    return {
        "heap_mib": applied().mib,
        "batch": batch,
        "img_s": images / wall,
        "faults_per_img": (r1.ru_minflt - r0.ru_minflt) / images,
        "kernel_share": sys_ / max(1e-9, user + sys_),
        "peak_mb": peak_rss_mb(),
    }


def child_env(environ: dict, env_extra: dict) -> dict:
    """A child's environment: ``environ`` without ``SAM2ELNET_HEAP_MB`` and without the allocator
    settings that make the policy step aside (``GLIBC_TUNABLES``, ``MALLOC_*_``, ``LD_PRELOAD``),
    so "as shipped" is the policy and "glibc defaults" glibc's own, whatever this shell sets;
    then ``env_extra``."""
    drop = ("SAM2ELNET_HEAP_MB", "GLIBC_TUNABLES", "LD_PRELOAD")
    env = {k: v for k, v in environ.items() if k not in drop and not k.startswith("MALLOC_")}
    env.update(env_extra)
    return env


def run_child(kind: str, size: int, forwards: int, model_size: str, env_extra: dict) -> dict:
    env = child_env(dict(os.environ), env_extra)
    env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(HERE / "bench_heap.py"), "--child", kind, str(size)]
    cmd += ["--forwards", str(forwards), "--model-size", model_size]
    res = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"bench_heap child failed ({kind} {size} px):\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--rounds", type=int, default=3, help="alternated pairs of child processes")
    ap.add_argument("--forwards", type=int, default=6, help="timed forwards per child")
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--train", action="store_true", help="also one training step at 256 px")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 4 forwards")
    ap.add_argument("--smoke", action="store_true", help="micro model, 64 px, 1 round, 2 forwards")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        out = child(args.child[0], int(args.child[1]), args.forwards, args.model_size)
        print(json.dumps(out))
        return 0
    if args.quick:
        args.rounds, args.forwards = 2, 4
    if args.smoke:
        args.sizes, args.rounds, args.forwards, args.model_size = [64], 1, 2, "micro"
    sys.path.insert(0, str(HERE))
    from common import Goals, machine

    print(f"machine: {machine()}")
    print(
        f"{args.rounds} alternated pairs of fresh processes per row, {args.forwards} timed "
        f"forwards each after 2 warm-ups; {args.model_size}, our network as shipped"
    )
    if args.smoke:
        print(
            "--smoke: one round of two forwards of 64 px images (small blocks, few page faults "
            "either way): it checks that the script runs; its ratios and goal lines are noise"
        )
    rows = [("infer", s) for s in args.sizes] + ([("train", 256)] if args.train else [])
    goals = Goals()
    results = []
    for kind, size in rows:
        got: dict[str, list[dict]] = {k: [] for k in VARIANTS}
        for _ in range(args.rounds):
            for name, env in VARIANTS.items():
                got[name].append(run_child(kind, size, args.forwards, args.model_size, env))
        what = "forward" if kind == "infer" else "training step"
        print(f"\n{what}, {size} px, batch {got['as shipped'][0]['batch']}")
        print(f"{'contender':<16} heap MiB   img/s  faults/img  kernel CPU  peak MB")
        med = {}
        for name, runs in got.items():
            med[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            m = med[name]
            print(
                f"{name:<16} {m['heap_mib']:>8.0f} {m['img_s']:>7.2f} {m['faults_per_img']:>11.0f}"
                f" {m['kernel_share']:>11.1%} {m['peak_mb']:>8.0f}"
            )
        speed = med["as shipped"]["img_s"] / med["glibc defaults"]["img_s"]
        peak = med["as shipped"]["peak_mb"] / med["glibc defaults"]["peak_mb"]
        per_round = [
            a["img_s"] / b["img_s"]
            for a, b in zip(got["as shipped"], got["glibc defaults"], strict=True)
        ]
        print(
            f"as shipped / glibc defaults: {speed:.3f}x images/s (per round "
            f"{', '.join(f'{r:.3f}' for r in per_round)}), {peak:.3f}x peak memory"
        )
        goals.add(f"heap policy, {what} {size} px: images/s vs glibc defaults", speed, 1.0)
        goals.add(f"heap policy, {what} {size} px: peak memory vs glibc", peak, 1.15, higher=False)
        results.append({"kind": kind, "size": size, "runs": got, "speed": speed, "peak": peak})
    goals.print("bench_heap")
    goals.dump(args.json, {"results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
