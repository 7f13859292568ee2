"""Inference speed levers (engine.runtime.speed_levers via Predictor): channels-last and the
bf16 trunk on by default, compile opt-in."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sam2elnet.data.normalize import NormalizationConfig
from sam2elnet.engine.predictor import Predictor
from sam2elnet.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def micro() -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    norm = NormalizationConfig.for_modality("sar").model_dump(mode="json")
    model = build_model(ModelConfig(size="micro", in_bands=1, normalization=norm))
    return model, {"normalization": norm}


def _first_conv(m: torch.nn.Module) -> torch.Tensor:
    return next(p for p in m.parameters() if p.ndim == 4)


def test_channels_last_is_on_and_compile_off_by_default(micro, monkeypatch) -> None:
    monkeypatch.delenv("SAM2ELNET_CHANNELS_LAST", raising=False)
    monkeypatch.delenv("SAM2ELNET_COMPILE", raising=False)
    model, extra = micro
    pred = Predictor(copy.deepcopy(model), extra, precision="32")
    assert pred.net is pred.model  # not compiled
    assert _first_conv(pred.model).is_contiguous(memory_format=torch.channels_last)
    # SAM2ELNET_CHANNELS_LAST=0 (or channels_last=False) turns it off
    monkeypatch.setenv("SAM2ELNET_CHANNELS_LAST", "0")
    off = Predictor(copy.deepcopy(model), extra, precision="32")
    assert _first_conv(off.model).is_contiguous()
    assert not _first_conv(off.model).is_contiguous(memory_format=torch.channels_last)


def test_batch_is_capped_by_pixels_per_forward() -> None:
    from sam2elnet.engine import memory

    assert memory.BATCH_PIXELS == 2 * 512 * 512
    big = 10**12  # no memory limit: only the pixel cap and the batch limit decide
    assert memory.fit_batch(256 * 256, big, 8, size="micro", precision="bf16", bands=1) == 8
    assert memory.fit_batch(512 * 512, big, 8, size="micro", precision="bf16", bands=1) == 2
    assert memory.fit_batch(1024 * 1024, big, 8, size="micro", precision="bf16", bands=1) == 1
    assert memory.fit_batch(2048 * 2048, big, 8, size="micro", precision="bf16", bands=1) == 1
    # float32 and other devices: the same cap (since 2026-12-05; float32 on a CPU took half of it)
    assert memory.fit_batch(256 * 256, big, 8, size="micro", precision="32", bands=1) == 8
    assert memory.fit_batch(512 * 512, big, 8, size="micro", precision="32", bands=1) == 2
    assert memory.fit_batch(1024 * 1024, big, 8, size="micro", precision="32", bands=1) == 1


def test_predict_arrays_batches_by_the_pixel_cap(micro, monkeypatch) -> None:
    """predict_arrays sends at most memory.BATCH_PIXELS px per forward (float32 included)."""
    model, extra = micro
    pred = Predictor(copy.deepcopy(model), extra, precision="32", batch_size=8)
    seen: list[int] = []
    net = pred.net

    def spy(x, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(int(x.shape[0]))
        return net(x, *a, **kw)

    monkeypatch.setattr(pred, "net", spy)
    x = np.zeros((5, 1, 512, 512), dtype=np.float32)
    assert pred.predict_arrays(x).shape == (5, 512, 512)
    assert seen == [2, 2, 1]


def test_channels_last_gives_the_same_probabilities(micro, monkeypatch) -> None:
    model, extra = micro
    x = np.random.default_rng(0).random((2, 1, 64, 64), dtype=np.float32)
    plain = Predictor(
        copy.deepcopy(model), extra, precision="32", channels_last=False
    ).predict_arrays(x)
    cl = Predictor(copy.deepcopy(model), extra, precision="32", channels_last=True)
    assert _first_conv(cl.model).is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(cl.predict_arrays(x), plain, atol=1e-4)
    probs, _ = cl.predict(list(x))
    np.testing.assert_allclose(np.stack(probs), plain, atol=1e-4)
    # the environment variable switches it on too (for the CLI)
    monkeypatch.setenv("SAM2ELNET_CHANNELS_LAST", "1")
    env = Predictor(copy.deepcopy(model), extra, precision="32")
    assert _first_conv(env.model).is_contiguous(memory_format=torch.channels_last)
    # bf16 as annotate runs it: the same labels up to rounding
    p16 = Predictor(copy.deepcopy(model), extra, channels_last=False).predict_arrays(x)
    c16 = Predictor(copy.deepcopy(model), extra).predict_arrays(x)
    assert np.abs(c16 - p16).max() < 0.02
    assert ((c16 > 0.5) == (p16 > 0.5)).mean() > 0.99


def test_bf16_trunk_is_the_default_and_only_under_bf16(micro, monkeypatch) -> None:
    monkeypatch.delenv("SAM2ELNET_BF16_TRUNK", raising=False)
    model, extra = micro
    x = np.random.default_rng(1).random((2, 1, 64, 64), dtype=np.float32)
    plain = Predictor(copy.deepcopy(model), extra, precision="bf16", bf16_trunk=False)
    assert next(plain.model.trunk.parameters()).dtype == torch.float32
    fast = Predictor(copy.deepcopy(model), extra, precision="bf16")
    assert next(fast.model.trunk.parameters()).dtype == torch.bfloat16
    assert next(fast.model.decoder.parameters()).dtype == torch.float32
    a, b = plain.predict_arrays(x), fast.predict_arrays(x)
    assert np.abs(a - b).max() < 0.05
    assert ((a > 0.5) == (b > 0.5)).mean() > 0.97
    # fp32 inference keeps an fp32 trunk even when asked (the trunk would get bf16 inputs wrong)
    monkeypatch.setenv("SAM2ELNET_BF16_TRUNK", "1")
    f32 = Predictor(copy.deepcopy(model), extra, precision="32")
    assert next(f32.model.trunk.parameters()).dtype == torch.float32
    # SAM2ELNET_BF16_TRUNK=0 turns it off (for the CLI)
    monkeypatch.setenv("SAM2ELNET_BF16_TRUNK", "0")
    off = Predictor(copy.deepcopy(model), extra, precision="bf16")
    assert next(off.model.trunk.parameters()).dtype == torch.float32
