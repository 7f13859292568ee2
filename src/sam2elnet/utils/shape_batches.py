"""Batches of items that share a key, such as an image shape: tensors of different sizes cannot be
stacked into one batch, so evaluation at native size (validation during training, the quality
evaluator's samples, the downstream model's test images) runs one shape at a time.

:func:`batches_by_key` is the one grouping rule; its result is a valid ``batch_sampler`` of a
:class:`torch.utils.data.DataLoader`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["batches_by_key"]


def batches_by_key(keys: Sequence[Hashable], batch_size: int) -> list[list[int]]:
    """Indices into ``keys`` grouped by equal key, each group cut into batches of ``batch_size``.

    Groups come in the order of their key's first appearance, and indices keep their order inside a
    group, so the result is deterministic (stable) for a given ``keys``: with keys
    ``[a, b, a, a, b]`` and ``batch_size`` 2 the batches are ``[[0, 2], [3], [1, 4]]``. Every
    index appears exactly once; every batch is non-empty, holds one key and at most ``batch_size``
    indices (only a group's last batch is shorter).

    Args:
        keys: one hashable key per item, e.g. an image's ``(height, width)`` in px.
        batch_size: the most indices per batch, >= 1.

    Returns:
        The batches, each a list of int indices into ``keys``; ``[]`` for no keys.

    Raises:
        ValueError: ``batch_size`` < 1.
    """
    size = int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return [ids[s : s + size] for ids in groups.values() for s in range(0, len(ids), size)]
