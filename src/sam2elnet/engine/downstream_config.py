"""The downstream model's configuration and result records (part of :mod:`sam2elnet.engine.downstream`).

One :class:`DownstreamConfig` is used for every setting of an experiment, so that only the labels
differ between the settings; :class:`DownstreamResult` is what one training and its test scoring
leave in the results files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sam2elnet.engine.runtime import autocast
from sam2elnet.option_values import (
    CURVE_POINTS_MAX,
    Precision,
    check_device,
    norm_precision_value,
)


class DownstreamConfig(BaseModel):
    """Everything that must be identical across the settings of one experiment.

    A pydantic model (ranges declared here, once); :meth:`to_dict` is part of every cached
    downstream training's fingerprint, so the field order and values are those of the results
    files.
    """

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, protected_namespaces=()
    )

    model: str = "unet"
    model_options: dict[str, Any] = Field(
        default_factory=lambda: {"width": 16, "depth": 4, "norm": "batch"}
    )
    epochs: int = Field(10, ge=1)
    steps: int | None = Field(None, ge=1)
    """Fixed number of optimiser steps for every setting (overrides ``epochs`` when set)."""
    image_size: int = Field(256, ge=32)
    batch_size: int = Field(8, ge=1, le=1024)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    precision: Precision = "auto"  # auto | bf16 | 32 (older results spelled 32 "fp32")
    device: str = "cpu"
    seed: int = 0
    augment: bool = True
    threshold: float = Field(0.5, ge=0, le=1)
    eval_batch_size: int = Field(16, ge=1)
    curve_points: int = Field(0, ge=0, le=CURVE_POINTS_MAX)
    """Test-split evaluations during training (evenly spaced in optimiser steps, the last one at
    the end) for a learning curve; 0 or 1 (default) = the final evaluation only. Inference only:
    the trained weights are identical whatever this is."""
    progress: bool = True

    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
    _prec = field_validator("precision", mode="before")(staticmethod(norm_precision_value))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for results files and fingerprints.

        Returns:
            Every field in declaration order.
        """
        return self.model_dump()


@dataclass
class DownstreamResult:
    """Test scores and training facts of one downstream run."""

    metrics: dict[str, float]
    n_train: int
    n_test: int
    train_seconds: float
    images_per_second: float
    parameters: int
    history: list[dict[str, float]] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)
    """Learning curve on the test split: ``{"step", "iou", "miou", "f1", "loss"}`` per point
    (``loss`` = mean training loss since the previous point), the last at the final step."""
    per_image: list[list[int]] = field(default_factory=list)
    """Confusion counts [tp, fp, fn, tn] of each test image, in the order of the test pairs (they
    sum to the aggregate counts in ``metrics``; bootstrap intervals resample them)."""
    per_image_roads: list[list[int]] = field(default_factory=list)
    """Road data only (else empty): each test image's centre-line counts in the order of the
    test pairs, the fields of :class:`~sam2elnet.engine.metrics.RoadCounts` (``as_tuple``:
    predicted length, matched, true length, matched, components, preserved); they sum to the
    counts behind ``metrics``' road measures."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for results files."""
        return asdict(self)


def downstream_autocast(cfg: DownstreamConfig) -> Any:
    """The autocast context of ``cfg`` (its device type and precision), for training and scoring."""
    return autocast(torch.device(str(cfg.device).split(":")[0]), cfg.precision)
