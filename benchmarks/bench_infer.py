"""Annotation throughput, end to end vs the bare network, with achieved GFLOP/s.

Prints, for each image size and precision:

* **end to end**: ``annotate_folder`` on PNG files (read -> normalise -> model incl. TTA views ->
  quality evaluator -> write masks + CSV), images/s and megapixels/s;
* **bare forward**: the network alone on the same, already normalised inputs, same batch size, with
  one view and with the ``1 + tta`` views the annotation runs (what end to end must pay anyway);
* the **ratio** end-to-end / bare (goal >= 0.85 with the same number of views);
* FLOPs per image (``torch.utils.flop_counter.FlopCounterMode`` plus the attention products it misses
  on CPU, counted here from the query/key/value shapes) and the achieved GFLOP/s next to a matmul
  ceiling measured in the same process.

Usage: ``python benchmarks/bench_infer.py [--quick] [--sizes 256 512] [--model-size tiny]``.
Random weights are fine: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------------- helpers
def machine() -> str:
    """One line describing this machine and the software versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}; {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; Python {platform.python_version()}"
    )


def make_model_file(
    path: Path, size: str = "tiny", in_bands: int = 1, adapter_dim: int | None = None
) -> Path:
    """A model file like ``elnet train`` writes (random weights, unfitted quality evaluator)."""
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model import ModelConfig, build_model, save_model

    norm = NormalizationConfig.for_modality("sar")
    kw = {} if adapter_dim is None else {"adapter_dim": adapter_dim}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(
            ModelConfig(
                size=size, in_bands=in_bands, normalization=norm.model_dump(mode="json"), **kw
            )
        )
    save_model(model, path, extra={"normalization": norm.model_dump(mode="json")})
    return path


def write_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` synthetic SAR-like 8-bit PNG images of ``size`` px."""
    from sam2elnet.data.raster import write_image
    from sam2elnet.data.synthetic import make_scene

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        scene = make_scene("oil-spill", size, seed + i)
        p = folder / f"{i:05d}.png"
        write_image(p, scene.image)
        out.append(p)
    return out


def matmul_ceiling(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best GFLOP/s of an n x n matmul in this process (the practical compute ceiling)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


@contextlib.contextmanager
def count_attention() -> Iterator[list[float]]:
    """Count FLOPs of scaled_dot_product_attention calls: 4 * B * H * Lq * Lk * D (QK^T and AV)."""
    box = [0.0]
    orig = F.scaled_dot_product_attention

    def wrapped(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *a: object, **kw: object
    ) -> torch.Tensor:
        lead = float(np.prod(q.shape[:-2]))
        box[0] += 2.0 * lead * q.shape[-2] * k.shape[-2] * q.shape[-1]
        box[0] += 2.0 * lead * q.shape[-2] * k.shape[-2] * v.shape[-1]
        return orig(q, k, v, *a, **kw)

    F.scaled_dot_product_attention = wrapped  # type: ignore[assignment]
    torch.nn.functional.scaled_dot_product_attention = wrapped  # type: ignore[assignment]
    try:
        yield box
    finally:
        F.scaled_dot_product_attention = orig  # type: ignore[assignment]


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(FLOPs the FlopCounterMode counted, attention FLOPs it did not count) for one forward."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), count_attention() as attn, FlopCounterMode(display=False) as fc:
        model(x)
    counted = float(fc.get_total_flops())
    per_op = fc.get_flop_counts().get("Global", {})
    attn_counted = any("attention" in str(op) for op in per_op)
    return counted, 0.0 if attn_counted else attn[0]


def timed(fn, reps: int, warmup: bool = True) -> float:  # noqa: ANN001
    """Median wall time of ``fn()`` over ``reps`` runs (after one warm-up run when asked)."""
    if warmup:
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


# ---------------------------------------------------------------------------------------- main
def bench_size(
    model_file: Path,
    size: int,
    n: int,
    batch: int,
    precision: str,
    tta: int,
    work: Path,
    reps: int = 3,
) -> dict[str, float]:
    from sam2elnet.engine.infer import Predictor, annotate_folder
    from sam2elnet.engine.runtime import autocast

    folder = work / f"img{size}"
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if len(files) < n:
        files = write_images(folder, n, size)
    files = files[:n]
    pred = Predictor.from_file(model_file, precision=precision, batch_size=batch, tta=tta)
    model = pred.model
    xs = np.stack([pred.read(f)[1] for f in files])

    def bare(views: int) -> None:
        with torch.no_grad(), autocast(pred.device, pred.precision):
            for s in range(0, n, batch):
                x = torch.from_numpy(xs[s : s + batch])
                for v in range(views):
                    model(torch.rot90(x, v, (-2, -1)) if v else x, None, torch.zeros(x.shape[0]))

    t_bare1 = timed(lambda: bare(1), reps)
    t_bare_v = timed(lambda: bare(1 + tta), reps) if tta else t_bare1

    def e2e() -> None:
        out = work / f"out{size}_{precision}"
        annotate_folder(model_file, files, out, predictor=pred, progress=False)

    t_e2e = timed(e2e, reps, warmup=False)  # kernels are warm from the bare runs
    flops, attn = forward_flops(model, torch.from_numpy(xs[:1]))
    per_img = flops + attn
    mp = size * size / 1e6
    return {
        "size": size,
        "precision": precision,
        "n": n,
        "e2e_img_s": n / t_e2e,
        "e2e_mp_s": n * mp / t_e2e,
        "bare1_img_s": n / t_bare1,
        "bare_views_img_s": n / t_bare_v,
        "ratio_same_views": t_bare_v / t_e2e,
        "gflop_per_view": per_img / 1e9,
        "attention_gflop_added": attn / 1e9,
        "achieved_gflops_bare": per_img * n / t_bare1 / 1e9,
        "achieved_gflops_e2e": per_img * n * (1 + tta) / t_e2e / 1e9,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--model-size", default="tiny")
    ap.add_argument("--n", type=int, default=32, help="images per size")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tta", type=int, default=2, help="TTA views of the quality evaluator")
    ap.add_argument("--precisions", nargs="+", default=["32", "bf16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--quick", action="store_true", help="8 images at 256 px, 4 at 512 px, one timed run each"
    )
    args = ap.parse_args(argv)
    if args.threads:
        os.environ["SAM2ELNET_THREADS"] = str(args.threads)
    from sam2elnet.engine.runtime import set_threads

    set_threads()
    print(f"machine: {machine()}")
    print(
        f"matmul ceiling (2048^2): fp32 {matmul_ceiling(torch.float32):.0f} GFLOP/s, "
        f"bf16 {matmul_ceiling(torch.bfloat16):.0f} GFLOP/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_file = make_model_file(work / "model.pt", args.model_size)
        hdr = (
            f"size prec   n  e2e img/s  e2e MP/s  bare(1v) img/s  bare({1 + args.tta}v) img/s  "
            "ratio  GFLOP/view (+attn)  GFLOP/s bare  GFLOP/s e2e"
        )
        print(hdr)
        for size in args.sizes:
            n = args.n if not args.quick else (8 if size <= 256 else 4)
            for prec in args.precisions:
                r = bench_size(
                    model_file,
                    size,
                    n,
                    args.batch,
                    prec,
                    args.tta,
                    work,
                    reps=1 if args.quick else 3,
                )
                print(
                    f"{size:4d} {prec:>4} {n:3d}  {r['e2e_img_s']:9.2f}  {r['e2e_mp_s']:8.2f}  "
                    f"{r['bare1_img_s']:14.2f}  {r['bare_views_img_s']:14.2f}  "
                    f"{r['ratio_same_views']:5.2f}  {r['gflop_per_view']:8.1f} "
                    f"(+{r['attention_gflop_added']:.1f})  {r['achieved_gflops_bare']:12.0f}  "
                    f"{r['achieved_gflops_e2e']:11.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
