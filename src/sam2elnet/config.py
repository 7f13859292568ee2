"""Run configuration: one pydantic model per job, YAML in and out, one place for defaults.

A training run writes its :class:`TrainConfig` to ``RUN/config.yaml``; ``--resume`` reads it back so a
resumed run cannot silently change hyper-parameters. Defaults are chosen for the 2-core CPU case
(bf16 autocast, batch 8, 256 px) and stay sensible on a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sam2elnet.errors import UserError

ModelSize = Literal["micro", "tiny", "small", "base_plus", "large"]


class QualityConfig(BaseModel):
    """Settings of the label quality evaluator (see :mod:`sam2elnet.model.quality`)."""

    model_config = ConfigDict(extra="forbid")

    tau: float = Field(0.7, gt=0, lt=1, description="a label is 'good' when its IoU >= tau")
    tta: int = Field(
        0,
        ge=0,
        le=7,
        description="test-time views for agreement features; each costs one more forward pass "
        "(on SOS-dev they did not improve the evaluator: docs/training.md)",
    )
    pca_dim: int = Field(8, ge=0, le=64, description="embedding components fed to the learned head")
    ridge_alpha: float = Field(1.0, gt=0)
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds for out-of-fold scores")
    default_target_precision: float = Field(0.9, gt=0, le=1)


class TrainConfig(BaseModel):
    """Everything ``elnet train`` needs; saved as ``RUN/config.yaml``."""

    model_config = ConfigDict(extra="forbid")

    data: Path = Field(..., description="dataset root (any layout sam2elnet.data.discover knows)")
    out: Path = Field(..., description="run folder: model.pt, last.pt, config.yaml, metrics.csv")
    weights: str | None = Field(None, description="SAM2 checkpoint for the trunk; None = random")
    size: ModelSize = "tiny"
    adapter_dim: int | None = Field(None, description="None = the model's default")
    trunk: Literal["none", "last", "all"] = Field(
        "none", description="which trunk stages also train (for runs without pretrained weights)"
    )
    fraction: float = Field(1.0, gt=0, le=1, description="fraction of the labelled set to train on")
    seed: int = 0
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(8, ge=1)
    image_size: int = Field(256, ge=32)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(
        0.05, ge=0, lt=1, description="share of steps for linear warm-up"
    )
    min_lr_ratio: float = Field(0.02, ge=0, le=1, description="cosine decays to lr * this")
    grad_clip: float = Field(1.0, gt=0)
    val_fraction: float = Field(
        0.15, ge=0, lt=1, description="share of the training part kept for validation"
    )
    max_train: int | None = Field(None, ge=1, description="cap on training samples (smoke runs)")
    coarse_prob: float = Field(
        0.5, ge=0, le=1, description="share of samples that are enhancement (coarse given)"
    )
    coarse_prior: float = Field(
        0.0, ge=0, description="logit offset towards a given coarse label (see ModelConfig)"
    )
    precision: Literal["bf16", "32"] = "bf16"
    device: str = Field("cpu", description="cpu | cuda | cuda:N")
    num_workers: int | None = Field(None, ge=0, description="DataLoader workers; None = automatic")
    threads: int | None = Field(
        None, ge=1, description="torch threads; None = all cores (or $SAM2ELNET_THREADS)"
    )
    layout: str = "auto"
    sensor: list[str] | None = None
    resume: bool = False
    progress: bool = True
    fit_quality: bool = True
    distributed: bool | None = Field(
        None, description="None = from WORLD_SIZE; True forces DDP even with one process (tests)"
    )
    loss_boundary: float = 2.0
    loss_deep_supervision: float = 0.4
    loss_edge: float = 0.5
    quality: QualityConfig = Field(default_factory=QualityConfig)

    @field_validator("weights", mode="before")
    @classmethod
    def _none_weights(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in {"", "none", "null"}):
            return None
        return str(v)

    @field_validator("precision", mode="before")
    @classmethod
    def _norm_precision(cls, v: Any) -> Any:
        s = str(v).lower()
        return {"fp32": "32", "float32": "32", "bfloat16": "bf16", "bf16-mixed": "bf16"}.get(s, s)

    def to_yaml(self) -> str:
        """YAML text (paths as strings)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        """Write the config atomically as YAML."""
        from sam2elnet.utils.atomic import write_text_atomic

        return write_text_atomic(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a YAML config; UserError naming the file on bad YAML or bad fields."""
        return load_yaml_model(cls, path)


def load_yaml_model(cls: type[BaseModel], path: str | Path) -> Any:
    """Parse ``path`` as YAML into pydantic model ``cls`` with user-facing errors."""
    p = Path(path)
    if not p.is_file():
        raise UserError("config file does not exist; check the path", p)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"not valid YAML ({err}); fix or delete the file", p) from err
    if not isinstance(raw, dict):
        raise UserError("expected a mapping of option: value; fix or delete the file", p)
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        msgs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
        )
        raise UserError(f"invalid configuration ({msgs})", p) from err
