"""Shared test fixtures: reproducible seeds, a temporary weights cache, real-data locations."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
BENCH_DIR = REPO_ROOT / "benchmarks"

# Tests use tiny models on tiny images: one thread is as fast and never stalls on a busy machine
# (OpenMP threads spin-waiting for a descheduled sibling can slow a step 100x).
os.environ.setdefault("SAM2ELNET_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Every test starts from the same random state, so results are reproducible."""
    np.random.seed(0)
    torch.manual_seed(0)


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

    def fake_run(cfg):  # noqa: ANN001
        seen.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(experiment_mod, "run_experiment", fake_run)
    return seen
