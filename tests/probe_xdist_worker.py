"""Run inside pytest-xdist workers by tests/test_parallel_suite.py (``pytest -n 1 THIS_FILE``); not
collected in a plain run (the name does not match ``test_*.py``)."""

from __future__ import annotations

import os

import torch

import sam2elnet  # noqa: F401  (its thread policy runs on import)
from sam2elnet.utils.threads import thread_count


def test_this_worker_runs_one_thread() -> None:
    assert os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw")
    assert os.environ["SAM2ELNET_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert thread_count() == 1
    assert torch.get_num_threads() == 1
