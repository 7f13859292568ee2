"""The in-memory cache of decoded training samples: each image decoded once, not once an epoch,
the same items with and without it, a byte limit, read-only arrays, no copies in workers."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest
import torch
from helpers_data import make_generic

import sam2elnet.data.datasets as datasets
from sam2elnet.data.datasets import SegmentationDataset, discover
from sam2elnet.data.load_cache import LoadCache
from sam2elnet.data.normalize import NormalizationConfig


def _arrays(n: int = 3) -> tuple[np.ndarray, ...]:
    return (np.zeros(n, np.float32), np.ones(n, bool), None)  # type: ignore[return-value]


def test_fetch_keeps_what_fits_and_counts_its_bytes() -> None:
    calls: list[str] = []

    def load(name: str, n: int):
        def f() -> tuple[np.ndarray, ...]:
            calls.append(name)
            return _arrays(n)

        return f

    cache = LoadCache(max_bytes=40)
    first = cache.fetch("a", load("a", 4))  # 16 + 4 bytes
    assert cache.fetch("a", load("a", 4)) is first and calls == ["a"]
    assert cache.bytes == 20 and len(cache) == 1 and "a" in cache
    big = cache.fetch("b", load("b", 8))  # 40 bytes: over the limit with "a" kept
    assert "b" not in cache and cache.bytes == 20
    assert cache.fetch("b", load("b", 8)) is not big and calls == ["a", "b", "b"]
    assert not first[0].flags.writeable and not first[1].flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0][0] = 1.0
    assert big[0].flags.writeable  # not kept: the caller's own arrays
    unlimited = LoadCache()
    unlimited.fetch("c", load("c", 1000))
    assert "c" in unlimited and unlimited.bytes == 5000
    nothing = LoadCache(max_bytes=0)
    nothing.fetch("d", load("d", 1))
    assert len(nothing) == 0


def test_a_failed_read_keeps_nothing() -> None:
    cache = LoadCache()

    def broken() -> tuple[np.ndarray, ...]:
        raise OSError("unreadable")

    with pytest.raises(OSError, match="unreadable"):
        cache.fetch("x", broken)
    assert len(cache) == 0 and cache.bytes == 0


def test_copies_in_other_processes_keep_nothing() -> None:
    cache = LoadCache()
    cache.fetch("a", lambda: _arrays())
    copy = pickle.loads(pickle.dumps(cache))  # a spawned worker's copy
    assert len(copy) == 0 and copy.bytes == 0
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:  # a forked worker: reads as without a cache, keeps nothing new
        got = cache.fetch("b", lambda: _arrays())
        queue.put((len(cache), "b" in cache, got[0].flags.writeable))

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(30)
    assert queue.get(timeout=5) == (1, False, True)


def test_dataset_decodes_each_image_once_and_gives_the_same_items(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = discover(make_generic(tmp_path / "g", coarse=True)).samples
    reads: list[str] = []
    real = datasets.read_image

    def counted(path, *a, **k):
        reads.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(datasets, "read_image", counted)

    def items(cache: LoadCache | None) -> list[dict]:
        ds = SegmentationDataset(samples, size=32, train=True, seed=3, bands=3, cache=cache)
        out = []
        for epoch in range(3):
            ds.set_epoch(epoch)
            out += [ds[i] for i in range(len(ds))]
        return out

    plain = items(None)
    assert len(reads) == 3 * len(samples)
    reads.clear()
    cached = items(LoadCache())
    assert sorted(reads) == sorted(str(s.image) for s in samples)  # once each, 3 epochs
    for a, b in zip(plain, cached, strict=True):
        for key in ("image", "mask", "valid", "coarse", "has_coarse"):
            assert torch.equal(a[key], b[key]), key
    # no band count yet (the downstream dataset sets it later): nothing is kept
    ds = SegmentationDataset(samples, size=32, train=True, cache=(cache := LoadCache()))
    ds[0]
    assert len(cache) == 0


def test_one_cache_keeps_each_normalisation_apart(tmp_path) -> None:
    samples = discover(make_generic(tmp_path / "g")).samples[:1]
    cache = LoadCache()
    a = SegmentationDataset(samples, size=32, train=False, bands=3, cache=cache)
    stretched = NormalizationConfig(method="percentile", p_low=10.0, p_high=90.0)
    b = SegmentationDataset(samples, stretched, size=32, train=False, bands=3, cache=cache)
    xa, xb = a.load(0)[0], b.load(0)[0]
    assert len(cache) == 2 and not np.array_equal(xa, xb)
    np.testing.assert_array_equal(xb, SegmentationDataset(samples, stretched, bands=3).load(0)[0])


def test_one_cache_keeps_each_choice_of_object_classes_apart(tmp_path) -> None:
    """A class-index mask read for class 1 and for class 2 (``positive_values``) through one
    cache: each dataset gets its own class, not the first one's."""
    from helpers_data import write_png

    root = make_generic(tmp_path / "g", n=1)
    classes = np.zeros((32, 32), np.uint8)
    classes[:, :10], classes[:, 20:] = 1, 2
    write_png(root / "masks" / "img0.png", classes)
    samples = discover(root).samples
    cache = LoadCache()
    masks = [
        SegmentationDataset(
            samples, size=32, train=False, bands=3, positive_values=(pv,), cache=cache
        ).load(0)[1]
        for pv in (1.0, 2.0)
    ]
    np.testing.assert_array_equal(masks[0], classes == 1)
    np.testing.assert_array_equal(masks[1], classes == 2)
    assert len(cache) == 2


def test_the_training_cache_limit_from_the_environment() -> None:
    from sam2elnet.data.load_cache import TRAIN_CACHE_BYTES, train_cache_bytes
    from sam2elnet.errors import UserError

    assert train_cache_bytes({}) == TRAIN_CACHE_BYTES == 256 * 2**20
    assert train_cache_bytes({"SAM2ELNET_TRAIN_CACHE_MB": " "}) == TRAIN_CACHE_BYTES
    assert train_cache_bytes({"SAM2ELNET_TRAIN_CACHE_MB": "0"}) == 0
    assert train_cache_bytes({"SAM2ELNET_TRAIN_CACHE_MB": "64"}) == 64 * 2**20
    for bad in ("-1", "1.5", "lots"):
        with pytest.raises(UserError, match=r"SAM2ELNET_TRAIN_CACHE_MB='.*' is not a whole number"):
            train_cache_bytes({"SAM2ELNET_TRAIN_CACHE_MB": bad})
