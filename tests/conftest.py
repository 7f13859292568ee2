"""Shared test fixtures: reproducible seeds, a temporary weights cache, real-data locations."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

# Tests use tiny models on tiny images: one thread is as fast and never stalls on a busy machine
# (OpenMP threads spin-waiting for a descheduled sibling can slow a step 100x). Set before torch
# loads OpenMP, which reads its environment once. Under pytest-xdist (`make test` runs `-n auto`,
# see pytest_xdist_auto_num_workers below) each worker is one process of its own and takes one
# thread whatever SAM2ELNET_THREADS says: two workers of two threads on 2 cores is the collapse
# docs/training.md describes. Child processes (the CLI, Ray workers, Label Studio) inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["SAM2ELNET_THREADS"] = "1"
else:
    os.environ.setdefault("SAM2ELNET_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
BENCH_DIR = REPO_ROOT / "benchmarks"

# `pytest -n auto` (what `make test` runs) starts at most this many workers. Two use both cores of
# the 2-core CI machine; more would not be faster there, and each worker holds its own torch, its
# module fixtures (trained micro models, a Label Studio server, a local Ray cluster) in memory.
MAX_AUTO_WORKERS = 2


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: no error where xdist is not loaded
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Workers for ``-n auto``: the CPUs this process may use (affinity mask and cgroup quota,
    :func:`sam2elnet.utils.threads.available_cpus`), at most :data:`MAX_AUTO_WORKERS`; 0 (no
    workers: the tests run in this process) on one CPU. ``PYTEST_XDIST_AUTO_NUM_WORKERS=N`` or
    ``-n N`` choose another count; None hands the choice to pytest-xdist."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from sam2elnet.utils.threads import available_cpus

    n = min(available_cpus(), MAX_AUTO_WORKERS)
    return n if n > 1 else 0


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Every test starts from the same random state, so results are reproducible."""
    np.random.seed(0)
    torch.manual_seed(0)


# What a test may change on a logger and _package_loggers_restored puts back. A logger first made
# during the test goes back to what getLogger gives a new one.
_LoggerState = tuple[int, list[logging.Handler], list[object], bool, bool]
_NEW_LOGGER: _LoggerState = (logging.NOTSET, [], [], True, False)


def _package_logger_states() -> dict[str, _LoggerState]:
    """Level, handlers, filters, propagate and disabled of every ``sam2elnet`` /
    ``sam2elnet.*`` logger that exists now (placeholders of not-yet-made loggers left out)."""
    return {
        name: (lg.level, list(lg.handlers), list(lg.filters), lg.propagate, lg.disabled)
        for name, lg in list(logging.Logger.manager.loggerDict.items())
        if (name == "sam2elnet" or name.startswith("sam2elnet.")) and isinstance(lg, logging.Logger)
    }


@pytest.fixture(autouse=True)
def _package_loggers_restored() -> Iterator[None]:
    """Every test starts from the package loggers as the previous one found them: a test that runs
    the typer app without :func:`sam2elnet.cli.main` (which restores them itself) leaves
    ``sam2elnet.progress`` with a stdout handler, INFO and no propagation, and under pytest-xdist
    every later test on that worker saw it (a progress line counted in ``caplog``). About 0.1 ms
    per test: the attributes of the ~25 package loggers are copied, nothing else."""
    before = _package_logger_states()
    yield
    for name, state in _package_logger_states().items():
        level, handlers, filters, propagate, disabled = before.get(name, _NEW_LOGGER)
        if state != (level, handlers, filters, propagate, disabled):
            lg = logging.getLogger(name)
            lg.setLevel(level)  # setLevel, not .level: it also clears the isEnabledFor caches
            lg.handlers, lg.filters = list(handlers), list(filters)
            lg.propagate, lg.disabled = propagate, disabled


@pytest.fixture(autouse=True)
def _isolated_weights_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never read or write the user's real weights cache from tests."""
    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path_factory.mktemp("weights-home")))


@pytest.fixture(scope="module")
def bench_import() -> Iterator[Callable[[str], ModuleType]]:
    """Import benchmark scripts (``benchmarks/NAME.py``, which import their ``common``) by name:
    ``benchmarks/`` is on ``sys.path`` while the test module runs, and off again after."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCH_DIR))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The micro model the inference and CLI tests share, with its data and run folder
    (``data``, ``run``, ``model``; helpers_data.trained_run: trained once per session).
    Module-scoped, so a test module has it before its first ``capsys``."""
    from helpers_data import trained_run

    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def pred(run: dict[str, Path]) -> Any:
    """A :class:`~sam2elnet.engine.predictor.Predictor` of :func:`run`'s model (float32, batches of
    4), loaded once per test module."""
    from sam2elnet.engine.predictor import Predictor

    return Predictor.from_file(run["model"], precision="32", batch_size=4)


@pytest.fixture
def unread_model(tmp_path: Path) -> Path:
    """``tmp_path/model.pt``: a model path that exists but holds no model, for the refusals that
    must come before the model is read (output folders, label files); reading it fails."""
    p = tmp_path / "model.pt"
    p.write_bytes(b"not a model: the command must refuse before reading it")
    return p


@pytest.fixture
def shared_data() -> Path:
    """../shared/data next to the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


def write_official_checkpoint(
    path: Path, size: str = "micro", seed: int = 1
) -> dict[str, torch.Tensor]:
    """Write random Hiera weights in the official SAM2 layout ({"model": {"image_encoder.trunk.*"}}).

    Returns the transformers-named state dict the file was written from. Other (non-trunk) SAM2
    keys are included too, as in a real checkpoint, to check they are ignored.
    """
    from sam2elnet.model.checkpoint_files import hf_to_official
    from sam2elnet.model.hiera import build_trunk

    torch.manual_seed(seed)
    trunk = build_trunk(size)
    with torch.no_grad():
        for p in trunk.parameters():
            p.normal_(0, 0.02)
    state = {k: v.clone() for k, v in trunk.state_dict().items()}
    full = {f"image_encoder.trunk.{k}": v for k, v in hf_to_official(state).items()}
    full["image_encoder.neck.convs.0.conv.weight"] = torch.zeros(4, 4, 1, 1)
    full["sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 4)
    torch.save({"model": full}, path)
    return state


@pytest.fixture
def official_checkpoint(tmp_path: Path) -> Path:
    """A micro-size checkpoint file in the official SAM2 layout, from random weights."""
    path = tmp_path / "sam2.1_hiera_micro.pt"
    write_official_checkpoint(path)
    return path


@pytest.fixture
def experiment_configs(monkeypatch: pytest.MonkeyPatch) -> list:
    """``elnet experiment`` stops where the run would start: each ExperimentConfig the CLI built
    is appended to the returned list, and the command exits 0 (``SystemExit(0)``)."""
    import sam2elnet.pipeline.experiment as experiment_mod

    seen: list = []

    def fake_run(cfg, **options):  # noqa: ANN001, ANN003 - run_experiment(cfg, random_init=...)
        seen.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(experiment_mod, "run_experiment", fake_run)
    return seen


@pytest.fixture
def serve_backend(tmp_path: Path) -> Iterator[tuple]:
    """``(MLBackend, base URL, root)`` of a served backend (:func:`helpers_serve.serving`).

    Kept in this one conftest: a second ``conftest.py`` in a sub-folder would make the bare
    ``import conftest`` of some tests resolve to it under pytest-xdist."""
    from helpers_serve import serving

    with serving(tmp_path) as got:
        yield got
