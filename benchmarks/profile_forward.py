"""Where the CPU time of one forward (or one training step) goes: ``torch.profiler`` self-CPU
shares per op, for our network as shipped or with one speed lever.

Usage::

    python benchmarks/profile_forward.py --size 256            # inference, batch 4, default
    python benchmarks/profile_forward.py --size 512 --lever prev-default
    python benchmarks/profile_forward.py --size 256 --train    # one training step, batch 4

Shares (not times) are what to read on a busy machine: other load stretches every op alike.
Random Hiera weights (speed does not depend on their values); one warm-up round first.
"""

from __future__ import annotations

import argparse

import common  # noqa: F401  (first: the product's thread policy before torch loads OpenMP)

# isort: split
import torch
from common import LEVERS, apply_lever, build_ours, lever_autocast, lever_input
from torch.profiler import ProfilerActivity, profile


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256, help="image size in px (square)")
    ap.add_argument("--batch", type=int, default=None, help="images (default 4 <= 256 px, else 2)")
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--lever", default="default", choices=list(LEVERS))
    ap.add_argument("--train", action="store_true", help="one training step instead")
    ap.add_argument("--rows", type=int, default=20, help="ops to print")
    args = ap.parse_args(argv)
    batch = args.batch or (4 if args.size <= 256 else 2)
    lv = LEVERS[args.lever]
    model = build_ours(args.model_size, lv.detail_width, trunk_scale=lv.trunk_scale)
    if args.train:
        from bench_train import our_step

        run = our_step(apply_lever(model, lv, train=True), lv, batch, args.size)
    else:
        net = apply_lever(model.eval(), lv, train=False)
        x = lever_input(torch.rand(batch, 1, args.size, args.size), lv)

        def run() -> None:
            with torch.no_grad(), lever_autocast(lv):
                torch.sigmoid(net(x).logits.float())

    run()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    what = "training step" if args.train else "forward"
    print(
        f"{what}, {args.size} px, batch {batch}, lever {args.lever}, {torch.get_num_threads()} threads"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
