"""Runtime helpers that training and inference both stand on.

One place for the things every model run needs, so that :mod:`sam2elnet.engine.train` and
:mod:`sam2elnet.engine.infer` import this module instead of each other:

* :func:`resolve_device` - a device name checked against the machine;
* :func:`resolve_precision` / :func:`native_bf16` - what ``--precision auto`` (the default) means on
  this machine: bf16 only where the hardware computes bf16 natively, else ``32`` (float32);
* :func:`autocast` - the bf16 autocast context (or a no-op for float32);
* :func:`set_threads` - how many CPU threads torch uses (the single switch a thread policy extends);
* :func:`seed_everything` - Python, NumPy and torch seeds;
* :func:`run_model` / :class:`ModelRun` - the batched forward pass plus test-time-augmentation
  views and the uncertainty features of the quality evaluator. Evaluator fitting (training) and
  label scoring (inference) call the same function, so the evaluator sees one feature distribution.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sam2elnet.engine.coarse_rule import CoarseRule, apply_rule
from sam2elnet.errors import CheckpointError, UserError
from sam2elnet.model.quality_features import (
    all_finite,
    all_ones,
    input_flags,
    tta_views,
    uncertainty_features,
)
from sam2elnet.option_checks import api_option
from sam2elnet.option_values import norm_precision_value
from sam2elnet.utils.threads import set_torch_threads

log = logging.getLogger(__name__)

__all__ = [
    "ENV_NATIVE_BF16",
    "ModelRun",
    "autocast",
    "native_bf16",
    "announce_precision",
    "announce_predictor_precision",
    "precision_note",
    "precision_record",
    "resolve_device",
    "resolve_precision",
    "run_model",
    "seed_everything",
    "set_threads",
    "speed_levers",
]


def resolve_device(name: str) -> torch.device:
    """Check a device name against the machine.

    Args:
        name: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The matching :class:`torch.device`.

    Raises:
        UserError: CUDA is asked for but not available, or the name is none of the above.
    """
    if name.startswith("cuda") and not torch.cuda.is_available():
        cpu = api_option("device='cpu'", "--device cpu")
        raise UserError(f"device {name!r} requested but CUDA is not available; use {cpu}")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    return torch.device(name)


#: Environment variable overriding :func:`native_bf16` (``1`` / ``0``), e.g. for a CPU torch
#: does not recognise or to A/B both precisions under ``--precision auto``.
ENV_NATIVE_BF16 = "SAM2ELNET_NATIVE_BF16"


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 matrix products natively (so bf16 autocast pays off).

    CPU: AVX512-BF16 (Intel Cooper Lake and later, AMD Zen 4 and later) or AMX tiles (Intel
    Sapphire Rapids and later), as torch reports them (``torch.cpu._is_avx512_bf16_supported``,
    ``_is_amx_tile_supported``); where torch lacks those queries, oneDNN's own bf16 check
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``). Without native bf16, torch runs bf16
    ``mm`` and convolutions through reference kernels. Measured on AVX2 AMD EPYC machines
    (torch 2.13.0, 2026-12-01, busy machine): a (16384 x 96) @ (96 x 384) product took 374 ms in
    bf16 against 28 ms in fp32 (13x), and a Hiera-tiny training step took 65 CPU s in bf16
    against 5.8 in fp32 at 256 px (docs/benchmarks.md, "Precision"). CPUs with AVX-512 but
    without its BF16 extension (Skylake to Ice Lake) also get fp32: oneDNN only emulates bf16
    there. CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and later). Other devices: False.
    ``SAM2ELNET_NATIVE_BF16=1`` / ``=0`` overrides the detection.

    Args:
        device: a :class:`torch.device` or its name.

    Returns:
        True when bf16 autocast is expected to be faster than fp32 on ``device``.
    """
    env = os.environ.get(ENV_NATIVE_BF16, "").strip().lower()
    if env:
        return env in ("1", "true", "yes", "on")
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [
        getattr(cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    if all(c is None for c in checks):  # an older/newer torch without these private queries
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return any(bool(c()) for c in checks if c is not None)


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """The precision a run uses: ``"bf16"`` (bf16 autocast) or ``"32"`` (float32).

    Args:
        precision: ``"auto"`` (the default everywhere: bf16 where :func:`native_bf16` says the
            device computes it natively, else float32), ``"bf16"`` (forced, also where it is
            slow), or ``"32"`` (float32; any spelling :func:`~sam2elnet.option_values.norm_precision_value`
            reads, such as the older ``"fp32"``).
        device: where the model runs.

    Returns:
        ``"bf16"`` or ``"32"``.
    """
    p = norm_precision_value(precision)
    if p == "auto":
        return "bf16" if native_bf16(device) else "32"
    return "32" if p == "32" else "bf16"


def precision_note(precision: str, device: torch.device | str = "cpu") -> str:
    """One log line saying which precision a run uses and why, in the values of ``--precision``.

    Example: ``precision: 32 (float32; auto: no native bf16 on this device, ...)`` or
    ``precision: bf16 (bf16 autocast; --precision bf16)``. bf16 forced on a device without
    native bf16 (:func:`native_bf16`) adds that it is emulated there and runs many times slower
    (13x for a matrix product on an AVX2 CPU, see :func:`native_bf16`).
    """
    used = resolve_precision(precision, device)
    name = "bf16 autocast" if used == "bf16" else "float32"
    given = norm_precision_value(precision)
    if given != "auto":
        slow = ""
        if used == "bf16" and not native_bf16(device):
            where = "this CPU" if torch.device(device).type == "cpu" else "this device"
            slow = (
                f"; bf16 is emulated on {where} (no native bf16) and runs many times slower "
                "than --precision 32"
            )
        return f"precision: {used} ({name}; --precision {given}{slow})"
    why = (
        "this device computes bf16 natively"
        if used == "bf16"
        else "no native bf16 on this device, where bf16 runs many times slower; "
        "--precision bf16 forces it"
    )
    return f"precision: {used} ({name}; auto: {why})"


def precision_record(precision: str, device: torch.device | str = "cpu") -> dict[str, str]:
    """The precision entries of a run record (``summary.json``, ``cv.json``, scene manifests).

    Named apart from the ``precision`` metric of evaluations, so a record holding both is clear.

    Returns:
        ``{"precision_option": "auto" | "bf16" | "32" (what was asked for),
        "precision_resolved": "bf16" | "32" (what ran, :func:`resolve_precision`)}``.
    """
    return {
        "precision_option": norm_precision_value(precision),
        "precision_resolved": resolve_precision(precision, device),
    }


def announce_precision(
    precision: str,
    device: torch.device | str = "cpu",
    used: str | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Log a run's precision line once (:func:`precision_note`, to ``say`` or the log at INFO)
    and return its run-record entries (:func:`precision_record`).

    Args:
        precision: the ``--precision`` given.
        device: where the model runs.
        used: the precision the loaded model really runs (``Predictor.precision``), when known;
            a model passed in ready-made brings its own, which is then the one reported.
        say: where the line goes (the CLI passes ``typer.echo``).
    """
    given = precision if used is None or resolve_precision(precision, device) == used else used
    (say or log.info)(precision_note(given, device))
    return precision_record(given, device)


def announce_predictor_precision(
    precision: str, pred: Any, say: Callable[[str], None] | None = None
) -> dict[str, str]:
    """:func:`announce_precision` for a loaded predictor: its ``device`` (default ``"cpu"``) and
    the ``precision`` it really runs (default: none known), as annotate, enhance and scene report
    them.

    Args:
        precision: the ``--precision`` given.
        pred: the predictor (a ``Predictor``, or any object; missing attributes take the defaults).
        say: where the line goes (the CLI passes ``typer.echo``; None: the log at INFO).

    Returns:
        The run-record entries (:func:`precision_record`).
    """
    device = getattr(pred, "device", "cpu")
    return announce_precision(precision, device, getattr(pred, "precision", None), say)


def autocast(device: torch.device, precision: str) -> Any:
    """bf16 autocast context when ``precision`` resolves to bf16 (CPU and CUDA), else a no-op.

    Args:
        device: where the model runs (its ``type`` selects the autocast backend).
        precision: ``"auto"``, ``"bf16"`` or ``"32"`` (see :func:`resolve_precision`).

    Returns:
        A context manager.
    """
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Args:
        seed: any integer; NumPy receives it modulo 2**32.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> None:
    """Set torch's intra-op CPU threads to ``n``, else the thread policy's count.

    The policy (:mod:`sam2elnet.utils.threads`, applied at ``import sam2elnet`` before torch loads
    OpenMP): ``SAM2ELNET_THREADS``, else ``OMP_NUM_THREADS``, else the CPUs this process may use
    (affinity mask and cgroup CPU quota, not ``os.cpu_count()``) divided by ``LOCAL_WORLD_SIZE``
    under ``torchrun``; idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) so that a machine
    shared with other CPU-bound jobs does not make every op wait a scheduler time slice.

    An explicit choice wins: ``n`` is applied; with ``n`` None a count set in this process after
    ``import sam2elnet`` (``torch.set_num_threads(k)`` in a Python API script) is kept, not reset
    to the policy's (:func:`sam2elnet.utils.threads.set_torch_threads`).

    Args:
        n: threads to use; None or 0 for the policy's count.
    """
    set_torch_threads(n or None)


ENV_CHANNELS_LAST = "SAM2ELNET_CHANNELS_LAST"
ENV_COMPILE = "SAM2ELNET_COMPILE"
ENV_BF16_TRUNK = "SAM2ELNET_BF16_TRUNK"


def _env_flag(name: str, default: bool = False) -> bool:
    """The boolean environment variable ``name`` (1/true/yes/on or 0/false/no/off); ``default``
    when it is unset or empty."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in ("1", "true", "yes", "on")


def channels_last_default(flag: bool | None = None) -> bool:
    """Whether to run channels-last: ``flag`` when given, else on unless the environment variable
    ``SAM2ELNET_CHANNELS_LAST=0`` turns it off (training and inference alike)."""
    return _env_flag(ENV_CHANNELS_LAST, default=True) if flag is None else bool(flag)


def speed_levers(
    model: torch.nn.Module,
    *,
    channels_last: bool | None = None,
    compile: bool | None = None,
    bf16_trunk: bool | None = None,
) -> torch.nn.Module:
    """Inference speed levers: channels-last and a bf16 trunk on by default, compile opt-in (all
    A/B-measured by ``benchmarks/bench_infer.py``; docs/benchmarks.md, "Levers").

    Args:
        model: the network, already on its device and in eval mode. Not copied: ``channels_last``
            converts its conv weights in place (results are the same up to float rounding).
        channels_last: convolution weights in channels-last memory format (oneDNN's preferred
            layout; same probabilities up to float rounding, faster convolutions); None = on
            unless the environment variable ``SAM2ELNET_CHANNELS_LAST=0`` turns it off.
        compile: wrap in ``torch.compile(dynamic=False)``: static shapes, one compilation per input
            shape (tens of seconds to minutes on a CPU; inductor caches compiled graphs on disk, so
            later processes start faster); None = ``SAM2ELNET_COMPILE=1``.
        bf16_trunk: cast the Hiera trunk's weights to bf16 once, so that bf16 autocast stops
            casting them on every call and the trunk's token stream stays bf16 (only for bf16
            autocast inference; the caller passes False for fp32). Converts ``model.trunk`` in
            place. None = on unless ``SAM2ELNET_BF16_TRUNK=0`` (default since 2026-12-01): on a
            trained Hiera-tiny model 99.98 % of ``annotate``'s label pixels equal those of the
            fp32 trunk (worst image 99.86 %), as close as bf16 autocast itself; about 3-7 % faster
            (docs/benchmarks.md, "Levers").

    Returns:
        The module to call (``model`` itself or its compiled wrapper).
    """
    channels_last = channels_last_default(channels_last)
    if compile is None:
        compile = _env_flag(ENV_COMPILE)
    if bf16_trunk is None:
        bf16_trunk = _env_flag(ENV_BF16_TRUNK, default=True)
    if bf16_trunk and hasattr(model, "trunk"):
        model.trunk.to(torch.bfloat16)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model, dynamic=False)  # type: ignore[assignment]
    return model


@dataclass
class ModelRun:
    """Outputs of one batched forward (plus TTA views): everything the engine needs, on the CPU."""

    probs: torch.Tensor  # (B, H, W) float32: main output averaged with the TTA views
    features: np.ndarray  # (B, F) uncertainty features
    embedding: np.ndarray  # (B, D)
    flags: list[str] = field(default_factory=list)  # (B,) "" or why the input carries no label


#: Raised message when a model turns finite input into NaN/Inf.
NON_FINITE_OUTPUT = (
    "the model produced NaN/Inf outputs on finite input: its weights are corrupt or its "
    "training diverged; re-copy the model file or retrain (e.g. with a lower --lr)"
)


def _check_finite(t: torch.Tensor) -> None:
    if not all_finite(t):
        raise CheckpointError(NON_FINITE_OUTPUT)


def _resize_nearest(mask: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(B, H, W) float mask at ``size`` (h, w): 1 where any covered pixel is 1 (max-pool-like)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return torch.nn.functional.adaptive_max_pool2d(mask[:, None], tuple(size))[:, 0]


@torch.no_grad()
def run_model(
    model: torch.nn.Module,
    x: torch.Tensor,
    coarse: torch.Tensor | None = None,
    *,
    device: torch.device,
    precision: str = "auto",
    tta: int = 0,
    valid: torch.Tensor | None = None,
    rule: CoarseRule | None = None,
) -> ModelRun:
    """One forward of a batch plus ``tta`` augmented views; features for the quality evaluator.

    The returned probabilities average the main and the de-augmented views (the views cost forward
    passes anyway, and averaging them is a free accuracy gain); the features compare each view and
    each deep-supervision output with the main output.

    Args:
        model: a SAM2-ELNet (put into eval mode here).
        x: (B, C, H, W) float32 normalised images.
        coarse: (B, 1, H, W) coarse labels in {0, 1} for enhancement, or None for annotation;
            cleared (0) where ``valid`` is 0 before the forward: nodata pixels carry no image
            (normalised to 0), so a coarse label over them carries nothing either (before, a
            coarse polygon wholly over a nodata border changed the label on valid pixels).
        device: where to run.
        precision: ``"auto"``, ``"bf16"`` (autocast) or ``"32"`` (:func:`resolve_precision`).
        tta: number of test-time-augmentation views (0 = none).
        valid: (B, H, W) 1 where pixels hold data; probabilities are zeroed elsewhere.
            Non-finite input pixels count as nodata (set to 0 before the forward).
        rule: with ``coarse``, a :class:`~sam2elnet.engine.coarse_rule.CoarseRule` (enhancement:
            drop new objects, limit growth); its support mask, found on the averaged
            probabilities, zeroes the main, test-time-view and deep-supervision probabilities
            outside it before the features are computed, so the scores describe the output.

    Returns:
        A :class:`ModelRun` with (B, H, W) float32 probabilities in [0, 1], (B, F) features,
        (B, D) embeddings (all on the CPU) and per-image input flags
        (:func:`sam2elnet.model.quality_features.input_flags`: all nodata, constant image...).

    Raises:
        CheckpointError: the model turned finite input into NaN/Inf (corrupt weights).
    """
    if any(m.training for m in model.modules()):  # eval() walks every module: ~9 ms a batch
        model.eval()
    x = x.to(device)
    b = x.shape[0]
    # the usual all-finite batch is found in one min / max pass (not a (B, H, W) map)
    finite = True if all_finite(x) else torch.isfinite(x).all(1)
    if valid is not None and all_ones(valid):  # every pixel valid (the usual case), found once:
        valid = None  # the features and flags take their all-valid paths, no product with ones
    flags = input_flags(x, valid, finite=finite)
    if isinstance(finite, torch.Tensor):  # some value is NaN / Inf
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        valid = finite.float() if valid is None else valid.to(device).float() * finite.float()
    has = None
    if coarse is not None:
        coarse = coarse.to(device).float()
        if valid is not None:  # nodata carries no image, so no coarse label either (as filled)
            coarse = coarse * valid.to(device).float()[:, None]
        has = torch.ones(b, device=device)
    with autocast(device, precision):
        out = model(x, coarse, has)
    _check_finite(out.logits)
    main = torch.sigmoid(out.logits.float())[:, 0]
    sides = [torch.sigmoid(s.float())[:, 0] for s in out.side_logits]
    views = []
    for fwd, inv in tta_views(tta):
        with autocast(device, precision):
            o = model(fwd(x), None if coarse is None else fwd(coarse), has)
        _check_finite(o.logits)
        views.append(inv(torch.sigmoid(o.logits.float()))[:, 0])
    v = None if valid is None else valid.to(device).float()
    if coarse is not None and rule is not None and rule.active:
        avg = main if not views else torch.stack([main, *views]).mean(0)
        if v is not None:
            avg = avg * v
        sup_np = apply_rule(rule, avg.cpu().numpy(), coarse[:, 0].cpu().numpy())
        sup = torch.from_numpy(sup_np).to(main.device).float()
        main = main * sup
        views = [t * sup for t in views]
        sides = [s * _resize_nearest(sup, s.shape[-2:]) for s in sides]
    feats = uncertainty_features(
        main.cpu(),
        tta_probs=[t.cpu() for t in views],
        side_probs=[s.cpu() for s in sides],
        valid=None if v is None else v.cpu(),
        coarse=None if coarse is None else coarse[:, 0].cpu(),
        has_coarse=None if has is None else has.cpu(),
    )
    probs = main if not views else torch.stack([main, *views]).mean(0)
    if v is not None:
        probs = probs * v
    return ModelRun(
        probs=probs.float().cpu(),
        features=feats.numpy().astype(np.float64),
        embedding=out.embedding.float().cpu().numpy().astype(np.float64),
        flags=flags,
    )
