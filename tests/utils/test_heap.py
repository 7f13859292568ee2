"""Heap policy set at ``import sam2elnet`` (sam2elnet.utils.heap)."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from sam2elnet.utils import heap

SRC = str(Path(__file__).resolve().parents[2] / "src")
MIB = 1024 * 1024


class Recorder:
    """A stand-in for glibc's mallopt: records (parameter, value), answers ``answer``."""

    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.answer


def test_default_sets_both_thresholds_to_one_gib() -> None:
    rec = Recorder()
    pol = heap.configure({}, rec)
    assert pol == heap.HeapPolicy(1024)
    assert rec.calls == [(heap.M_MMAP_THRESHOLD, 1024 * MIB), (heap.M_TRIM_THRESHOLD, 1024 * MIB)]
    assert (heap.M_MMAP_THRESHOLD, heap.M_TRIM_THRESHOLD) == (-3, -1)  # glibc's <malloc.h>


def test_the_variable_sets_the_size_and_zero_keeps_glibcs_defaults() -> None:
    rec = Recorder()
    assert heap.configure({"SAM2ELNET_HEAP_MB": " 256 "}, rec).mib == 256
    assert rec.calls == [(-3, 256 * MIB), (-1, 256 * MIB)]
    rec = Recorder()
    assert heap.configure({"SAM2ELNET_HEAP_MB": "0"}, rec) == heap.HeapPolicy(
        0, "SAM2ELNET_HEAP_MB=0"
    )
    assert rec.calls == []
    rec = Recorder()
    assert heap.configure({"SAM2ELNET_HEAP_MB": "2047"}, rec).mib == 2047
    assert rec.calls[0] == (-3, 2047 * MIB) and 2047 * MIB < 2**31  # mallopt takes an int
    assert heap.configure({"SAM2ELNET_HEAP_MB": "0" * 5000 + "1"}, Recorder()).mib == 1


@pytest.mark.parametrize(
    "value",
    # "\u00b2" (superscript two) and 5,000 digits passed str.isdigit() and then made int() raise
    # at import sam2elnet: a traceback from every elnet command, --help included
    ["lots", "-5", "2048", "1.5", "1e3", "\u00b2", "\u0663", "9" * 5000],
)
def test_a_bad_value_changes_nothing_and_says_what_to_do(value: str) -> None:
    rec = Recorder()
    pol = heap.configure({"SAM2ELNET_HEAP_MB": value}, rec)
    assert pol.mib == 0 and rec.calls == []
    assert pol.problem == (
        f"SAM2ELNET_HEAP_MB={value!r} is not a whole number of MiB from 0 to 2047: unset it "
        "(1024 MiB of freed tensor memory kept for reuse), or set 0 to keep glibc's malloc "
        'defaults (docs/training.md, "Heap")'
    )


@pytest.mark.parametrize("value", ["lots", "4096", "\u00b2"])
def test_elnet_refuses_a_bad_value_with_one_error_line(value: str) -> None:
    """The import stays silent; every command (not --help) answers one error line, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    env.update(PYTHONPATH=SRC, SAM2ELNET_HEAP_MB=value)
    cmd = [sys.executable, "-m", "sam2elnet.cli"]
    res = subprocess.run([*cmd, "weights", "list"], env=env, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f"error: SAM2ELNET_HEAP_MB={value!r} is not a whole number of MiB from 0 to 2047: unset "
        "it (1024 MiB of freed tensor memory kept for reuse), or set 0 to keep glibc's malloc "
        'defaults (docs/training.md, "Heap")'
    ]
    ok = subprocess.run([*cmd, "--help"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stderr == ""


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}, "GLIBC_TUNABLES"),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_"),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, "MALLOC_MMAP_THRESHOLD_"),
        ({"MALLOC_TOP_PAD_": "0"}, "MALLOC_TOP_PAD_"),
        ({"MALLOC_MMAP_MAX_": "0"}, "MALLOC_MMAP_MAX_"),
        ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "LD_PRELOAD"),
    ],
)
def test_the_users_own_allocator_settings_are_left_alone(env: dict, reason: str) -> None:
    rec = Recorder()
    pol = heap.configure({**env, "SAM2ELNET_HEAP_MB": "512"}, rec)
    assert pol.mib == 0 and reason in pol.reason and rec.calls == []


def test_other_tunables_do_not_count_as_a_malloc_choice() -> None:
    rec = Recorder()
    assert heap.configure({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, rec).mib == 1024
    assert heap.configure({"MALLOC_ARENA_MAX": "2"}, Recorder()).mib == 1024


def test_a_refused_mallopt_is_reported_not_raised() -> None:
    pol = heap.configure({}, Recorder(answer=0))
    assert pol == heap.HeapPolicy(0, "mallopt refused")


def test_an_older_glibcs_32_mib_limit_keeps_the_policy_at_that_size() -> None:
    """glibc releases that refuse an mmap threshold above DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on
    64-bit, mallopt(3)): blocks up to 32 MiB kept, the trim threshold still as asked."""
    calls: list[tuple[int, int]] = []

    def old_glibc(param: int, value: int) -> int:
        calls.append((param, value))
        return int(param != heap.M_MMAP_THRESHOLD or value <= 32 * MIB)

    pol = heap.configure({}, old_glibc)
    assert pol == heap.HeapPolicy(32, "this glibc maps blocks above 32 MiB")
    assert calls == [(-3, 1024 * MIB), (-3, 32 * MIB), (-1, 1024 * MIB)]
    # a size within the old limit is asked once
    calls.clear()
    assert heap.configure({"SAM2ELNET_HEAP_MB": "16"}, old_glibc) == heap.HeapPolicy(16)
    assert calls == [(-3, 16 * MIB), (-1, 16 * MIB)]


def _faults(env_extra: dict[str, str]) -> dict:
    """Page faults of ten 64 MiB torch tensors made, written and freed in turn, after ten such
    tensors of warm-up (glibc's heap takes a few before its freed blocks coalesce into one that
    fits an aligned request), in a fresh process that imports sam2elnet first (as the CLI does)."""
    code = (
        # base pages only: a host with transparent huge pages always on (RHEL, Fedora) faults a
        # fresh 64 MiB mapping in 2 MiB pages (~40 faults, not 16,384); PR_SET_THP_DISABLE (41)
        # turns THP off for this process alone
        "import ctypes, sys\n"
        "if sys.platform.startswith('linux'): ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)\n"
        "import json, resource; import sam2elnet, torch; "
        "from sam2elnet.utils.heap import applied\n"
        "def f():\n"
        "    a = torch.empty(16 * 1024 * 1024); a.fill_(1.0); return float(a[-1])\n"
        "for _ in range(10): f()\n"
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(10): f()\n"
        "print(json.dumps({'faults': resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0, "
        "'mib': applied().mib}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    env.pop("LD_PRELOAD", None)
    # torch's THP_MEM_ALLOC_ENABLE=1 aligns large tensors to 2 MiB: a freed block then fits the
    # next request only where the heap's layout allows (the test failed 1 run in 4 with it)
    env.pop("THP_MEM_ALLOC_ENABLE", None)
    env.update(env_extra, PYTHONPATH=SRC, SAM2ELNET_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the policy uses glibc's mallopt",
)
def test_import_sam2elnet_keeps_freed_tensor_memory_for_reuse() -> None:
    """The real effect: with glibc's defaults each 64 MiB tensor is a fresh mapping whose 16,384
    pages the kernel zero-fills again on first touch; with the policy the freed block is reused."""
    plain = _faults({"SAM2ELNET_HEAP_MB": "0"})
    kept = _faults({})
    assert plain["mib"] == 0 and kept["mib"] == heap.DEFAULT_MB
    assert plain["faults"] >= 10 * 16384 * 0.9, plain  # every tensor faulted in afresh
    assert kept["faults"] <= 16384, kept  # not even one tensor's worth over ten tensors


@pytest.mark.parametrize(
    "args", [["annotate", "--help"], ["weights", "--help"], ["weights", "list", "--help"]]
)
def test_a_bad_value_still_lets_a_command_show_its_help(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet annotate --help`` under a bad SAM2ELNET_HEAP_MB shows the help (nothing runs),
    as ``elnet --help`` does; the command itself still answers the error line, exit 2. Before,
    every subcommand's help answered the error line."""
    from sam2elnet.cli import main

    bad = heap.configure({"SAM2ELNET_HEAP_MB": "lots"}, Recorder())
    monkeypatch.setattr(heap, "_applied", bad)
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "Usage:" in out and err == ""
    assert main(["weights", "list"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {bad.problem}"]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the policy uses glibc's mallopt",
)
def test_finding_mallopt_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import sam2elnet`` (every CLI call, every spawn worker and Ray actor) finds glibc's
    mallopt in the process's own symbols: before, ``ctypes.util.find_library("c")`` ran
    ``/sbin/ldconfig -p`` (and, without it, ``gcc``) as a child process at each import."""
    started: list[object] = []

    def popen(*args: object, **kwargs: object) -> None:
        started.append(args[0] if args else kwargs.get("args"))
        raise OSError("no processes in this test")

    monkeypatch.setattr(subprocess, "Popen", popen)
    fn = heap._glibc_mallopt()
    assert started == []
    assert fn is not None and fn.argtypes == [ctypes.c_int, ctypes.c_int]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the libc question is Linux's")
def test_a_libc_that_is_not_glibc_is_told_without_reading_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """musl answers no glibc version (``os.confstr`` raises); the policy then steps aside and
    ``import sam2elnet`` never raises. Before, ``platform.libc_ver()`` fell back to reading
    ``sys.executable``: an interpreter path that cannot be read raised at import."""

    def confstr(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(os, "confstr", confstr)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "gone" / "python3"))
    assert heap._glibc_mallopt() is None
    assert heap.configure({}) == heap.HeapPolicy(0, "not glibc")
