"""Helpers shared by the benchmark scripts: machine line, matmul ceiling, FLOP counting,
alternating timers, goal lines and the switchable speed levers.

Import ``sam2elnet`` before torch (done here) so the product's thread policy is in place exactly
as it is for a user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sam2elnet  # noqa: E402,F401  (thread policy before torch loads OpenMP)

# isort: split
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

K = TypeVar("K", bound=Hashable)  # a contender's key in alternate / alternate_rounds

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""``../shared/data`` next to the repository (the tests' ``conftest.SHARED_DATA``): the dev data
sets the benchmarks read where present (``roads-dev``, ``sos-dev``)."""


# ------------------------------------------------------------------------------- environment
def machine() -> str:
    """One line describing this machine, the load and the software versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from sam2elnet.utils.threads import available_cpus

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{cpu}; {os.cpu_count()} logical CPUs ({available_cpus()} usable); load average {load}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"Python {platform.python_version()}"
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM`` of ``/proc/self/status``) in MB; NaN where
    there is none. Not ``getrusage().ru_maxrss``: Linux carries that over ``exec`` from the
    forking parent, so a child of a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


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
    try:
        yield box
    finally:
        F.scaled_dot_product_attention = orig  # type: ignore[assignment]


def forward_flops(fn: Callable[[], object]) -> float:
    """FLOPs of ``fn()`` (one forward): FlopCounterMode plus the attention products it misses."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), count_attention() as attn, FlopCounterMode(display=False) as fc:
        fn()
    counted = float(fc.get_total_flops())
    per_op = fc.get_flop_counts().get("Global", {})
    attn_counted = any("attention" in str(op) for op in per_op)
    return counted + (0.0 if attn_counted else attn[0])


# ------------------------------------------------------------------------------- timing
def alternate_rounds(
    fns: Mapping[K, Callable[[], object]], reps: int, clock: Callable[[], float] | None = None
) -> dict[K, list[float]]:
    """Seconds of each function in every one of ``reps`` rounds, run in turn (a, b, c, a, b, c,
    ...) after one warm-up round, so a change in machine load hits every contender alike: the raw
    rounds of :func:`alternate`, for a script that prints more than the median (e.g. the fastest
    round, the least disturbed on a busy machine)."""
    clock = clock or time.perf_counter
    for fn in fns.values():
        fn()
    times: dict[K, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = clock()
            fn()
            times[k].append(clock() - t)
    return times


def alternate(
    fns: Mapping[K, Callable[[], object]], reps: int, clock: Callable[[], float] | None = None
) -> dict[K, float]:
    """Median seconds of each function over the rounds of :func:`alternate_rounds`.

    ``clock`` defaults to wall time (``time.perf_counter``); ``time.process_time`` (``--cpu-time``
    of the scripts) counts the CPU seconds of all threads of this process instead, which other
    load disturbs far less - for A/B ratios on a busy machine, not for images/s a user sees."""
    return {k: statistics.median(v) for k, v in alternate_rounds(fns, reps, clock).items()}


@dataclass
class Goals:
    """Ratios with their goals; printed as ``GOAL`` lines and optionally written as JSON."""

    rows: list[dict] = field(default_factory=list)

    def add(self, name: str, value: float, goal: float, unit: str = "x", higher: bool = True):
        met = value >= goal if higher else value <= goal
        self.rows.append(
            {"name": name, "value": value, "goal": goal, "unit": unit, "higher": higher, "met": met}
        )
        return met

    def print(self, title: str) -> None:
        print(f"\n{title}: goals")
        for r in self.rows:
            op = ">=" if r["higher"] else "<="
            fmt = ".0%" if r["unit"] == "%" else ".3f"
            val = format(r["value"], fmt) + ("" if r["unit"] == "%" else r["unit"])
            goal = format(r["goal"], fmt) + ("" if r["unit"] == "%" else r["unit"])
            status = "met" if r["met"] else "NOT met"
            print(f"GOAL {r['name']:<58} {val:>8}  (goal {op} {goal})  {status}", flush=True)

    def dump(self, path: str | None, extra: dict | None = None) -> None:
        if path:
            Path(path).write_text(json.dumps({"goals": self.rows, **(extra or {})}, indent=1))


# ------------------------------------------------------------------------------- levers
@dataclass(frozen=True)
class Lever:
    """One switchable speed lever (a variant of our network / runtime to A/B)."""

    name: str
    precision: str = "auto"  # "auto" (as shipped: bf16 autocast where the CPU computes bf16
    # natively, else fp32; lever_precision), "bf16" (forced autocast), "32", or "bf16-weights"
    channels_last: bool | None = None  # None = the product's default (on, training and inference)
    compile: bool = False  # torch.compile(dynamic=False), inference only
    bf16_trunk: bool | None = None  # frozen trunk's weights cast to bf16 once (inference;
    # None = the product's default: on under bf16 autocast)
    lib_attention: bool = False  # transformers' own Hiera attention (with its discarded score
    # matrix) instead of the product's LeanAttention: the trunk as shipped before 2026-12-01
    plain_gelu: bool = False  # torch's nn.GELU on channels-last maps instead of the product's
    # model.activations.GELU (the dense NHWC view): the decoder as shipped before 2026-12-04
    detail_width: int | None = None  # lighter full-resolution head (model default 16)
    trunk_scale: int | None = None  # trunk on a 2x2-pooled image (ModelConfig.trunk_scale)
    int8_trunk: bool = False  # frozen trunk's nn.Linear layers dynamically quantised to int8
    # (inference only; quantize_int8_trunk)
    batch: int | None = None  # None = the product's default (inference: 8 capped by pixels;
    # training: the pixel rule of engine.train_schedule.auto_batch_size)
    help: str = ""


LEVERS: dict[str, Lever] = {
    lv.name: lv
    for lv in (
        Lever(
            "default",
            help="as shipped (elnet train --weights none): the trunk at half resolution "
            "(--trunk-scale auto), precision auto (bf16 autocast where the CPU computes bf16 "
            "natively, else fp32), channels-last, LeanAttention; inference under bf16: the trunk's "
            "weights in bf16; batch 8 capped at 2 x 512^2 px per forward; "
            "training batch by "
            "pixels (4 at 256 px, 2 at 512 px)",
        ),
        Lever(
            "prev-default",
            trunk_scale=1,
            bf16_trunk=False,
            lib_attention=True,
            plain_gelu=True,
            help="the default of 2026-12-01 05:00 (before LeanAttention and, for inference, "
            "the bf16 trunk): transformers' attention, fp32 trunk weights under autocast",
        ),
        Lever(
            "old-default",
            trunk_scale=1,
            channels_last=False,
            batch=8,
            bf16_trunk=False,
            lib_attention=True,
            plain_gelu=True,
            help="as shipped before 2026-12-01: channels-first, always batch 8",
        ),
        Lever("channels-first", channels_last=False, help="the default, channels-first"),
        Lever("fp32", precision="32", help="no autocast (otherwise as default)"),
        Lever(
            "bf16-forced",
            precision="bf16",
            help="bf16 autocast even where the CPU has no native bf16 (the default before "
            "2026-12-01 11:00; many times slower there)",
        ),
        Lever("batch-ref", batch=-1, help="bf16, the reference's batch (4 / 2)"),
        Lever("channels-last", channels_last=True, help="model and inputs channels-last"),
        Lever("bf16-weights", precision="bf16-weights", help="weights cast to bf16, no autocast"),
        Lever("fp32-trunk", bf16_trunk=False, help="inference: the trunk's weights stay fp32"),
        Lever("lib-attention", lib_attention=True, help="transformers' own Hiera attention"),
        Lever(
            "plain-gelu",
            plain_gelu=True,
            help="torch's nn.GELU straight on the channels-last decoder maps (the default "
            "before 2026-12-04), not on their dense NHWC view",
        ),
        Lever("light-head", detail_width=8, help="full-resolution head width 8 instead of 16"),
        Lever(
            "full-trunk",
            trunk_scale=1,
            help="the trunk at full resolution: what elnet train builds with SAM2 weights "
            "(--trunk-scale auto) or with --trunk-scale 1, and the default before 2026-12-01 "
            "19:30 (the default without weights runs the trunk at half resolution)",
        ),
        Lever("compile", compile=True, help="torch.compile(dynamic=False), static shapes"),
        Lever(
            "int8-trunk",
            precision="32",
            int8_trunk=True,
            help="inference: the default network in float32 with the frozen trunk's nn.Linear "
            "layers (qkv, proj, MLP) dynamically quantised to int8 (weights int8 per output "
            "channel, activations quantised per batch at run time; "
            "torch.ao.quantization.quantize_dynamic, which torch 2.13 marks deprecated - the "
            "maintained route is torchao's quantize_ with an int8 dynamic-activation / int8-weight "
            "config, not installed). Always float32 around the trunk: quantised linears refuse "
            "bf16 inputs, so it cannot run under bf16 autocast",
        ),
    )
}
INFER_LEVERS = [
    "default",
    "prev-default",
    "old-default",
    "fp32",
    "batch-ref",
    "bf16-weights",
    "fp32-trunk",
    "lib-attention",
    "plain-gelu",
    "light-head",
    "full-trunk",
    "int8-trunk",
]
TRAIN_LEVERS = [
    "default",
    "prev-default",
    "old-default",
    "fp32",
    "channels-first",
    "light-head",
    "full-trunk",
]
HISTORY_LEVERS = ("prev-default", "old-default")
"""Rows of earlier defaults, kept to show what each change bought; ``--quick`` (``make bench``)
leaves them and the reference-lib row out (on a 2-core CPU without native bf16 the whole run went
from 19.9 to 16.1 min, 2026-12-01; docs/benchmarks.md)."""
"""Training rows: the reference's batch (4 / 2) is now the default's, so ``batch-ref`` and
``channels-last`` (both part of the default) are left out unless asked for with ``--levers``."""


def add_reference_lib_option(ap: argparse.ArgumentParser) -> None:
    """``--no-reference-lib`` for an argparse parser: drop the row of the reference design with
    transformers' own Hiera attention (the attention runs before 2026-12-01 measured)."""
    ap.add_argument(
        "--no-reference-lib",
        dest="reference_lib",
        action="store_false",
        help="leave out the reference-lib row (the reference with transformers' own attention, "
        "as runs before 2026-12-01 measured it)",
    )


def build_ours(
    size: str,
    detail_width: int | None = None,
    seed: int = 0,
    trunk_scale: int | None = None,
    in_bands: int = 1,
    modality: str = "sar",
) -> torch.nn.Module:
    """Our network as ``elnet train --weights none`` builds it (random weights; speed does not
    depend on them; ``trunk_scale`` None = that command's auto, ``TRUNK_SCALE_NO_WEIGHTS``;
    ``in_bands`` / ``modality``: the input bands and the normalisation of ``modality``)."""
    import warnings

    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.option_values import TRUNK_SCALE_NO_WEIGHTS

    torch.manual_seed(seed)
    kw = {} if detail_width is None else {"detail_width": detail_width}
    kw["trunk_scale"] = TRUNK_SCALE_NO_WEIGHTS if trunk_scale is None else trunk_scale
    norm = NormalizationConfig.for_modality(modality)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_model(
            ModelConfig(
                size=size, in_bands=in_bands, normalization=norm.model_dump(mode="json"), **kw
            )
        )


def apply_lever(model: torch.nn.Module, lever: Lever, train: bool) -> torch.nn.Module:
    """The model to call for ``lever`` (channels-last / bf16 weights / compiled).

    Inference goes through the product's own switch (``engine.runtime.speed_levers``, what
    ``Predictor(channels_last=..., compile=...)`` uses), so the bench measures that code path.
    """
    from sam2elnet.engine.runtime import speed_levers

    if lever.lib_attention:
        library_attention(model)
    if lever.plain_gelu:
        torch_gelu(model)
    if train:
        if (
            lever.precision == "bf16-weights"
            or lever.compile
            or lever.bf16_trunk
            or lever.int8_trunk
        ):
            raise ValueError(f"{lever.name} is an inference lever")
        return model.to(memory_format=torch.channels_last) if lever_channels_last(lever) else model
    if lever.precision == "bf16-weights":
        model = model.to(torch.bfloat16)
    if lever.int8_trunk:
        quantize_int8_trunk(model)
    return speed_levers(
        model,
        channels_last=lever.channels_last,
        compile=lever.compile,
        bf16_trunk=lever.bf16_trunk if lever_precision(lever) == "bf16" else False,
    )


def quantize_int8_trunk(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the ``nn.Linear`` layers of ``model.trunk`` (the frozen Hiera trunk: every
    attention ``qkv`` / ``proj`` and MLP layer) by dynamically quantised int8 linears, in place;
    returns ``model``. For inference only (the quantised layers have no gradients).

    ``torch.ao.quantization.quantize_dynamic``: weights int8 once, per output channel
    (``per_channel_dynamic_qconfig``) on the x86 / fbgemm / onednn engines, per tensor elsewhere;
    activations quantised to uint8 at run time, one scale per call from the min / max of the
    layer's whole input (all images of the batch), int32 accumulation, float32 output. Inputs
    must be float32: the layers refuse bf16 (so no bf16 autocast, no bf16 trunk). The rest of
    the network (stem, adapters, patch embedding, attention products, decoder) stays float32.
    torch 2.13 marks this API deprecated ("please migrate to use torchao eager mode quantize_
    API"); its warnings are silenced here. The maintained route would be
    ``torchao.quantization.quantize_(model.trunk, <int8 dynamic-activation int8-weight config>)``
    - torchao is not a dependency.
    """
    import warnings

    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    per_channel = torch.backends.quantized.engine in ("x86", "fbgemm", "onednn")
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        quantize_dynamic(model.trunk, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)
    return model


def library_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Switch ``model``'s Hiera attention back to ``transformers``' own class (in place): the
    trunk as shipped before LeanAttention, for the ``prev-default`` / ``old-default`` rows."""
    from transformers.models.sam2.modeling_sam2 import Sam2MultiScaleAttention

    from sam2elnet.model.hiera import LeanAttention

    for m in model.modules():
        if type(m) is LeanAttention:
            m.__class__ = Sam2MultiScaleAttention
    return model


def torch_gelu(model: torch.nn.Module) -> torch.nn.Module:
    """Switch ``model``'s GELU modules back to torch's ``nn.GELU`` (in place): the decoder and
    coarse-label encoder as shipped before ``model.activations.GELU``, for the ``plain-gelu``,
    ``prev-default`` and ``old-default`` rows (same values within 1 ulp, same parameters)."""
    from sam2elnet.model.activations import GELU

    for m in model.modules():
        if type(m) is GELU:
            m.__class__ = torch.nn.GELU
    return model


def lever_channels_last(lever: Lever, train: bool = False) -> bool:
    """Whether ``lever`` runs channels-last (None: the product's default, the same rule for
    training and inference: ``engine.runtime.channels_last_default``)."""
    from sam2elnet.engine.runtime import channels_last_default

    return channels_last_default(lever.channels_last)


def lever_batch(
    lever: Lever, default: int | None, ref_batch: int, size: int, train: bool = False
) -> int:
    """Images per forward for ``lever``: its own batch, the reference's (-1), or the product's:
    for training ``default`` when given (``--batch``), else the pixel rule ``elnet train`` uses
    without ``--batch-size`` (``engine.train_schedule.resolve_batch_size``); for inference
    ``default`` capped at ``memory.BATCH_PIXELS`` per forward."""
    if lever.batch is not None:
        return ref_batch if lever.batch == -1 else lever.batch
    if train:
        from sam2elnet.engine.train_schedule import resolve_batch_size

        return resolve_batch_size(default, size)[0]
    from sam2elnet.engine.memory import BATCH_PIXELS

    return max(1, min(default, BATCH_PIXELS // (size * size)))


def lever_input(x: torch.Tensor, lever: Lever, train: bool = False) -> torch.Tensor:
    if lever_channels_last(lever, train):
        x = x.contiguous(memory_format=torch.channels_last)
    if lever.precision == "bf16-weights":
        x = x.to(torch.bfloat16)
    return x


def lever_precision(lever: Lever) -> str:
    """``lever``'s precision with ``auto`` resolved for this CPU (``engine.runtime``'s rule):
    ``"bf16"`` (autocast), ``"32"`` or ``"bf16-weights"``."""
    if lever.precision != "auto":
        return lever.precision
    from sam2elnet.engine.runtime import resolve_precision

    return resolve_precision("auto", "cpu")


def machine_levers(names: list[str]) -> list[str]:
    """``names`` without the rows that say nothing on this CPU: without native bf16 the default
    runs fp32, so ``fp32`` and ``fp32-trunk`` equal it, and forced-bf16 rows (``bf16-forced``,
    ``bf16-weights``) only measure the missing hardware at many times the default's time. With
    native bf16, ``int8-trunk`` is left out instead: there the default runs bf16 autocast with a
    bf16 trunk, and the int8 row (float32 around an int8 trunk; quantised linears refuse bf16)
    would change the precision of the whole network at once, not only the trunk's. ``--levers``
    still asks for any row."""
    from sam2elnet.engine.runtime import native_bf16

    if native_bf16("cpu"):
        return [n for n in names if n != "int8-trunk"]
    skip = {"fp32", "fp32-trunk", "bf16-forced", "bf16-weights"}
    return [n for n in names if n not in skip]


def lever_autocast(lever: Lever):  # noqa: ANN201
    enabled = lever_precision(lever) == "bf16"
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def write_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` synthetic SAR-like 8-bit PNG images of ``size`` px."""
    from sam2elnet.data.raster import write_image
    from sam2elnet.data.synthetic import make_scene

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{i:05d}.png"
        if not p.exists():
            write_image(p, make_scene("oil-spill", size, seed + i).image)
        out.append(p)
    return out


def save_ours(model: torch.nn.Module, path: Path) -> Path:
    """A model file like ``elnet train`` writes (unfitted quality evaluator)."""
    from sam2elnet.model import save_model

    save_model(model, path, extra={"normalization": model.config.normalization})
    return path
