"""experiment_engine.quality_threshold: the default target precision is the declared field default
(option_checks.option_default), read without building a QualityConfig at run time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sam2elnet.config import QualityConfig
from sam2elnet.pipeline.experiment_config import ExperimentConfig
from sam2elnet.pipeline.experiment_engine import quality_threshold


class FittedPredictor:
    """What quality_threshold reads of a Predictor: a fitted evaluator and choose_threshold."""

    def __init__(self) -> None:
        self.evaluator = SimpleNamespace(fitted=True, warning=None, status="fitted", prior=0.5)
        self.targets: list[Any] = []

    def choose_threshold(self, min_quality: Any, target: Any) -> tuple[float, dict]:
        self.targets.append((min_quality, target))
        return 0.625, {"target_precision": {"tau": 0.5, "achievable": True}}


def test_default_target_precision_builds_no_quality_config(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = ExperimentConfig(data=tmp_path, out=tmp_path / "e")
    assert cfg.min_quality is None and cfg.target_precision is None

    def built(self: Any, *a: Any, **k: Any) -> None:
        raise AssertionError("QualityConfig() built to read a default")

    monkeypatch.setattr(QualityConfig, "__init__", built)
    pred = FittedPredictor()
    thr, how = quality_threshold(cfg, pred)
    assert pred.targets == [(None, 0.9)]
    assert thr == 0.625
    assert how == "target precision 0.90 of 'IoU >= 0.50' on held-out labels -> threshold 0.625"
