"""Training throughput (images/s) and peak memory of SAM2-ELNet training steps.

One configuration per fresh subprocess, so the peak resident memory (``ru_maxrss``) belongs to that
configuration alone. Each step is what ``engine.train`` does per batch: forward with a coarse label on
half of the batch, the full loss (BCE + soft IoU + deep supervision + edge), backward, AdamW step,
under bf16 autocast or fp32, with the frozen trunk and trainable adapters (or adapters off).

Usage: ``python benchmarks/bench_train.py [--quick] [--sizes 256 512] [--model-size tiny]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one(size: int, precision: str, adapters: bool, model_size: str, batch: int, steps: int) -> dict:
    """Run one configuration in this process and return its numbers."""
    import warnings

    import torch

    from sam2elnet.engine.losses import segmentation_loss
    from sam2elnet.engine.runtime import set_threads
    from sam2elnet.model import ModelConfig, build_model

    set_threads()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {} if adapters else {"adapter_dim": 0}
        model = build_model(ModelConfig(size=model_size, in_bands=1, **kw))
    model.train()
    params = list(model.trainable_parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    x = torch.rand(batch, 1, size, size)
    mask = (torch.rand(batch, 1, size, size) > 0.7).float()
    coarse = mask.clone()
    has = torch.tensor([1.0 if i % 2 else 0.0 for i in range(batch)])

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x, coarse * has[:, None, None, None], has)
        loss, _ = segmentation_loss(out.logits, mask, None, out.side_logits, out.edge_logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t)
    med = statistics.median(ts)
    return {
        "size": size,
        "precision": precision,
        "adapters": adapters,
        "batch": batch,
        "trainable_params": sum(p.numel() for p in params),
        "step_s": med,
        "img_s": batch / med,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 steps; batch 4 at 512 px")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(**json.loads(args.one))))
        return 0
    from bench_infer import machine  # same folder

    from sam2elnet.engine.runtime import set_threads

    set_threads()
    print(f"machine: {machine()}")
    print("size prec  adapters batch  trainable  step s   img/s  peak RSS MB")
    for size in args.sizes:
        for prec in args.precisions:
            for adapters in (True, False):
                batch = args.batch if not (args.quick and size >= 512) else max(1, args.batch // 2)
                spec = {
                    "size": size,
                    "precision": prec,
                    "adapters": adapters,
                    "model_size": args.model_size,
                    "batch": batch,
                    "steps": 3 if args.quick else args.steps,
                }
                res = subprocess.run(
                    [sys.executable, __file__, "--one", json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if res.returncode != 0:
                    print(f"{size} {prec} adapters={adapters}: failed\n{res.stderr[-800:]}")
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                print(
                    f"{size:4d} {prec:>4}  {'on' if adapters else 'off':>8} {r['batch']:5d}  "
                    f"{r['trainable_params'] / 1e6:8.2f}M  {r['step_s']:6.2f}  {r['img_s']:6.2f}  "
                    f"{r['peak_rss_mb']:10.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
