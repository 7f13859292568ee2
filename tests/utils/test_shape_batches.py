"""sam2elnet.utils.shape_batches.batches_by_key: every index once, one key per batch, batches no
larger than asked, order stable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sam2elnet.utils.shape_batches import batches_by_key

shapes = st.tuples(st.sampled_from([16, 32, 40]), st.sampled_from([16, 32, 56]))


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(shapes, max_size=40), batch_size=st.integers(1, 9))
def test_batches_partition_the_indices_by_key(keys: list[tuple[int, int]], batch_size: int) -> None:
    batches = batches_by_key(keys, batch_size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(keys)))  # every index exactly once
    for b in batches:
        assert 1 <= len(b) <= batch_size
        assert len({keys[i] for i in b}) == 1  # one key (shape) per batch
        assert b == sorted(b)  # order kept inside a batch
    # stable: groups in the order of first appearance, a group's batches full except its last
    first_seen = list(dict.fromkeys(keys))
    by_group = [[b for b in batches if keys[b[0]] == k] for k in first_seen]
    assert [b for group in by_group for b in group] == batches
    for k, group in zip(first_seen, by_group, strict=True):
        ids = [i for i, key in enumerate(keys) if key == k]
        assert [i for b in group for i in b] == ids
        assert all(len(b) == batch_size for b in group[:-1])
    assert batches_by_key(list(keys), batch_size) == batches  # deterministic


def test_worked_example_and_edge_cases() -> None:
    assert batches_by_key(["a", "b", "a", "a", "b"], 2) == [[0, 2], [3], [1, 4]]
    assert batches_by_key([], 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        batches_by_key([(1, 1)], 0)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(shapes, max_size=40),
    sizes=st.dictionaries(shapes, st.integers(1, 9), min_size=9, max_size=9),
)
def test_per_key_batch_sizes(keys: list[tuple[int, int]], sizes: dict) -> None:
    """A batch size per key (Predictor: fewer large images per forward): every index exactly
    once, the input order restorable from the batches, no batch over its key's size, the size
    asked once per key."""
    asked: list[tuple[int, int]] = []

    def size_of(key: tuple[int, int]) -> int:
        asked.append(key)
        return sizes[key]

    batches = batches_by_key(keys, size_of)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(keys)))  # every index exactly once
    restored = [None] * len(keys)
    for b in batches:
        for i in b:
            restored[i] = keys[i]
    assert restored == keys  # outputs put back by index come in input order
    for b in batches:
        key = keys[b[0]]
        assert {keys[i] for i in b} == {key}
        assert 1 <= len(b) <= sizes[key]
        assert b == sorted(b)
    for k in set(keys):  # a group's batches are full except its last
        group = [b for b in batches if keys[b[0]] == k]
        assert all(len(b) == sizes[k] for b in group[:-1])
    assert asked == list(dict.fromkeys(keys))  # once per key, in order of first appearance
    # a constant function gives the same batches as the int
    for n in (1, 3):
        assert batches_by_key(keys, lambda _k, n=n: n) == batches_by_key(keys, n)


def test_per_key_size_below_one_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"batch_size of key \(2, 2\) must be >= 1, got 0"):
        batches_by_key([(1, 1), (2, 2)], lambda k: k[0] - 2 if k[0] == 2 else 1)
