"""Memory estimates: how many bytes predicting an image whole needs, and what fits a budget.

This module only estimates: :func:`whole_image_bytes` (through
:meth:`~sam2elnet.engine.predictor.Predictor.whole_bytes` / ``fits_whole``) and :func:`fit_batch`
(images per forward within a budget). Which images of an ``elnet annotate`` / ``elnet enhance``
folder go window by window (:meth:`sam2elnet.engine.folder_chunk.ChunkPlanner.tiled`, then
:mod:`sam2elnet.engine.folder_large`, memory bounded by the window size) and how the rest are
grouped into chunks within ``--max-memory`` (:meth:`~sam2elnet.engine.folder_chunk.ChunkPlanner.chunks`)
is decided in :mod:`sam2elnet.engine.folder_chunk`.

The model of the estimate (bytes, resident memory of the whole process)::

    base      = RUNTIME_BASE + parameter bytes of the model
    per pixel = WORKING_SET[size][precision] * trunk scale     (activations of one forward)
              + bands * 8                                        (raw read + float32 normalised)
              + 10 + 4 * tta                                     (valid, prob, mask, TTA views)
              + 8 if a coarse label is given                     (coarse float32 in two copies)
    estimate  = base + pixels * per pixel * batch

Where the constants come from (measured on CPU, torch 2.13, 1 thread, 3-band float input, random
weights, ``tta=0``; peak resident set size via ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after
one 64 x 64 warm-up forward, difference divided by the pixels, 384^2 and 768^2 px; the larger
value of the two is used, rounded up)::

    PYTHONPATH=src SAM2ELNET_THREADS=1 python measure.py SIZE PRECISION PX 3
    # builds ModelConfig(size=SIZE, in_bands=3), runs engine.runtime.run_model on a (1,3,PX,PX)
    # tensor; prints (peak - warm) * 1024 / PX^2   (ru_maxrss is in KiB on Linux)

    size   precision   384^2 px   768^2 px   constant
    micro  fp32          630        672        700
    micro  bf16          451        371        480
    tiny   fp32          892        884        920
    tiny   bf16          549        677        700

    process base (interpreter + torch + micro model): 415 MB; + tiny model: 523-552 MB.

Cross-check: ``elnet annotate`` with the tiny model (bf16, TTA views of the evaluator, 1-band
PNG) peaked at 742 MB / 1,174 MB / 1,553 MB for 500^2 / 1000^2 / 1500^2 px; the estimate gives
about 0.71 / 1.26 / 2.17 GB (the model is conservative for large images, where the allocator reuses
memory across layers). Sizes above tiny were not measured: their working set is the tiny value
scaled by the trunk's embedding width (``HIERA_SPECS[size].embed_dim / 96``), a guess on the safe
side of the scaling of the high-resolution activations.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sam2elnet.engine.runtime import resolve_precision
from sam2elnet.errors import UserError
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import memory_bytes
from sam2elnet.options import FolderJobOptions

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "RUNTIME_BASE",
    "WORKING_SET",
    "format_bytes",
    "parse_memory",
    "per_pixel_bytes",
    "model_bytes",
    "whole_image_bytes",
    "fit_batch",
    "BATCH_PIXELS",
    "BATCH_PIXELS_FP32",
    "batch_pixels",
    "image_size",
]

DEFAULT_MAX_MEMORY: int = option_default(FolderJobOptions, "max_memory")
"""Default ``--max-memory``: 1.5 GB (decimal), the resident memory one job should stay within
(declared once, in :class:`sam2elnet.options.FolderJobOptions`)."""

BATCH_PIXELS = 2 * 512 * 512
"""Most pixels one bf16 forward takes (images x H x W, at least one image): 8 images of 256 px, 2
of 512 px, 1 of 1,024 px. Larger batches were slower per image on a CPU with native bf16 (quiet
2-core run of ``benchmarks/bench_infer.py``: 512 px at batch 8 1.93 img/s, at batch 2 2.39 img/s;
at 256 px batch 8 and 4 equal), because the full-resolution activations of a batch fall out of the
cache."""

BATCH_PIXELS_FP32 = 4 * 256 * 256
"""Most pixels one float32 forward takes: 4 images of 256 px, 1 of 512 px. float32 activations
take twice the bytes of bf16 ones, and smaller batches were faster per image on the AVX2 VM
(``benchmarks/bench_infer.py``, Hiera-tiny, fp32, alternated rows in one process, 2026-12-01):
256 px batch 4 vs 8 +8 %, +4 %, +16 %, +16 %, -1 % img/s in five runs and +10 % per CPU second in
a sixth; 512 px batch 1 vs 2 +14 % img/s and +8 % per CPU second (docs/benchmarks.md, "Inference
batch in float32")."""


def batch_pixels(precision: str, device: Any = "cpu") -> int:
    """Most pixels per forward for ``precision`` (``"32"``, ``"bf16"``, or ``"auto"``, resolved
    for ``device``): on a CPU :data:`BATCH_PIXELS_FP32` for float32 and :data:`BATCH_PIXELS` for
    bf16; on other devices (not measured) :data:`BATCH_PIXELS` for both."""
    if str(device).split(":")[0] != "cpu":
        return BATCH_PIXELS
    return BATCH_PIXELS if resolve_precision(precision, "cpu") == "bf16" else BATCH_PIXELS_FP32


RUNTIME_BASE = 420_000_000
"""Resident bytes of the interpreter with torch, numpy, rasterio loaded (measured 415 MB, see the
module docstring), without model weights."""

WORKING_SET: dict[str, dict[str, int]] = {
    "micro": {"32": 700, "bf16": 480},
    "tiny": {"32": 920, "bf16": 700},
}
"""Peak activation bytes per input pixel of one forward, by model size and precision (measured,
see the module docstring)."""


def parse_memory(value: str | int | float) -> int:
    """Bytes from ``"1.5G"``, ``"800M"``, ``"512MiB"`` or a number of bytes (format:
    :func:`sam2elnet.option_values.memory_bytes`; at least 1 MiB).

    Raises:
        UserError: not a size, or too small.
    """
    try:
        return memory_bytes(value)
    except ValueError as err:
        raise UserError(f"--max-memory {value!r} {err}") from None


def format_bytes(n: float) -> str:
    """``1500000000`` -> ``"1.50 GB"`` (decimal units)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def _working_set(size: str, precision: str) -> float:
    prec = resolve_precision(precision, "cpu")
    if size in WORKING_SET:
        return float(WORKING_SET[size][prec])
    from sam2elnet.model.hiera import HIERA_SPECS

    spec = HIERA_SPECS.get(size)
    scale = spec.embed_dim / 96 if spec is not None else 1.5
    return WORKING_SET["tiny"][prec] * max(1.0, scale)


def per_pixel_bytes(
    size: str, precision: str, bands: int, tta: int = 0, coarse: bool = False
) -> float:
    """Bytes per input pixel of predicting one image whole (see the module docstring).

    Args:
        size: model size (``ModelConfig.size``: micro, tiny, small, base_plus, large).
        precision: ``"32"``, ``"bf16"`` or ``"auto"`` (resolved for the CPU; callers that run on a
            GPU pass the resolved value, as :class:`~sam2elnet.engine.predictor.Predictor` does).
        bands: input bands the model takes.
        tta: test-time-augmentation views (their probability maps are kept).
        coarse: a coarse label is given (enhancement).
    """
    return (
        _working_set(size, precision)
        + 8 * max(1, int(bands))
        + 10
        + 4 * max(0, int(tta))
        + (8 if coarse else 0)
    )


def model_bytes(model: Any) -> int:
    """Bytes of a torch module's parameters and buffers."""
    tensors = list(model.parameters()) + list(model.buffers())
    return int(sum(t.numel() * t.element_size() for t in tensors))


def whole_image_bytes(
    pixels: int,
    *,
    size: str,
    precision: str,
    bands: int,
    tta: int = 0,
    coarse: bool = False,
    batch: int = 1,
    weights: int = 0,
) -> int:
    """Estimated peak resident bytes of predicting ``batch`` images of ``pixels`` px each whole.

    ``weights`` is the model's parameter bytes (:func:`model_bytes`); the result includes
    :data:`RUNTIME_BASE`. See the module docstring for the formula and its measurements.
    """
    pp = per_pixel_bytes(size, precision, bands, tta, coarse)
    return int(RUNTIME_BASE + weights + pixels * pp * max(1, batch))


def fit_batch(pixels: int, max_memory: int, limit: int, device: Any = "cpu", **kw: Any) -> int:
    """How many images of ``pixels`` px one forward may take: the largest ``n <= limit`` whose
    :func:`whole_image_bytes` (``batch=n``, other arguments as ``kw``) is within ``max_memory``
    and ``n x pixels`` within :func:`batch_pixels` of ``kw["precision"]`` (bf16 when not given)
    on ``device``, and at least 1."""
    one = whole_image_bytes(pixels, batch=1, **kw)
    fixed = whole_image_bytes(0, batch=1, **kw)
    per_image = max(1, one - fixed)
    n = int((max_memory - fixed) // per_image)
    cap = batch_pixels(kw.get("precision", "bf16"), device)
    return max(1, min(int(limit), n, cap // max(1, int(pixels))))


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) in pixels of a raster file from its header (no pixel read), or None when
    GDAL cannot open it (the caller's reader then reports the problem in its usual way)."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
                return int(src.height), int(src.width)
    except (rasterio.errors.RasterioError, OSError):
        return None
