"""CPU thread policy: how many threads, and how idle OpenMP threads wait.

Runs from ``sam2elnet/__init__.py``, i.e. on ``import sam2elnet`` (CLI and Python API alike), and
must therefore import nothing heavy — in particular **not torch**: the OpenMP runtime reads its
environment once, when torch loads it, so the variables below only take effect if they are set
first.

What it does (each variable only if the user has not set it):

* ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` = the CPUs this process may actually use: the smaller
  of the affinity mask (``os.sched_getaffinity``, e.g. ``taskset``/``--cpuset-cpus``) and the cgroup
  CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``, e.g. ``docker --cpus``),
  divided by ``LOCAL_WORLD_SIZE`` under ``torchrun``. ``os.cpu_count()`` counts the host's CPUs and
  oversubscribes containers.
* ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` (libgomp resp. Intel OpenMP): a thread that
  waits at a barrier sleeps instead of spinning. With the default (spinning) policy on a 2-core
  machine shared with other CPU-bound jobs, each parallel region waits for a descheduled sibling for
  a scheduler time slice: training ran 10-20x slower (DESIGN.md, docs/training.md).

Overrides: ``SAM2ELNET_THREADS=N`` sets the thread count (beats ``OMP_NUM_THREADS``); a
``torch.set_num_threads(k)`` called after ``import sam2elnet`` is kept (:func:`set_torch_threads`,
which training and inference call); any of the
OpenMP variables set by the user is left alone; ``SAM2ELNET_OMP_DEFAULTS=0`` disables the whole
policy (nothing is set; used by ``benchmarks/bench_contention.py`` to measure the old behaviour).

If torch was imported before ``sam2elnet``, the environment comes too late for OpenMP; then
:func:`configure` calls ``torch.set_num_threads`` instead and says so in a debug log line (the wait
policy cannot be changed any more in that process).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ENV_THREADS = "SAM2ELNET_THREADS"
ENV_DISABLE = "SAM2ELNET_OMP_DEFAULTS"
WAIT_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _positive_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def affinity_cpus() -> int | None:
    """CPUs in this process's affinity mask (``None`` where the OS has no such call, e.g. macOS)."""
    getaff = getattr(os, "sched_getaffinity", None)
    if getaff is None:
        return None
    try:
        return len(getaff(0)) or None
    except OSError:
        return None


def parse_cpu_max(text: str | None) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line ``"QUOTA PERIOD"`` (``"max ..."`` = no limit).

    >>> parse_cpu_max("150000 100000")
    1.5
    """
    if not text:
        return None
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    quota = _positive_int(parts[0])
    period = _positive_int(parts[1]) if len(parts) > 1 else 100000
    return quota / period if quota and period else None


def parse_cfs(quota: str | None, period: str | None) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = no limit)."""
    q, p = _positive_int(quota), _positive_int(period)
    return q / p if q and p else None


def _cgroup_paths(proc_cgroup: Path) -> tuple[str | None, dict[str, str]]:
    """(v2 path, {v1 controller: path}) from ``/proc/self/cgroup``."""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        for c in controllers.split(","):
            v1[c] = path
    return v2, v1


def _ancestors(base: Path, rel: str) -> list[Path]:
    """``base/rel`` and each parent up to ``base`` (a limit on any ancestor applies too)."""
    out = []
    parts = [p for p in rel.strip("/").split("/") if p and p != ".."]
    for i in range(len(parts), -1, -1):
        out.append(base.joinpath(*parts[:i]))
    return out


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs allowed by the cgroup CPU quota of this process, ``None`` when there is no quota.

    Looks at the process's own cgroup and every ancestor (the smallest quota wins), under v2
    (``ROOT/PATH/cpu.max``) and v1 (``ROOT/cpu/PATH/cpu.cfs_quota_us``; inside a container the
    process's path is often not visible, so ``ROOT/cpu`` itself is read too).
    """
    v2, v1 = _cgroup_paths(proc_cgroup)
    limits: list[float] = []
    if v2 is not None:
        for d in _ancestors(root, v2):
            lim = parse_cpu_max(_read(d / "cpu.max"))
            if lim:
                limits.append(lim)
    if "cpu" in v1:
        for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            base = root / name
            if not base.is_dir():
                continue
            for d in _ancestors(base, v1["cpu"]):
                lim = parse_cfs(_read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us"))
                if lim:
                    limits.append(lim)
            break
    return min(limits) if limits else None


def available_cpus(
    root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
    affinity: int | None = None,
) -> int:
    """CPUs this process may use: min(affinity mask, floor(cgroup quota)), at least 1.

    The quota is rounded down: with ``--cpus 1.5`` a second thread would spend its time throttled.
    ``affinity`` overrides the affinity count (for tests).
    """
    n = affinity if affinity is not None else affinity_cpus()
    n = n or os.cpu_count() or 1
    quota = cgroup_cpu_limit(root, proc_cgroup)
    if quota is not None:
        n = min(n, max(1, math.floor(quota + 1e-9)))
    return max(1, n)


def thread_count(environ: MutableMapping[str, str] | None = None, cpus: int | None = None) -> int:
    """Threads to use: ``SAM2ELNET_THREADS``, else ``OMP_NUM_THREADS``, else the available CPUs
    divided by ``LOCAL_WORLD_SIZE`` (processes of one ``torchrun`` node share the CPUs)."""
    env = os.environ if environ is None else environ
    for var in (ENV_THREADS, "OMP_NUM_THREADS"):
        n = _positive_int(env.get(var))
        if n:
            return n
    local = _positive_int(env.get("LOCAL_WORLD_SIZE")) or 1
    return max(1, (cpus if cpus is not None else available_cpus()) // local)


@dataclass
class ThreadPolicy:
    """What :func:`configure` decided: thread count and the variables it set (``{}`` = none)."""

    threads: int
    set_env: dict[str, str] = field(default_factory=dict)
    torch_already_loaded: bool = False
    disabled: bool = False


_applied: ThreadPolicy | None = None


def configure(environ: MutableMapping[str, str] | None = None) -> ThreadPolicy:
    """Apply the policy described in the module docstring to ``environ`` (default ``os.environ``).

    Called from ``sam2elnet/__init__.py``. When torch is already loaded in this process, also calls
    ``torch.set_num_threads`` (the environment is then too late for OpenMP). Never raises.
    """
    global _applied
    env = os.environ if environ is None else environ
    disabled = env.get(ENV_DISABLE, "").strip().lower() in ("0", "false", "no", "off")
    n = thread_count(env)
    policy = ThreadPolicy(threads=n, disabled=disabled)
    if not disabled:
        want = {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n), **WAIT_DEFAULTS}
        if env.get(ENV_THREADS):  # the explicit override beats an inherited OMP_NUM_THREADS
            want_forced = {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
        else:
            want_forced = {}
        for k, v in want.items():
            if k in want_forced or k not in env:
                if env.get(k) != v:
                    env[k] = v
                    policy.set_env[k] = v
    torch = sys.modules.get("torch") if environ is None else None
    if torch is not None and hasattr(torch, "set_num_threads"):
        policy.torch_already_loaded = True
        if not disabled and torch.get_num_threads() != n:
            torch.set_num_threads(n)
        log.debug(
            "torch was imported before sam2elnet: OpenMP already started, so only the thread count "
            "(%d, via torch.set_num_threads) is applied; the wait policy stays as it was "
            "(import sam2elnet first, or set OMP_WAIT_POLICY=PASSIVE yourself)",
            n,
        )
    else:
        log.debug("thread policy: %d threads, set %s", n, policy.set_env or "nothing")
    if environ is None:
        _applied = policy
    return policy


def applied() -> ThreadPolicy | None:
    """The policy applied at ``import sam2elnet`` (``None`` if :func:`configure` never ran)."""
    return _applied


def set_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads and return the count torch now uses.

    For the engine (training / inference start). Imports torch, so not for ``__init__``.

    One rule: an explicit choice wins. ``n`` (``TrainConfig.threads``, ``--threads``) is applied.
    With ``n`` None the policy's :func:`thread_count` (``SAM2ELNET_THREADS``, else
    ``OMP_NUM_THREADS``, else the usable CPUs, read now) is applied only while torch still runs the
    count the policy chose at ``import sam2elnet``; a count changed since in this process (the
    caller's ``torch.set_num_threads(k)``, or an earlier explicit ``n``) is kept and returned.
    Without a policy (``SAM2ELNET_OMP_DEFAULTS=0``) the policy's count is applied as before.
    """
    import torch

    current = torch.get_num_threads()
    policy = _applied
    if not n and policy is not None and not policy.disabled and current != policy.threads:
        log.debug(
            "torch uses %d threads, set in this process after import sam2elnet (policy: %d): kept",
            current,
            policy.threads,
        )
        return current
    want = n or thread_count()
    if current != want:
        torch.set_num_threads(want)
    return want
