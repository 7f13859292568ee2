"""Training state: distributed (DDP) set-up and the exact-resume checkpoint ``last.pt``.

``last.pt`` holds the weights, optimiser, schedule and every RNG state (Python, NumPy, torch), so a
run resumed after a kill continues exactly where it stopped. Used by
:func:`sam2elnet.engine.train.train`.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2elnet.config import TrainConfig
from sam2elnet.errors import CheckpointError
from sam2elnet.utils.atomic import (
    atomic_path,
)

log = logging.getLogger(__name__)

__all__ = [
    "LAST_FORMAT",
    "LAST_VERSION",
    "Dist",
    "init_distributed",
    "load_last",
    "rng_state",
    "save_last",
    "set_rng_state",
]

LAST_FORMAT = "sam2elnet.train_state"
LAST_VERSION = 1


# ----------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    enabled: bool = False
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(cfg: TrainConfig, device: torch.device) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    enabled = cfg.distributed if cfg.distributed is not None else world > 1
    if not enabled:
        return Dist(), device
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device(f"cuda:{local}")
        torch.cuda.set_device(device)
    return Dist(True, rank, world, local, owns), device


# ----------------------------------------------------------------------------- checkpoints
def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), int(n[2]), int(n[3]), float(n[4])))
    py = state["python"]
    random.setstate((int(py[-2]), tuple(int(v) for v in py[:-2]), py[-1]))


def save_last(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_last(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle ...
        raise CheckpointError(
            f"cannot read the resume state ({err.__class__.__name__}); it is damaged - delete it "
            "and start again without --resume",
            path,
        ) from None
    if (
        not isinstance(obj, dict)
        or obj.get("format") != LAST_FORMAT
        or obj.get("version") != LAST_VERSION
    ):
        raise CheckpointError(
            "not a sam2elnet resume state from this version; start a new run", path
        )
    return obj
