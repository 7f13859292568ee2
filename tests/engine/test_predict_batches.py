"""Predictor.predict on images of mixed sizes: batches formed by the one grouping rule
(utils.shape_batches.batches_by_key) with a batch size per size from the memory budget
(Predictor.fit_batch), outputs in input order and equal to predicting each size on its own."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
import torch

from sam2elnet.engine import predictor as predictor_module
from sam2elnet.engine import runtime as runtime_module
from sam2elnet.engine.predictor import Predictor
from sam2elnet.model import ModelConfig, build_model

SMALL, LARGE = (1, 32, 32), (1, 48, 40)


@pytest.fixture(scope="module")
def pred() -> Predictor:
    torch.manual_seed(0)
    return Predictor(build_model(ModelConfig(size="micro", in_bands=1)), {}, precision="32",
                     batch_size=3)  # fmt: skip


def test_mixed_sizes_use_the_grouping_rule_with_a_size_per_shape(
    pred: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    order = [SMALL, LARGE, SMALL, SMALL, LARGE, SMALL, LARGE, SMALL]
    images = [rng.random(s, dtype=np.float32) for s in order]
    coarse = [None] * len(images)
    coarse[5] = (rng.random(SMALL[1:]) > 0.5).astype(np.float32)  # one enhanced small image
    monkeypatch.setattr(pred, "max_memory", pred.whole_bytes(32 * 32, batch=2))
    assert pred.fit_batch(32 * 32) == 2 and pred.fit_batch(48 * 40) == 1

    calls: list[list[int]] = []
    real = predictor_module.batches_by_key

    def spy(keys, size):  # type: ignore[no-untyped-def]
        out = real(keys, size)
        calls.extend(out)
        for b in out:  # no batch over its key's size, as the memory budget gives it
            (shape, has_c) = keys[b[0]]
            assert len(b) <= pred.fit_batch(shape[1] * shape[2], coarse=has_c)
        return out

    monkeypatch.setattr(predictor_module, "batches_by_key", spy)
    probs, q = pred.predict(images, coarse=coarse)
    # small without coarse: [0,2] [3,7]; large one at a time; the enhanced small one alone
    assert calls == [[0, 2], [3, 7], [1], [4], [6], [5]]
    assert [p.shape for p in probs] == [s[1:] for s in order]  # input order
    monkeypatch.setattr(predictor_module, "batches_by_key", real)
    # the same batches per size made on their own give the same bytes, in the same places
    for ids in ([0, 2, 3, 7], [1, 4, 6], [5]):
        alone, qa = pred.predict([images[i] for i in ids], coarse=[coarse[i] for i in ids])
        for i, p in zip(ids, alone, strict=True):
            assert np.array_equal(p, probs[i]), i
        np.testing.assert_array_equal(qa.features, q.features[ids])


def test_predict_arrays_uses_the_grouping_rule(
    pred: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict_arrays (the scene windows' fast path) batches by the same rule as predict: runs of
    at most batch_size arrays, each batch's probabilities the same bytes as predicting it alone."""
    rng = np.random.default_rng(1)
    x = rng.random((5, *SMALL), dtype=np.float32)
    c = (rng.random((5, *SMALL[1:])) > 0.5).astype(np.float32)
    calls: list[list[int]] = []
    real = predictor_module.batches_by_key

    def spy(keys, size):  # type: ignore[no-untyped-def]
        out = real(keys, size)
        calls.extend(out)
        return out

    monkeypatch.setattr(predictor_module, "batches_by_key", spy)
    plain, enhanced = pred.predict_arrays(x), pred.predict_arrays(x, c)
    assert calls == [[0, 1, 2], [3, 4]] * 2  # batch_size 3, in input order
    monkeypatch.setattr(predictor_module, "batches_by_key", real)
    for ids in ([0, 1, 2], [3, 4]):
        alone = pred.predict_arrays(x[ids])
        assert alone.tobytes() == plain[ids].tobytes()
        alone_c = pred.predict_arrays(x[ids], c[ids][:, None])  # (B,1,h,w) coarse accepted
        assert alone_c.tobytes() == enhanced[ids].tobytes()


def test_an_all_valid_batch_runs_without_its_mask_and_gives_the_same_bits(
    pred: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """valid masks that are all ones (bool True or float 1, what annotate's reads give for images
    without nodata) reach the features and flags as no mask (run_model finds it once a batch):
    the same probabilities and features bit for bit as the mask itself gives (a product with 1
    changes nothing). A mask with a 0 or a fractional weight is still applied."""
    rng = np.random.default_rng(3)
    images = [rng.random(SMALL, dtype=np.float32) for _ in range(3)]
    real = predictor_module.run_model
    seen: list[object] = []

    def spy(name, fn):  # type: ignore[no-untyped-def]
        def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((name, kwargs["valid"] if "valid" in kwargs else args[1]))
            return fn(*args, **kwargs)

        return wrapped

    ones = [np.ones(SMALL[1:], bool), np.ones(SMALL[1:], np.float32), None]
    ref_probs, ref_q = pred.predict(images)  # no masks at all
    with monkeypatch.context() as m:
        for name in ("input_flags", "uncertainty_features"):
            m.setattr(runtime_module, name, spy(name, getattr(runtime_module, name)))
        probs, q = pred.predict(images, valid=ones)
    # one batch of 3, its features and flags computed without a mask
    assert seen == [("input_flags", None), ("uncertainty_features", None)]
    # the same bits as the masks applied as tensors (the earlier path): run_model given them
    direct = real(pred.net, torch.from_numpy(np.stack(images)), device=pred.device,
                  precision=pred.precision, valid=torch.ones(3, *SMALL[1:]))  # fmt: skip
    for i in range(3):
        assert np.array_equal(probs[i], ref_probs[i])
        assert np.array_equal(probs[i], direct.probs[i].numpy())
    assert np.array_equal(q.features, ref_q.features)
    assert np.array_equal(q.features, direct.features)
    part = np.ones(SMALL[1:], np.float32)
    part[:5] = 0
    half = np.full(SMALL[1:], 0.5, np.float32)
    masked, _ = pred.predict(images, valid=[part, half, None])
    assert not masked[0][:5].any() and np.array_equal(masked[0][5:], ref_probs[0][5:])
    assert np.allclose(masked[1], ref_probs[1] * 0.5)
