"""Inference speed, side by side with the reference design, in one process.

For each image size, on the same synthetic SAR images (normalised once, the same tensors for every
contender), the script times in turn — reference, ours, each lever, reference, ours, ... — so load
changes hit all alike, and prints:

* **ours / reference** images/s (goal >= 2x): the reference (``benchmarks/reference.py``, fp32, batch
  4 at 256 px / 2 at 512 px, one forward, no quality views) against our network as shipped (bf16
  autocast, channels-last, bf16 trunk weights, LeanAttention, batch 8 capped at 2 x 512^2 px, one
  view = ``annotate``'s default), the earlier defaults (``prev-default``, ``old-default``) and each
  speed lever (A/B, see ``--levers``); ``reference-lib`` is the reference with ``transformers``'
  own Hiera attention (as every run before 2026-12-01 measured it; the goal ratio divides by
  ``reference``, which shares our LeanAttention because the public design's Hiera has no
  discarded score matrix either);
* **achieved GFLOP/s / matmul ceiling** of our forward (goal >= 60 %), of the precision ours ships
  with on this CPU (bf16 where it is native, else fp32), FLOPs counted by ``FlopCounterMode``
  plus the attention products it misses; the ceiling is measured right before and right after
  each size's timed rounds, both are printed and the higher is used (one measurement varied
  101-159 GFLOP/s fp32 between runs on the 2-core VM; each costs six 2048^2 products, ~1 s);
* **annotate end to end / bare forward** (goal >= 0.9): ``annotate_folder`` (read PNG, normalise,
  network, quality features and score, write labels + CSV) alternated with the bare forward on the
  same images, same batch, one view; ``--e2e-reps`` (default 9) paired rounds, the goal's value is
  the median of the per-round ratios (printed with their range).

Usage::

    python benchmarks/bench_infer.py                 # 256 and 512 px, 16 / 8 images, 3 rounds
    python benchmarks/bench_infer.py --quick         # 8 / 4 images, 2 rounds
    python benchmarks/bench_infer.py --compile       # also the torch.compile lever (slow to compile)
    python benchmarks/bench_infer.py --levers default int8-trunk   # the opt-in int8 trunk
    python benchmarks/bench_infer.py --smoke         # micro model, 64 px: checks the script runs

Random weights: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common  # noqa: F401  (first: the product's thread policy before torch loads OpenMP)

# isort: split
import numpy as np
import torch
from common import (
    HISTORY_LEVERS,
    INFER_LEVERS,
    LEVERS,
    Goals,
    add_reference_lib_option,
    alternate,
    alternate_rounds,
    apply_lever,
    build_ours,
    forward_flops,
    lever_autocast,
    lever_batch,
    lever_input,
    lever_precision,
    library_attention,
    machine,
    machine_levers,
    matmul_ceiling,
    save_ours,
    write_images,
)
from reference import build_reference, reference_batch, reference_predict


def bench_size(  # noqa: ANN201
    args: argparse.Namespace,
    size: int,
    n: int,
    work: Path,
    ceiling_of: Callable[[], float],
    goals,  # noqa: ANN001
    cname: str = "bf16",
):
    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.engine.predictor import Predictor

    files = write_images(work / f"img{size}", n, size)
    base = build_ours(args.model_size)
    model_file = save_ours(base, work / "model.pt")
    pred = Predictor.from_file(model_file, batch_size=args.batch, tta=0)  # precision as shipped
    base = pred.model  # as the product prepares it (channels-last by default)
    xs = torch.from_numpy(np.stack([pred.read(f)[1] for f in files]))
    x3 = xs.repeat(1, 3, 1, 1).contiguous()
    rb = reference_batch(size) if args.ref_batch is None else args.ref_batch
    ref, _ = build_reference(args.model_size)
    ref.eval()

    def run_ref() -> None:
        for s in range(0, n, rb):
            reference_predict(ref, x3[s : s + rb])

    fns = {"reference": run_ref}
    batches: dict[str, int] = {"reference": rb}
    if args.reference_lib:
        ref_lib, _ = build_reference(args.model_size)
        library_attention(ref_lib.eval())

        def run_ref_lib() -> None:
            for s in range(0, n, rb):
                reference_predict(ref_lib, x3[s : s + rb])

        fns["reference-lib"] = run_ref_lib
        batches["reference-lib"] = rb
    compile_s: dict[str, float] = {}
    models: dict[str, torch.nn.Module] = {}
    other_arch: dict[str, torch.nn.Module] = {}  # rows whose network does other work per image
    for name in args.levers:
        lv = LEVERS[name]
        m = (
            base
            if name == "default"
            else build_ours(args.model_size, lv.detail_width, trunk_scale=lv.trunk_scale)
        )
        if name != "default" and (lv.detail_width or lv.trunk_scale):
            other_arch[name] = m.eval()
        m = apply_lever(m.eval(), lv, train=False)
        models[name] = m
        b = lever_batch(lv, args.batch, rb, size)
        batches[name] = b

        def run(m=m, lv=lv, b=b) -> None:  # noqa: ANN001
            with torch.no_grad(), lever_autocast(lv):
                for s in range(0, n, b):
                    o = m(lever_input(xs[s : s + b], lv))
                    torch.sigmoid(o.logits.float())

        if lv.compile:
            t = time.perf_counter()
            run()  # compiles for the full batch (and the last partial batch)
            compile_s[name] = time.perf_counter() - t
        fns[name] = run
    # the ceiling brackets the timed rounds: the higher of the two is the share's denominator
    before = ceiling_of()
    t = alternate(fns, args.reps, args.clock)
    after = ceiling_of()
    ceiling = max(before, after) * 1e9

    # end to end vs the bare forward (same batch, one view), alternated as well
    outs = itertools.count()

    def e2e() -> None:
        annotate_folder(
            model_file, files, work / f"out{size}_{next(outs)}", predictor=pred, progress=False
        )

    # paired per round (bare, e2e, bare, e2e, ...): the ratio of each round's pair, whose median
    # load drift moves far less than a ratio of two medians (the bare forward alone moved +-15 %
    # between idle runs on 2026-12-04, docs/benchmarks.md)
    rounds = alternate_rounds({"bare": fns["default"], "e2e": e2e}, args.e2e_reps, args.clock)
    te = {k: statistics.median(v) for k, v in rounds.items()}
    pair_ratios = sorted(b / e for b, e in zip(rounds["bare"], rounds["e2e"], strict=True))
    e2e_ratio = statistics.median(pair_ratios)

    with lever_autocast(LEVERS["default"]):  # under bf16 the default's trunk holds bf16 weights
        f_ours = forward_flops(lambda: base(xs[:1]))
    f_ref = forward_flops(lambda: ref(x3[:1]))
    f_rows = {}
    for k, m in other_arch.items():  # each under its own precision, like the default above
        with lever_autocast(LEVERS[k]):
            f_rows[k] = forward_flops(lambda m=m: m(xs[:1]))
    print(
        f"\n{size} px, {n} images; reference batch {rb}; GFLOP per image: ours "
        f"{f_ours / 1e9:.1f}, reference {f_ref / 1e9:.1f}"
        + "".join(f", {k} {f / 1e9:.1f}" for k, f in f_rows.items())
    )
    print(
        f"{cname} matmul ceiling: {before:.0f} GFLOP/s before the timed rounds, {after:.0f} after; "
        f"shares are of the higher, {ceiling / 1e9:.0f}"
    )
    print(f"{'contender':<16} batch   img/s  x reference  GFLOP/s  of {cname} ceiling")
    for k, sec in t.items():
        fl = f_ref if k.startswith("reference") else f_rows.get(k, f_ours)
        ratio = t["reference"] / sec
        gf = fl * n / sec / 1e9
        extra = f"  (compile {compile_s[k]:.0f} s)" if k in compile_s else ""
        print(
            f"{k:<16} {batches[k]:5d}  {n / sec:6.2f}  {ratio:10.2f}x  {gf:7.0f}  "
            f"{gf * 1e9 / ceiling:14.0%}{extra}",
            flush=True,
        )
    print(
        f"annotate end to end {n / te['e2e']:.2f} img/s vs bare forward {n / te['bare']:.2f} img/s"
        f" (medians); end to end / bare per round: median {e2e_ratio:.3f}, range "
        f"{pair_ratios[0]:.3f}-{pair_ratios[-1]:.3f} over {len(pair_ratios)} paired rounds"
    )
    goals.add(
        f"inference {size} px: ours as shipped / reference", t["reference"] / t["default"], 2.0
    )
    goals.add(
        f"forward {size} px: achieved / {cname} matmul ceiling",
        f_ours * n / t["default"] / ceiling,
        0.60,
        unit="%",
    )
    goals.add(f"annotate {size} px: end to end / bare forward", e2e_ratio, 0.9)
    return {
        "size": size,
        "n": n,
        "seconds": t,
        "batches": batches,
        "e2e_s": te["e2e"],
        "bare_s": te["bare"],
        "e2e_pair_ratios": pair_ratios,
        "gflop_ours": f_ours / 1e9,
        "gflop_ref": f_ref / 1e9,
        "gflop_rows": {k: f / 1e9 for k, f in f_rows.items()},
        "compile_s": compile_s,
        "ceiling_gflops": {"before": before, "after": after},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--n", type=int, nargs="+", default=None, help="images per size (16 / 8)")
    ap.add_argument("--batch", type=int, default=8, help="our batch size (product default 8)")
    ap.add_argument("--ref-batch", type=int, default=None, help="default 4 at <=256 px, else 2")
    ap.add_argument("--reps", type=int, default=3, help="alternating timed rounds")
    ap.add_argument(
        "--e2e-reps",
        type=int,
        default=9,
        help="paired rounds of annotate end to end vs the bare forward (their per-round ratio's "
        "median is the goal's value; each round is one pass over the images)",
    )
    ap.add_argument(
        "--levers",
        nargs="+",
        default=None,
        choices=list(LEVERS),
        help="rows besides the reference (default: all inference levers; --quick leaves out "
        "fp32-trunk and lib-attention, which separate the parts of the default, the opt-in "
        "int8-trunk, and the rows of earlier defaults, prev-default, old-default and "
        "reference-lib)",
    )
    ap.add_argument("--compile", action="store_true", help="add the torch.compile lever")
    add_reference_lib_option(ap)
    ap.add_argument("--quick", action="store_true", help="8 / 4 images, 2 rounds")
    ap.add_argument("--smoke", action="store_true", help="micro model, 64 px, 2 images, 1 round")
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time (all threads) instead of wall time: ratios that "
        "other load on a busy machine disturbs far less; img/s and GFLOP/s are then per CPU "
        "second (the ceiling share and the goal lines are not meaningful)",
    )
    ap.add_argument("--json", help="write the results and goals here")
    args = ap.parse_args(argv)
    if args.levers is None:
        quick_out = (
            ("fp32-trunk", "lib-attention", "int8-trunk", *HISTORY_LEVERS) if args.quick else ()
        )
        args.levers = machine_levers([lv for lv in INFER_LEVERS if lv not in quick_out])
        args.reference_lib = args.reference_lib and not args.quick
    args.clock = time.process_time if args.cpu_time else None
    if "default" not in args.levers:
        args.levers.insert(0, "default")
    if args.compile and "compile" not in args.levers:
        args.levers.append("compile")
    if args.smoke:
        args.sizes, args.model_size, args.n, args.reps = [64], "micro", [2], 1
        args.e2e_reps = min(args.e2e_reps, 3)
    elif args.quick:
        args.reps, args.e2e_reps = 2, min(args.e2e_reps, 5)
    counts = args.n or [
        (8 if args.quick else 16) if s <= 256 else (4 if args.quick else 8) for s in args.sizes
    ]
    counts = (counts * len(args.sizes))[: len(args.sizes)] if len(counts) == 1 else counts
    print(f"machine: {machine()}")
    # the forward's share is of the ceiling of the precision ours ships with on this CPU. The bf16
    # ceiling is measured only where bf16 is what ships: without native bf16 the 2048^2 bf16
    # products run below 1 GFLOP/s (AVX2 EPYC, 2026-12-01: 408 s of a 12-minute --quick run).
    # It is measured before and after each size's timed rounds (bench_size), every value kept.
    shipped = lever_precision(LEVERS["default"])
    cname, cdtype = ("bf16", torch.bfloat16) if shipped == "bf16" else ("fp32", torch.float32)
    side = 256 if args.smoke else 2048  # --smoke: checks the script runs, numbers meaningless
    measured: dict[str, list[float]] = {"fp32": [], "bf16": []}

    def ceiling_of(name: str = cname, dtype: torch.dtype = cdtype) -> float:
        measured[name].append(matmul_ceiling(dtype, side))
        return measured[name][-1]

    print(
        f"ours as shipped runs {cname} here (precision auto); shares are of the {cname} matmul "
        f"ceiling ({side}^2 products), measured before and after each size's timed rounds"
    )
    if cname == "bf16":
        print(
            f"fp32 matmul ceiling, for comparison: {ceiling_of('fp32', torch.float32):.0f} GFLOP/s"
        )
    goals = Goals()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, n in zip(args.sizes, counts, strict=True):
            results.append(bench_size(args, size, n, Path(tmp), ceiling_of, goals, cname))
    goals.print("bench_infer")
    goals.dump(args.json, {"results": results, "ceiling_gflops": measured})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
