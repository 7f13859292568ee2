"""Heap policy: freed tensor memory kept for reuse instead of handed back to the kernel.

Runs from ``sam2elnet/__init__.py`` (``import sam2elnet``: CLI and Python API alike), beside the
thread policy, and imports nothing heavy (``ctypes`` only).

Why. torch takes every CPU tensor from ``malloc``. glibc serves a block above its mmap threshold
(128 KiB at start, raised after each free of such a block, up to 32 MiB on 64-bit systems:
``mallopt(3)``, ``M_MMAP_THRESHOLD``) with a fresh ``mmap`` and unmaps it when the block is freed,
and it trims more than ``M_TRIM_THRESHOLD`` (twice the mmap threshold) of free memory at the top
of the heap. Every such block is then zero-filled page by page by the kernel on first touch, again
in every forward: a batch of two 512 px images through Hiera-tiny in float32 took ~120,000 page
faults per forward, the kernel's share of its CPU time was 13 %, and keeping the blocks made the
forward 1.11x (512 px, batch 2) and 1.18x (256 px, batch 8) as fast, a training step 1.02x, on
the 2-core machine of docs/benchmarks.md (``benchmarks/bench_heap.py``, "Heap policy").
PyTorch's CPU performance tuning guide recommends a caching allocator (jemalloc, tcmalloc) for the
same reason; this module gets the effect from glibc's documented ``mallopt`` knobs without
preloading a library.

What it does, on Linux with glibc only: ``mallopt(M_MMAP_THRESHOLD, N)`` and
``mallopt(M_TRIM_THRESHOLD, N)`` with ``N`` = :data:`DEFAULT_MB` MiB: blocks up to ``N`` come from
the heap and are reused after they are freed, and up to ``N`` of free memory at the heap's top is
kept. Blocks above ``N`` (a whole scene raster) are still mapped and returned when freed.

Cost: the resident memory of a process does not fall back after a peak (the freed memory is kept
for the next batch), and glibc's heap takes a few blocks of one size before its freed blocks
coalesce into one that fits the next aligned request: the peak of those forwards was 1.09-1.11x
(~90 MB) that under glibc's defaults, and ``elnet annotate --max-memory`` stayed within its budget
in every run of ``benchmarks/bench_max_memory.py`` (docs/benchmarks.md).

Overrides: ``SAM2ELNET_HEAP_MB=N`` (a whole number of MiB, 0-2047; 0 keeps glibc's defaults).
Another value keeps glibc's defaults too: the import stays silent (``applied().problem`` says
why) and every ``elnet`` command refuses it with one ``error:`` line (:func:`check`, exit 2;
``--help`` still shows).
The policy sets nothing, whatever ``SAM2ELNET_HEAP_MB`` says, where the user chose: a
``GLIBC_TUNABLES`` naming any ``glibc.malloc.*`` tunable, one of :data:`USER_MALLOC_ENV`
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``;
others such as ``MALLOC_ARENA_MAX`` do not count), or an ``LD_PRELOAD`` (jemalloc, tcmalloc),
whose ``malloc`` these glibc knobs would not reach.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

ENV_HEAP = "SAM2ELNET_HEAP_MB"
DEFAULT_MB = 1024
"""Blocks up to this many MiB come from the heap and this much free memory is kept at its top (the
default of ``SAM2ELNET_HEAP_MB``): well above the largest activation of an inference batch as
shipped (8 x 32 x 256 x 256 or 2 x 32 x 512 x 512 float32: 64 MiB), well below a whole scene
raster, which stays mapped and is returned when freed."""
MAX_MB = 2047
"""``mallopt`` takes an ``int`` byte count: 2047 MiB is the largest whole number of MiB below 2^31."""
LEGACY_MMAP_MAX_MB = 32
"""The upper limit of the mmap threshold that ``mallopt(3)`` documents for 64-bit systems
(``DEFAULT_MMAP_THRESHOLD_MAX``, 4 x 1024 x 1024 x ``sizeof(long)`` bytes). glibc 2.36 accepted
1 GiB (measured); where a release refuses more, the policy keeps blocks up to this size and still
raises the trim threshold."""
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter numbers, from glibc's ``<malloc.h>``."""
USER_MALLOC_ENV = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)
"""glibc's environment variables for the knobs this policy sets or depends on (``mallopt(3)``):
any of them set means the user chose, and the policy sets nothing."""


@dataclass(frozen=True)
class HeapPolicy:
    """What :func:`configure` did: ``mib`` applied (0 = nothing), or why not (``reason``);
    ``problem``: the message for a ``SAM2ELNET_HEAP_MB`` that is not valid ("" when it is)."""

    mib: int
    reason: str = ""
    problem: str = ""


_applied: HeapPolicy | None = None


def _is_glibc() -> bool:
    """Whether this process runs on glibc: its ``confstr`` names a version (musl's raises).
    Not ``platform.libc_ver()``, which then reads ``sys.executable`` (and raises when it
    cannot)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return False


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None off Linux / glibc (musl has no such knobs)."""
    if not sys.platform.startswith("linux") or not _is_glibc():
        return None
    # the process's own symbols (glibc is loaded: it runs Python): ctypes.util.find_library("c")
    # would start /sbin/ldconfig -p (or gcc) as a child process at every import sam2elnet
    fn = None
    for name in (None, "libc.so.6"):
        try:
            fn = ctypes.CDLL(name).mallopt
            break
        except (OSError, AttributeError):
            continue
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def requested_mib(environ: Mapping[str, str]) -> int | None:
    """MiB asked for by ``SAM2ELNET_HEAP_MB`` (:data:`DEFAULT_MB` when unset or empty), or None
    when the value is not a whole number from 0 to :data:`MAX_MB`."""
    text = environ.get(ENV_HEAP, "").strip()
    if not text:
        return DEFAULT_MB
    # ASCII digits only: str.isdigit() also passes "\u00b2", which int() refuses; and a few
    # digits only: int() refuses more than 4,300 (sys.get_int_max_str_digits)
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(MAX_MB)):
        return None
    return int(digits) if int(digits) <= MAX_MB else None


def problem_message(environ: Mapping[str, str]) -> str:
    """What is wrong with ``SAM2ELNET_HEAP_MB`` and what to do ("" when it is valid or unset)."""
    if requested_mib(environ) is not None:
        return ""
    return (
        f"{ENV_HEAP}={environ.get(ENV_HEAP, '').strip()!r} is not a whole number of MiB from 0 to "
        f"{MAX_MB}: unset it ({DEFAULT_MB} MiB of freed tensor memory kept for reuse), or set 0 "
        'to keep glibc\'s malloc defaults (docs/training.md, "Heap")'
    )


def user_choice(environ: Mapping[str, str]) -> str:
    """The user's own allocator setting that this policy must leave alone ("" when none)."""
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    for var in USER_MALLOC_ENV:
        if var in environ:
            return f"{var} is set"
    if environ.get("LD_PRELOAD", "").strip():
        return "LD_PRELOAD is set (another allocator may be in place)"
    return ""


def _set_thresholds(mallopt: Callable[[int, int], int], mib: int) -> HeapPolicy:
    """Both thresholds to ``mib`` MiB through ``mallopt``; the mmap threshold at
    :data:`LEGACY_MMAP_MAX_MB` where a larger one is refused."""
    mmap_mib = mib
    ok = mallopt(M_MMAP_THRESHOLD, mib * 1024 * 1024) == 1
    if not ok and mib > LEGACY_MMAP_MAX_MB:  # an older glibc's limit
        mmap_mib = LEGACY_MMAP_MAX_MB
        ok = mallopt(M_MMAP_THRESHOLD, mmap_mib * 1024 * 1024) == 1
    if not (ok and mallopt(M_TRIM_THRESHOLD, mib * 1024 * 1024) == 1):
        return HeapPolicy(0, "mallopt refused")
    if mmap_mib != mib:
        return HeapPolicy(mmap_mib, f"this glibc maps blocks above {mmap_mib} MiB")
    return HeapPolicy(mib)


def configure(
    environ: Mapping[str, str] | None = None,
    mallopt: Callable[[int, int], int] | None = None,
) -> HeapPolicy:
    """Apply the policy of the module docstring; returns what was done. Never raises.

    ``environ`` defaults to ``os.environ``; ``mallopt`` to glibc's (tests pass a recorder).
    """
    global _applied
    env = os.environ if environ is None else environ
    mib = requested_mib(env)
    reason = user_choice(env)
    if mib is None:
        policy = HeapPolicy(0, f"{ENV_HEAP} is not valid", problem_message(env))
    elif mib == 0:
        policy = HeapPolicy(0, f"{ENV_HEAP}=0")
    elif reason:
        policy = HeapPolicy(0, reason)
    else:  # glibc's mallopt looked up only when it is to be called
        fn = mallopt if mallopt is not None else _glibc_mallopt()
        policy = HeapPolicy(0, "not glibc") if fn is None else _set_thresholds(fn, mib)
    log.debug("heap policy: %s", f"{policy.mib} MiB" if policy.mib else policy.reason)
    if environ is None and mallopt is None:
        _applied = policy
    return policy


def applied() -> HeapPolicy | None:
    """The policy applied at ``import sam2elnet`` (None if :func:`configure` never ran)."""
    return _applied


def check() -> None:
    """Refuse a ``SAM2ELNET_HEAP_MB`` that :func:`configure` could not use (the CLI, before a
    command runs).

    Raises:
        UserError: the variable is set and not a whole number of MiB from 0 to :data:`MAX_MB`.
    """
    problem = _applied.problem if _applied is not None else problem_message(os.environ)
    if problem:
        from sam2elnet.errors import UserError

        raise UserError(problem)
