"""The options of ``elnet serve``: :class:`BackendConfig` (defaults and ranges declared once).

Part of :mod:`sam2elnet.pipeline.serve`; a module of its own so the CLI can take its defaults
from here without importing the backend (``elnet --help`` stays fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sam2elnet.option_values import check_device

__all__ = ["BackendConfig"]


class BackendConfig(BaseModel):
    """Settings of the ML backend (defaults are those of ``elnet serve``).

    The CLI validates through this model (:func:`sam2elnet.option_checks.check_options`), so an
    out-of-range value is one ``error:`` line before the model is loaded; made directly, a bad
    value raises ``pydantic.ValidationError``.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    model: Path
    """Model file from ``elnet train``."""
    workdir: Path = Path("elnet-serve")
    """Reviewed masks (``data/images``, ``data/masks``) and fine-tuning runs (``runs/``)."""
    document_root: Path | None = None
    """Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``, to read ``/data/local-files`` images directly."""
    ls_url: str | None = None
    ls_token: str | None = None
    threshold: float = Field(0.5, gt=0, lt=1)
    """Probability threshold of the masks."""
    category: str | None = None
    """Label name of the results (None: the model's domain, ``"road"`` / ``"oil spill"``, else
    ``"foreground"``; as ``elnet export`` names the tasks' label)."""
    device: str = "cpu"
    train: bool = True
    train_after: int = Field(1, ge=1)
    """Start fine-tuning after this many new reviewed annotations."""
    epochs: int = Field(3, ge=1)
    """Epochs of each fine-tuning run."""
    image_size: int | None = Field(None, ge=32)
    """Crop size (pixels) of the fine-tuning runs; None: the size the served model was trained
    at (its training record, ``elnet train --image-size``), 256 for a model without one."""
    batch_size: int = Field(2, ge=1, le=1024)
    extra_train: dict[str, Any] = Field(default_factory=dict)
    """Further :class:`~sam2elnet.config.TrainConfig` options of the fine-tuning runs."""

    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
