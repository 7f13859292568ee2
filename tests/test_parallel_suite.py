"""`make test` runs the suite on pytest-xdist workers (`-n auto`, tests/conftest.py): at most two
workers, none on one CPU, and one torch/OpenMP thread in each worker even when the environment
asks for more (two workers x two threads on a 2-core machine is the collapse docs/training.md
describes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import conftest
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("probe_xdist_worker.py")


@pytest.mark.parametrize(("cpus", "workers"), [(1, 0), (2, 2), (3, 2), (64, 2)])
def test_auto_workers_are_the_cpus_at_most_two_and_none_on_one_cpu(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int
) -> None:
    import sam2elnet.utils.threads as threads

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    assert conftest.pytest_xdist_auto_num_workers(config=None) == workers
    # pytest-xdist's own variable still chooses: the hook hands over
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    assert conftest.pytest_xdist_auto_num_workers(config=None) is None


def test_each_xdist_worker_runs_one_thread(tmp_path: Path) -> None:
    """The environment asks for two threads; the worker (tests/probe_xdist_worker.py) has one."""
    pytest.importorskip("xdist")
    env = {**os.environ, "SAM2ELNET_THREADS": "2", "OMP_NUM_THREADS": "2"}
    env.pop("PYTEST_XDIST_WORKER", None)  # a fresh run, also when this test runs in a worker
    env.pop("PYTEST_XDIST_AUTO_NUM_WORKERS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "probe"), str(PROBE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "1 passed" in out, out[-3000:]


def test_a_server_whose_port_was_taken_starts_again_on_another() -> None:
    """tests/helpers_ports.py: a port taken between free_port() and the server's bind (another
    worker's server) costs a retry on a new port, not a failed test."""
    from helpers_ports import PortTaken, start_on_free_port

    tried: list[int] = []

    def start(port: int) -> int:
        tried.append(port)
        if len(tried) < 3:
            raise PortTaken("Address already in use")
        return port

    assert start_on_free_port(start) == tried[-1] and len(tried) == 3

    def always_taken(port: int) -> int:
        raise PortTaken("Address already in use")

    with pytest.raises(pytest.fail.Exception, match=r"no free port after 2 tries: \d+: Address"):
        start_on_free_port(always_taken, attempts=2)
