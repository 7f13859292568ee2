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


def test_levers_are_off_by_default(micro, monkeypatch) -> None:
    monkeypatch.delenv("SAM2ELNET_CHANNELS_LAST", raising=False)
    monkeypatch.delenv("SAM2ELNET_COMPILE", raising=False)
    model, extra = micro
    pred = Predictor(copy.deepcopy(model), extra, precision="32")
    assert pred.net is pred.model  # not compiled
    assert _first_conv(pred.model).is_contiguous()


def test_channels_last_gives_the_same_probabilities(micro, monkeypatch) -> None:
    model, extra = micro
    x = np.random.default_rng(0).random((2, 1, 64, 64), dtype=np.float32)
    plain = Predictor(copy.deepcopy(model), extra, precision="32").predict_arrays(x)
    cl = Predictor(copy.deepcopy(model), extra, precision="32", channels_last=True)
    assert _first_conv(cl.model).is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(cl.predict_arrays(x), plain, atol=1e-4)
    probs, _ = cl.predict(list(x))
    np.testing.assert_allclose(np.stack(probs), plain, atol=1e-4)
    # the environment variable switches it on too (for the CLI)
    monkeypatch.setenv("SAM2ELNET_CHANNELS_LAST", "1")
    env = Predictor(copy.deepcopy(model), extra, precision="32")
    assert _first_conv(env.model).is_contiguous(memory_format=torch.channels_last)
