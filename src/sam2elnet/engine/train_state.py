"""Training state: distributed (DDP) set-up and the exact-resume checkpoint ``last.pt``.

``last.pt`` holds the weights, optimiser, schedule and every RNG state (Python, NumPy, torch), so a
run resumed after a kill continues exactly where it stopped. Written and read through
:mod:`sam2elnet.engine.train_checkpoints`; :func:`sam2elnet.engine.train.train` sets up DDP here.

The frozen parameters (the Hiera trunk unless ``--trunk last|all``: ~27 M of Hiera-tiny's weights,
~105 MB) are not written each epoch: ``last.pt`` (version 2 on) names them and holds a content hash
(:func:`frozen_state`), and a resumed run, which rebuilds the same trunk (the SAM2 weights file or
the seeded random initialisation), checks the hash before it continues. On the demo that cut the
file from 113 MB to a few MB and the per-epoch save from ~0.4 s (docs/benchmarks.md, "Demo
timing"). Version-1 files (full weights) still resume.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from sam2elnet.config import TrainConfig
from sam2elnet.errors import CheckpointError
from sam2elnet.model.io import TRAIN_STATE_FORMAT
from sam2elnet.utils.atomic import (
    atomic_path,
)

__all__ = [
    "LAST_FORMAT",
    "LAST_VERSION",
    "Dist",
    "FrozenState",
    "frozen_state",
    "init_distributed",
    "load_weights",
    "load_last",
    "rng_state",
    "save_last",
    "set_rng_state",
    "trainable_state",
]

LAST_FORMAT = TRAIN_STATE_FORMAT
LAST_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
"""Version 1 held every weight; version 2 leaves the frozen ones out (:func:`frozen_state`);
version 3 adds ``best_model``, the best epoch's trainable weights (``model.pt`` is written from
them when the run ends)."""


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

    owns = not dist.is_initialized()
    if owns:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        # one process: its store takes any free port (two such runs at once never collide);
        # more: every rank must find the same port (torchrun sets it)
        os.environ.setdefault("MASTER_PORT", "0" if os.environ["WORLD_SIZE"] == "1" else "29517")
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


@dataclass(frozen=True)
class FrozenState:
    """The frozen parameters of a model: their names and one hash of their names, shapes and values."""

    keys: tuple[str, ...]
    sha256: str

    def record(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "sha256": self.sha256}


def frozen_state(model: torch.nn.Module) -> FrozenState:
    """Names and SHA-256 of ``model``'s parameters with ``requires_grad=False``.

    The hash covers each name, shape, dtype and the values in row-major order (memory format, e.g.
    channels-last, does not change it). Hiera-tiny's 27 M frozen weights take ~0.2 s.
    """
    h = hashlib.sha256()
    keys = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            continue
        keys.append(name)
        t = p.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return FrozenState(tuple(keys), h.hexdigest())


def trainable_state(model: torch.nn.Module, frozen: FrozenState) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` without the frozen parameters (buffers are kept)."""
    skip = set(frozen.keys)
    return {k: v for k, v in model.state_dict().items() if k not in skip}


def load_weights(
    model: torch.nn.Module, state: dict[str, Any], path: Path, frozen: FrozenState
) -> None:
    """Put a ``last.pt`` state's weights into ``model``, which was built as the run built it.

    Version 2 files hold only the non-frozen weights: the frozen ones must be the model's own
    (``frozen``, its :func:`frozen_state`), checked by hash.

    Raises:
        CheckpointError: the model's frozen weights differ from those the run was trained with
            (another ``--weights`` file or size, or a torch version that initialises differently),
            or the file's weights do not fit the model.
    """
    rec = state.get("frozen")
    if rec is None:  # version 1: every weight
        model.load_state_dict(state["model"])
        return
    now = frozen
    if list(now.keys) != list(rec["keys"]) or now.sha256 != rec["sha256"]:
        raise CheckpointError(
            "the frozen encoder weights differ from those this run was trained with (the "
            "--weights file was replaced, or another torch version initialises the random trunk "
            "differently); resume with the original weights, or start a new run with another --out",
            path,
        )
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or set(missing) != set(now.keys):
        raise CheckpointError(
            "the resume state's weights do not fit this model; start a new run with another --out",
            path,
        )


def save_last(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_last(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle ...
        raise CheckpointError(
            f"cannot read the resume state ({err.__class__.__name__}); it is damaged",
            path,
        ) from None
    if (
        not isinstance(obj, dict)
        or obj.get("format") != LAST_FORMAT
        or obj.get("version") not in READABLE_VERSIONS
    ):
        raise CheckpointError(
            "not a sam2elnet resume state from this version; start a new run", path
        )
    return obj
