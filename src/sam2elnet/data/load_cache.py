"""Decoded training samples kept in memory, so an image read in one epoch is not decoded again in
the next (:class:`~sam2elnet.data.datasets.SegmentationDataset`'s ``cache``).

A sample's full-size arrays (normalised image, mask, valid, coarse label: what
:meth:`~sam2elnet.data.datasets.SegmentationDataset.load` returns) are a pure function of its
files, the band count, the normalisation and the mask classes read (``positive_values``), so
keeping them changes no number. Reading is a real share of a small run's time on a CPU: the
demo's SAM2-ELNet training decoded its 25 PNG pairs in each of 40 epochs, 1.4 s of a 57 s stage
on the 2-core VM of docs/benchmarks.md, all of it on the training's critical path (no DataLoader
worker on 2 cores).

The cache holds at most ``max_bytes`` of arrays (None: no limit); a sample that does not fit is
read each time, as without a cache. ``elnet train`` gives its training set one of
:func:`train_cache_bytes` (256 MiB, or ``SAM2ELNET_TRAIN_CACHE_MB``; 0 turns it off). It serves only the process that made it: a copy in a
DataLoader worker (forked or pickled) reads as if there were none, so worker processes never
hold copies of their own (they read beside the training anyway), and the limit bounds the memory
of the whole run (of each process of a distributed run: every rank has its own). Kept arrays are
read-only: an in-place change by a caller raises instead of altering the next epoch's sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from sam2elnet.errors import UserError

#: Default limit of the SAM2-ELNet training's cache (:func:`sam2elnet.engine.train.train`):
#: ~1,000 three-band 128 px samples or ~300 of 256 px (float32 image, bool masks).
TRAIN_CACHE_BYTES = 256 * 2**20

#: The environment variable that sets the training cache's limit in MiB (0: no cache).
ENV_TRAIN_CACHE = "SAM2ELNET_TRAIN_CACHE_MB"


def train_cache_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The training cache's limit in bytes: ``SAM2ELNET_TRAIN_CACHE_MB`` MiB when set (0 turns
    the cache off: every epoch decodes its images again, as before 2026-12-05), else
    :data:`TRAIN_CACHE_BYTES`.

    Raises:
        UserError: the variable is not a whole number >= 0.
    """
    env = os.environ if environ is None else environ
    text = env.get(ENV_TRAIN_CACHE, "").strip()
    if not text:
        return TRAIN_CACHE_BYTES
    try:
        mib = int(text)
    except ValueError:
        mib = -1
    if mib < 0:
        raise UserError(
            f"{ENV_TRAIN_CACHE}={text!r} is not a whole number of MiB; set it to 0 (no cache of "
            f"decoded training images) or a limit such as {TRAIN_CACHE_BYTES // 2**20}, or unset it"
        )
    return mib * 2**20


class LoadCache:
    """``key -> tuple of arrays (or None)``, at most ``max_bytes`` of arrays in all.

    Args:
        max_bytes: the limit in bytes (None: unlimited; 0 keeps nothing).
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: dict[Hashable, tuple[Any, ...]] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __getstate__(self) -> dict[str, Any]:
        # a pickled copy (a spawned DataLoader worker) starts empty and, made in another
        # process, keeps nothing (fetch): the run's memory is bounded by the main process's
        return {**self.__dict__, "_items": {}, "bytes": 0}

    def fetch(self, key: Hashable, load: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        """The arrays kept under ``key``, else ``load()``'s, kept when they fit (and this is
        the process that made the cache). Errors of ``load`` propagate; nothing is kept then."""
        if os.getpid() != self._pid:  # a worker's copy: read as without a cache
            return load()
        hit = self._items.get(key)
        if hit is not None:
            return hit
        value = load()
        size = sum(a.nbytes for a in value if isinstance(a, np.ndarray))
        if self.max_bytes is None or self.bytes + size <= self.max_bytes:
            for a in value:
                if isinstance(a, np.ndarray):
                    a.flags.writeable = False
            self._items[key] = value
            self.bytes += size
        return value
