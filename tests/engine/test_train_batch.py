"""Training speed defaults: the batch formed by pixels, channels-last, and what a run records."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import pytest
from helpers_data import make_dataset, small_cfg

from sam2elnet.engine.train_schedule import (
    TRAIN_BATCH_PIXELS,
    auto_batch_size,
    resolve_batch_size,
)


@pytest.mark.parametrize(
    ("size", "batch"),
    [(32, 8), (128, 8), (181, 8), (182, 7), (224, 5), (256, 4), (300, 2), (512, 2), (2048, 2)],
)
def test_batch_is_formed_by_pixels_between_2_and_8(size: int, batch: int) -> None:
    assert auto_batch_size(size) == batch
    assert resolve_batch_size(None, size) == (batch, "pixels")
    if 2 < batch < 8:  # inside the clamp: the crops of one step stay within the budget
        assert batch * size * size <= TRAIN_BATCH_PIXELS < (batch + 1) * size * size


def test_an_explicit_batch_size_is_kept_at_any_crop_size() -> None:
    assert resolve_batch_size(8, 512) == (8, "given")
    assert resolve_batch_size(1, 32) == (1, "given")


def test_channels_last_training_equals_channels_first_and_is_recorded(tmp_path: Path) -> None:
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    data = make_dataset(tmp_path / "d", n=8)
    lines: list[str] = []
    runs = {}
    for cl in (False, True):
        cfg = small_cfg(
            data,
            tmp_path / f"run-{cl}",
            batch_size=None,
            channels_last=cl,
            precision="32",
            epochs=2,
            fit_quality=False,
        )
        runs[cl] = train(cfg, echo=lines.append)
    # the pixel rule at 32 px gives the cap (8); the 4 training images make one step per epoch
    assert (
        "batch 8 (formed by pixels at 32 px: at most 262,144 px per step, 2-8 images), channels-first"
        in lines
    )
    assert (
        "batch 8 (formed by pixels at 32 px: at most 262,144 px per step, 2-8 images), channels-last"
        in lines
    )
    for cl, res in runs.items():
        _, extra = load_model(res.best_path)
        assert extra["train"]["batch_size"] == 8
        assert extra["train"]["batch_rule"] == "pixels"
        assert extra["train"]["channels_last"] is cl
    a, b = runs[False].history, runs[True].history
    for ra, rb in zip(a, b, strict=True):  # same network and data: equal up to float rounding
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-3)
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-3)


def test_native_bf16_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2elnet.engine.runtime import ENV_NATIVE_BF16, precision_note, resolve_precision

    monkeypatch.setenv(ENV_NATIVE_BF16, "0")
    assert resolve_precision("auto", "cpu") == "32"
    assert "no native bf16" in precision_note("auto", "cpu")
    assert resolve_precision("bf16", "cpu") == "bf16"  # asked for explicitly: kept
    monkeypatch.setenv(ENV_NATIVE_BF16, "1")
    assert resolve_precision("auto", "cpu") == "bf16"


def test_auto_without_native_bf16_trains_exactly_like_float32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2elnet.engine.runtime import ENV_NATIVE_BF16
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    monkeypatch.setenv(ENV_NATIVE_BF16, "0")
    data = make_dataset(tmp_path / "d", n=8)
    lines: list[str] = []
    runs = {
        prec: train(
            small_cfg(data, tmp_path / f"run-{prec}", precision=prec, epochs=2, fit_quality=False),
            echo=lines.append,
        )
        for prec in ("auto", "32")
    }
    assert sum(ln.startswith("precision: 32 (float32; auto: no native bf16") for ln in lines) == 1
    assert sum(ln == "precision: 32 (float32; --precision 32)" for ln in lines) == 1
    _, extra = load_model(runs["auto"].best_path)
    assert extra["train"]["precision"] == "32"  # what ran, not what was asked
    # the run record of annotate / enhance / scene / cv: what was asked for and what ran
    got = {k: extra["train"][k] for k in ("precision_option", "precision_resolved")}
    assert got == {"precision_option": "auto", "precision_resolved": "32"}
    _, extra32 = load_model(runs["32"].best_path)
    got = {k: extra32["train"][k] for k in ("precision_option", "precision_resolved")}
    assert got == {"precision_option": "32", "precision_resolved": "32"}
    for ra, rb in zip(runs["auto"].history, runs["32"].history, strict=True):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-6)
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], rel=1e-6)


def test_head_width_from_the_training_config_reaches_the_saved_model(tmp_path: Path) -> None:
    """``detail_width`` in a training config (``--config`` YAML) builds and saves that head;
    without it the model's own default is used."""
    from sam2elnet.engine.train import train
    from sam2elnet.model import ModelConfig, load_model

    data = make_dataset(tmp_path / "d", n=4, size=32)
    for width, expected in ((None, ModelConfig(size="micro").detail_width), (8, 8)):
        out = tmp_path / f"r{width}"
        train(small_cfg(data, out, detail_width=width))
        model, _ = load_model(out / "model.pt")
        assert model.config.detail_width == expected
        assert model.decoder.head.in_channels == expected
