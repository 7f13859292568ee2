"""Batches of items that share a key, such as an image shape: tensors of different sizes cannot be
stacked into one batch, so evaluation at native size (validation during training, the quality
evaluator's samples, the downstream model's test images) and inference on a folder of mixed sizes
(:meth:`sam2elnet.engine.predictor.Predictor.predict`) run one shape at a time.

:func:`batches_by_key` is the one grouping rule; its result is a valid ``batch_sampler`` of a
:class:`torch.utils.data.DataLoader`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["batches_by_key"]

K = TypeVar("K", bound=Hashable)


def batches_by_key(keys: Sequence[K], batch_size: int | Callable[[K], int]) -> list[list[int]]:
    """Indices into ``keys`` grouped by equal key, each group cut into batches of ``batch_size``.

    Groups come in the order of their key's first appearance, and indices keep their order inside a
    group, so the result is deterministic (stable) for a given ``keys``: with keys
    ``[a, b, a, a, b]`` and ``batch_size`` 2 the batches are ``[[0, 2], [3], [1, 4]]``. Every
    index appears exactly once; every batch is non-empty, holds one key and at most that key's
    batch size indices (only a group's last batch is shorter).

    Args:
        keys: one hashable key per item, e.g. an image's ``(height, width)`` in px.
        batch_size: the most indices per batch, >= 1; or a function of a key giving its group's
            batch size (called once per distinct key, in order of first appearance), e.g. fewer
            large images per batch than small ones, as memory grows with the pixels.

    Returns:
        The batches, each a list of int indices into ``keys``; ``[]`` for no keys.

    Raises:
        ValueError: a batch size < 1.
    """
    size_of = batch_size if callable(batch_size) else lambda _key: batch_size
    if not callable(batch_size):
        _checked(batch_size, None)
    groups: dict[K, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    batches: list[list[int]] = []
    for key, ids in groups.items():
        size = _checked(size_of(key), key)
        batches.extend(ids[s : s + size] for s in range(0, len(ids), size))
    return batches


def _checked(size: int, key: Hashable | None) -> int:
    """``size`` as an int >= 1, else ValueError (naming ``key`` for a per-key size)."""
    n = int(size)
    if n < 1:
        of = "" if key is None else f" of key {key!r}"
        raise ValueError(f"batch_size{of} must be >= 1, got {size}")
    return n
