"""Thread policy set at ``import sam2elnet`` (sam2elnet.utils.threads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sam2elnet.utils import threads

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_parse_cpu_max() -> None:
    assert threads.parse_cpu_max("max 100000") is None
    assert threads.parse_cpu_max("200000 100000") == 2.0
    assert threads.parse_cpu_max("50000 100000") == 0.5
    assert threads.parse_cpu_max("") is None
    assert threads.parse_cpu_max("garbage") is None


def test_parse_cfs() -> None:
    assert threads.parse_cfs("-1", "100000") is None
    assert threads.parse_cfs("150000", "100000") == 1.5
    assert threads.parse_cfs(None, "100000") is None


def test_cgroup_v2_smallest_quota_of_own_group_and_ancestors(tmp_path: Path) -> None:
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/user.slice/job\n")
    root = tmp_path / "cg"
    _write(root / "user.slice" / "job" / "cpu.max", "max 100000\n")
    _write(root / "user.slice" / "cpu.max", "300000 100000\n")
    assert threads.cgroup_cpu_limit(root, proc) == 3.0
    _write(root / "user.slice" / "job" / "cpu.max", "150000 100000\n")
    assert threads.cgroup_cpu_limit(root, proc) == 1.5
    assert threads.available_cpus(root, proc, affinity=8) == 1  # 1.5 CPUs -> 1 thread
    assert threads.available_cpus(root, proc, affinity=1) == 1


def test_cgroup_v1_cfs_quota(tmp_path: Path) -> None:
    proc = tmp_path / "proc_cgroup"
    _write(proc, "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n1:cpuset:/\n")
    root = tmp_path / "cg"
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "200000\n")
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_limit(root, proc) == 2.0
    assert threads.available_cpus(root, proc, affinity=16) == 2
    assert threads.available_cpus(root, proc, affinity=1) == 1


def test_cgroup_v1_container_sees_only_its_root(tmp_path: Path) -> None:
    # inside a container /proc/self/cgroup names the host path, but only /sys/fs/cgroup/cpu exists
    proc = tmp_path / "proc_cgroup"
    _write(proc, "1:cpu:/kubepods/pod1/ctr\n")
    root = tmp_path / "cg"
    _write(root / "cpu" / "cpu.cfs_quota_us", "400000")
    _write(root / "cpu" / "cpu.cfs_period_us", "100000")
    assert threads.cgroup_cpu_limit(root, proc) == 4.0


def test_no_quota_means_affinity(tmp_path: Path) -> None:
    proc = tmp_path / "proc_cgroup"
    _write(proc, "1:cpu:/\n0::/\n")
    root = tmp_path / "cg"
    _write(root / "cpu" / "cpu.cfs_quota_us", "-1")
    _write(root / "cpu" / "cpu.cfs_period_us", "100000")
    _write(root / "cpu.max", "max 100000")
    assert threads.cgroup_cpu_limit(root, proc) is None
    assert threads.available_cpus(root, proc, affinity=3) == 3
    # missing files altogether: no limit, no error
    assert threads.cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "none") is None


def test_thread_count_precedence() -> None:
    assert threads.thread_count({}, cpus=4) == 4
    assert threads.thread_count({"LOCAL_WORLD_SIZE": "2"}, cpus=4) == 2
    assert threads.thread_count({"LOCAL_WORLD_SIZE": "8"}, cpus=4) == 1
    assert threads.thread_count({"OMP_NUM_THREADS": "3"}, cpus=4) == 3
    assert threads.thread_count({"OMP_NUM_THREADS": "3", "SAM2ELNET_THREADS": "1"}, cpus=4) == 1
    assert threads.thread_count({"SAM2ELNET_THREADS": "zero"}, cpus=4) == 4


def test_configure_sets_only_what_the_user_left_unset() -> None:
    env = {"OMP_WAIT_POLICY": "ACTIVE", "SAM2ELNET_THREADS": "1"}
    pol = threads.configure(env)
    assert pol.threads == 1
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
    assert env["KMP_BLOCKTIME"] == "0"
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1"
    assert "OMP_WAIT_POLICY" not in pol.set_env and pol.set_env["KMP_BLOCKTIME"] == "0"

    env = {"OMP_NUM_THREADS": "5"}
    pol = threads.configure(env)
    assert pol.threads == 5 and env["OMP_NUM_THREADS"] == "5"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"

    env = {"SAM2ELNET_THREADS": "2", "OMP_NUM_THREADS": "7"}
    threads.configure(env)
    assert env["OMP_NUM_THREADS"] == "2"  # the explicit override wins


def test_configure_can_be_disabled() -> None:
    env = {"SAM2ELNET_OMP_DEFAULTS": "0"}
    pol = threads.configure(env)
    assert pol.disabled and pol.set_env == {}
    assert env == {"SAM2ELNET_OMP_DEFAULTS": "0"}


def _probe(code: str, env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "KMP_", "MKL_"))}
    env.pop("SAM2ELNET_THREADS", None)
    env.update(env_extra, PYTHONPATH=SRC)
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_sam2elnet_is_light_and_sets_the_environment() -> None:
    code = (
        "import json, os, sys; import sam2elnet; "
        "print(json.dumps({'heavy': sorted(m for m in "
        "('torch', 'numpy', 'transformers', 'yaml', 'rasterio', 'cv2') "
        "if m in sys.modules), 'env': {k: os.environ.get(k) for k in "
        "('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'KMP_BLOCKTIME')}}))"
    )
    out = _probe(code, {"SAM2ELNET_THREADS": "1"})
    assert out["heavy"] == []
    assert out["env"] == {
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "KMP_BLOCKTIME": "0",
    }


@pytest.mark.slow
def test_torch_imported_first_falls_back_to_set_num_threads() -> None:
    code = (
        "import json, logging, torch; torch.set_num_threads(2); "
        "logging.basicConfig(level=logging.DEBUG); import sam2elnet; "
        "from sam2elnet.utils.threads import applied; "
        "print(json.dumps({'n': torch.get_num_threads(), "
        "'late': applied().torch_already_loaded}))"
    )
    out = _probe(code, {"SAM2ELNET_THREADS": "1"})
    assert out == {"n": 1, "late": True}


@pytest.fixture
def torch_threads_back() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_set_torch_threads_keeps_a_count_the_caller_set(
    monkeypatch: pytest.MonkeyPatch, torch_threads_back: None
) -> None:
    """A Python API user's torch.set_num_threads(k) after import sam2elnet is kept; an explicit n
    is applied; while torch still runs the policy's count, the policy (env read now) applies."""
    import torch

    monkeypatch.setattr(threads, "_applied", threads.ThreadPolicy(threads=1))
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    torch.set_num_threads(2)  # the caller's choice
    assert threads.set_torch_threads() == 2 and torch.get_num_threads() == 2
    assert threads.set_torch_threads(3) == 3 and torch.get_num_threads() == 3  # explicit n wins
    torch.set_num_threads(1)  # back at the policy's count: the policy (env read now) applies
    monkeypatch.setenv("SAM2ELNET_THREADS", "2")
    assert threads.set_torch_threads() == 2 and torch.get_num_threads() == 2
    # no policy in force (SAM2ELNET_OMP_DEFAULTS=0): the policy's count, as before
    monkeypatch.setattr(threads, "_applied", threads.ThreadPolicy(threads=1, disabled=True))
    torch.set_num_threads(3)
    assert threads.set_torch_threads() == 2 and torch.get_num_threads() == 2


def test_predictor_keeps_the_callers_thread_count(
    monkeypatch: pytest.MonkeyPatch, torch_threads_back: None
) -> None:
    import torch

    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.model import ModelConfig, build_model

    monkeypatch.setattr(threads, "_applied", threads.ThreadPolicy(threads=1))
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    torch.manual_seed(0)
    model = build_model(ModelConfig(size="micro", in_bands=1))
    torch.set_num_threads(2)
    Predictor(model, {}, precision="32")
    assert torch.get_num_threads() == 2


def test_only_the_thread_policy_sets_torch_threads() -> None:
    """One place sets torch's thread count (utils.threads: the policy at import, then
    set_torch_threads); the engine asks it (the downstream pool's one thread per training set
    the count by hand)."""
    import ast

    src = Path(threads.__file__).resolve().parents[1]
    callers = sorted(
        f"{p.relative_to(src)}:{node.lineno}"
        for p in src.rglob("*.py")
        if p != Path(threads.__file__).resolve()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "set_num_threads"
    )
    assert callers == []
