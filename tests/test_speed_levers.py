"""Opt-in inference speed levers (engine.runtime.speed_levers via Predictor); off by default."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sam2elnet.data.normalize import NormalizationConfig
from sam2elnet.engine.infer import Predictor
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
