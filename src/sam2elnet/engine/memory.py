"""Memory estimates: how many bytes predicting an image whole needs, and what fits a budget.

This module only estimates: :func:`whole_image_bytes` (through
:meth:`~sam2elnet.engine.predictor.Predictor.whole_bytes` / ``fits_whole``) and :func:`fit_batch`
(images per forward within a budget). Which images of an ``elnet annotate`` / ``elnet enhance``
folder go window by window (:meth:`sam2elnet.engine.folder_chunk.ChunkPlanner.tiled`, then
:mod:`sam2elnet.engine.folder_large`, memory bounded by the window size) and how the rest are
grouped into chunks within ``--max-memory`` (:meth:`~sam2elnet.engine.folder_chunk.ChunkPlanner.chunks`)
is decided in :mod:`sam2elnet.engine.folder_chunk`.

The model of the estimate (bytes, resident memory of the whole process)::

    base      = RUNTIME_BASE + 2 * weight bytes of the model          (two copies while loading)
    per pixel = WORKING_SET[size][precision] * trunk scale     (activations of one forward)
              + bands * 8                                        (raw read + float32 normalised)
              + 10 + 4 * tta                                     (valid, prob, mask, TTA views)
              + 8 if a coarse label is given                     (coarse float32 in two copies)
    estimate  = base + pixels * per pixel * batch

(two copies of the weights: loading the model file holds the file's tensors beside the model's).

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

The base is measured on the whole ``elnet annotate`` process, not on the forward alone (that
script's 415 MB left out what the command loads around it, and ``--max-memory 500M`` runs peaked
at 547-563 MB). Peak RSS (``VmHWM`` of the child, read at exit) of ``elnet annotate
--max-memory B --precision auto`` (fp32 on this CPU) with random-weight micro / tiny models
(3 bands; weights 3.4 / 111 MB), 3-band PNGs of uniform noise, default threads (2; 1 thread
measured the same), shared 2-core VM with a training job beside it, 2026-12-04::

    PYTHONPATH=src nice -n 10 python benchmarks/bench_max_memory.py micro 500M 700M 800M
    # per budget: the largest image predicted whole within it, in a fresh `elnet annotate`

    run (per pixel: micro 734 B, tiny 954 B)   peak MB              base: peak - 2 x weights
                                                                          - pixels x per pixel
    micro, 16^2 px, whole                      492                  485
    micro, 528^2 / 608^2 / 704^2 px, whole     695-734 / 799-822 / 846   484-523 / 521-544 / 476
    micro, 912^2 / 1104^2 px, whole            1,025 / 1,243        408 / 342
    micro, 8 images of 176^2 / 192^2 px        703 / 667            515 / 444
    micro, 16^2 px, window path                578                  571   <- the largest
    micro, 1200^2 px, --tile 256, 1 / 2 / 4 windows a forward
                                               597 / 629 / 706      542 / 526 / 507
    micro, 1200^2 px, --tile 512, 1 window     685-692              486-493
    tiny, 16^2 px (the model load's peak)      683                  461
    tiny, 448^2 / 528^2 / 688^2 / 912^2 px     753 / 880 / 1,044 / 1,278   340 / 393 / 370 / 263

Three terms were short: the libraries an annotate process loads besides torch (transformers for
the model file, geopandas / pandas, rasterio, OpenCV, SciPy: 309 MB before the model file against
219 MB for torch alone) and the first forward's one-off buffers (+20 MB); the model load, which
holds the file's tensors and the model's at once (tiny: +206 MB at the load: two copies);
and the window path's GeoPackage writer and scene machinery (+86 MB over the whole-image path at
16^2 px). ``RUNTIME_BASE`` takes the largest row, rounded up, so it holds for a folder job
whatever mix of whole images and windows it runs (what the window path loads stays resident); a
job of whole images only keeps about 90 MB of headroom. The second copy of the weights is freed
before the first forward, whose activations reuse its memory, so for images whose activations
outweigh the weights the estimate is high by one copy (tiny: 111 MB; ``max(weights,
activations)`` fitted the runs better, but is flat for images smaller than the weights, which the
routing by size relies on not being). The per-pixel term was not the short one:
``(peak - 492 MB) / pixels`` was 536-893 B/px from 384^2 to 1,104^2 px against 734, above it only
at 528^2-608^2 px (up to +60 MB, inside that headroom). The peak of one configuration moved by up
to 40 MB between runs.

Sizes above tiny were not measured: their working set is the tiny value scaled by the trunk's
embedding width (``HIERA_SPECS[size].embed_dim / 96``), a guess on the safe side of the scaling of
the high-resolution activations.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sam2elnet.engine.runtime import resolve_precision
from sam2elnet.errors import UserError
from sam2elnet.option_checks import api_option, option_default
from sam2elnet.option_values import memory_bytes
from sam2elnet.options import FolderJobOptions

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "RUNTIME_BASE",
    "WEIGHT_COPIES",
    "WORKING_SET",
    "format_bytes",
    "parse_memory",
    "per_pixel_bytes",
    "model_bytes",
    "whole_image_bytes",
    "fit_batch",
    "BATCH_PIXELS",
    "image_size",
]

DEFAULT_MAX_MEMORY: int = option_default(FolderJobOptions, "max_memory")
"""Default ``--max-memory``: 1.5 GB (decimal), the resident memory one job should stay within
(declared once, in :class:`sam2elnet.options.FolderJobOptions`)."""

BATCH_PIXELS = 2 * 512 * 512
"""Most pixels one forward takes (images x H x W, at least one image): 8 images of 256 px, 2 of
512 px, 1 of 1,024 px, in float32 and bf16 alike. Larger batches were slower per image on a CPU
with native bf16 (quiet 2-core run of ``benchmarks/bench_infer.py``: 512 px at batch 8 1.93 img/s,
at batch 2 2.39 img/s; at 256 px batch 8 and 4 equal), because the full-resolution activations of
a batch fall out of the cache. In float32 on the 2-core AVX2 VM, with the heap policy of
:mod:`sam2elnet.utils.heap`, this cap ran 8 % faster than half of it at 256 px (batch 8 vs 4,
12.60 vs 11.65 img/s) and 10 % at 512 px (batch 2 vs 1, 2.98 vs 2.72 img/s), 2026-12-05
(docs/benchmarks.md, "Heap policy"); half of it had been the float32 cap from 2026-12-01, when
glibc mapped and zero-filled a batch's large activations afresh in every forward."""


RUNTIME_BASE = 580_000_000
"""Resident bytes of an ``elnet annotate`` / ``enhance`` / ``scene`` process before its model's
weights and pixels: the interpreter with torch, transformers, geopandas, rasterio, OpenCV and SciPy
loaded, the first forward's one-off buffers and the window path's GeoPackage writer. Measured
2026-12-04: the largest of ``VmHWM - 2 x weights - pixels x per pixel`` over the runs in the module
docstring (571 MB, micro model, a 16^2 px image on the window path, shared 2-core VM), rounded up;
was 420 MB (the forward alone, which a 500M budget overran by 47 MB)."""

WEIGHT_COPIES = 2
"""Copies of the model's weights the estimate counts: loading a model file holds the file's
tensors and the model's at once (tiny, 111 MB of weights: the load raised the peak by 206 MB over
the libraries; measured as :data:`RUNTIME_BASE`)."""

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
        UserError: not a size, or too small (``max_memory (--max-memory) '1M' must be ...``:
            the Predictor's argument and the command line's flag).
    """
    try:
        return memory_bytes(value)
    except ValueError as err:
        raise UserError(f"{api_option('max_memory')} {value!r} {err}") from None


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

    ``weights`` is the bytes of the model's weights as loaded (:func:`model_bytes`, or the
    model file's size where that is larger), counted :data:`WEIGHT_COPIES` times (the load holds
    the file's tensors beside the model's). The result includes :data:`RUNTIME_BASE`. See the
    module docstring for the formula and its measurements.
    """
    pp = per_pixel_bytes(size, precision, bands, tta, coarse)
    return int(RUNTIME_BASE + WEIGHT_COPIES * weights + pixels * pp * max(1, batch))


def fit_batch(pixels: int, max_memory: int, limit: int, **kw: Any) -> int:
    """How many images of ``pixels`` px one forward may take: the largest ``n <= limit`` whose
    :func:`whole_image_bytes` (``batch=n``, other arguments as ``kw``) is within ``max_memory``
    and ``n x pixels`` within :data:`BATCH_PIXELS`, and at least 1."""
    one = whole_image_bytes(pixels, batch=1, **kw)
    fixed = whole_image_bytes(0, batch=1, **kw)
    per_image = max(1, one - fixed)
    n = int((max_memory - fixed) // per_image)
    return max(1, min(int(limit), n, BATCH_PIXELS // max(1, int(pixels))))


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
