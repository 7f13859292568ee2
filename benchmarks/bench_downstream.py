"""The protocol's downstream U-Net: training speed with and without channels-last, side by side.

``elnet experiment`` and ``elnet demo`` train one plain U-Net per setting (five in the demo, ten
and more in a protocol run), so its step time is a large share of both. This script times the
product's own training function (``engine.downstream_train.train_downstream``: data loading with
augmentation, bf16 autocast where the CPU runs it natively, the loss, backward, AdamW) on the same
synthetic oil-spill images, in one process, alternating ``channels-last`` (the default,
``SAM2ELNET_CHANNELS_LAST`` unset) and ``nchw`` (``SAM2ELNET_CHANNELS_LAST=0``), and prints the
steps per second of each and their ratio.

Configurations: ``demo`` (width 8, 128 px, batch 8: what ``elnet demo`` trains) and ``protocol``
(width 16, 256 px, batch 8: ``elnet experiment``'s default).

Usage::

    python benchmarks/bench_downstream.py            # both configurations, 3 alternating rounds
    python benchmarks/bench_downstream.py --quick    # the demo configuration, 2 rounds
    python benchmarks/bench_downstream.py --smoke    # 64 px, 2 steps: checks the script runs
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import common  # noqa: F401  (first: the product's thread policy before torch loads OpenMP)

# isort: split
from common import Goals, alternate, machine

CONFIGS = {
    "demo": {"width": 8, "size": 128},
    "protocol": {"width": 16, "size": 256},
}
"""Downstream U-Net width and image / crop side (px) of each configuration."""


def _pairs(root: Path, size: int, count: int) -> list[tuple[Path, Path]]:
    from sam2elnet.data.synthetic import generate_dataset

    generate_dataset(root, task="oil-spill", count=count, size=size, seed=0, progress=False)
    ids = sorted(p.stem for p in (root / "images").glob("*.png"))
    return [(root / "images" / f"{i}.png", root / "masks" / f"{i}.png") for i in ids]


def bench(name: str, width: int, size: int, steps: int, reps: int) -> dict[str, float]:
    """Seconds per optimiser step of each layout (median over ``reps`` alternating runs)."""
    from sam2elnet.data.load_cache import LoadCache
    from sam2elnet.engine.downstream_config import DownstreamConfig
    from sam2elnet.engine.downstream_train import train_downstream

    cfg = DownstreamConfig(
        model_options={"width": width, "depth": 4, "norm": "batch"},
        steps=steps,
        image_size=size,
        batch_size=8,
        progress=False,
    )
    with tempfile.TemporaryDirectory(prefix="bench_downstream_") as tmp:
        pairs = _pairs(Path(tmp), size, 16)
        cache = LoadCache()  # decoded images shared, as the settings of one experiment share them

        def run(layout: str):
            def fn():
                os.environ["SAM2ELNET_CHANNELS_LAST"] = "1" if layout == "channels-last" else "0"
                train_downstream(pairs, cfg, cache=cache)

            return fn

        try:
            secs = alternate({k: run(k) for k in ("nchw", "channels-last")}, reps)
        finally:
            os.environ.pop("SAM2ELNET_CHANNELS_LAST", None)
    for k, s in secs.items():
        print(f"{name:8s} {k:13s} {steps / s:6.2f} step/s ({s / steps * 1000:.0f} ms/step)")
    return secs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="demo configuration, 2 rounds")
    ap.add_argument("--smoke", action="store_true", help="64 px, 2 steps (checks only)")
    ap.add_argument("--json", default=None, help="write the ratios here")
    args = ap.parse_args(argv)
    print(machine(), flush=True)
    goals = Goals()
    names = ["demo"] if args.quick or args.smoke else list(CONFIGS)
    for name in names:
        c = CONFIGS[name]
        size = 64 if args.smoke else c["size"]
        steps = 2 if args.smoke else 12
        secs = bench(
            name, c["width"], size, steps, reps=1 if args.smoke else (2 if args.quick else 3)
        )
        # no goal of its own: a lever row, reported so the default stays measured (>= 1.0 = keep)
        goals.add(
            f"downstream {name}: channels-last / nchw", secs["nchw"] / secs["channels-last"], 1.0
        )
    goals.print("bench_downstream")
    goals.dump(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
