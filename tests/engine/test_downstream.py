"""Tests for downstream training/evaluation: identical settings, label override, pixel metrics."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_downstream import tiny_downstream_config, write_disk_pairs

from sam2elnet.engine.downstream import (
    evaluate_downstream,
    scores_from_counts,
    train_and_evaluate,
    train_downstream,
)
from sam2elnet.errors import DataError, UserError


def test_trains_evaluates_and_learns(tmp_path: Path) -> None:
    train = write_disk_pairs(tmp_path / "train", 16)
    test = write_disk_pairs(tmp_path / "test", 6, seed=1)
    res = train_and_evaluate(
        train, test, tiny_downstream_config(epochs=8), model_path=tmp_path / "m.pt"
    )
    m = res.metrics
    for key in ("iou", "f1", "precision", "recall", "miou", "tp", "fp", "fn", "tn"):
        assert key in m
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 6 * 32 * 32
    assert m["iou"] > 0.3  # an easy task: the model must learn something
    assert res.n_train == 16 and res.n_test == 6 and res.parameters > 0
    assert (tmp_path / "m.pt").is_file()


def test_same_seed_same_result_and_label_override(tmp_path: Path) -> None:
    train = write_disk_pairs(tmp_path / "train", 8)
    test = write_disk_pairs(tmp_path / "test", 4, seed=1)
    ra = train_and_evaluate(train, test, tiny_downstream_config(epochs=2))
    rb = train_and_evaluate(train, test, tiny_downstream_config(epochs=2))
    assert ra.metrics == rb.metrics and ra.history == rb.history
    # label override: same images, labels pointing at an empty-label folder -> a different model
    empty = write_disk_pairs(tmp_path / "empty", 8, empty_labels=True)
    override = [(img, lab) for (img, _), (_, lab) in zip(train, empty, strict=True)]
    rc = train_and_evaluate(override, test, tiny_downstream_config(epochs=2))
    assert rc.history != ra.history


def test_evaluates_at_native_resolution(tmp_path: Path) -> None:
    train = write_disk_pairs(tmp_path / "train", 8, size=48)
    test = write_disk_pairs(tmp_path / "test", 3, size=40, seed=2)
    cfg = tiny_downstream_config(epochs=1, image_size=32)
    model, facts = train_downstream(train, cfg)
    assert facts["steps"] == 2 and facts["n_train"] == 8
    m = evaluate_downstream(model, test, cfg)
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 3 * 40 * 40


def test_fixed_steps_and_batch_of_one_dropped(tmp_path: Path) -> None:
    train = write_disk_pairs(tmp_path / "train", 9)  # 9 % 4 == 1: the lone last batch is dropped
    _, facts = train_downstream(train, tiny_downstream_config(epochs=1))
    assert facts["steps"] == 2
    _, facts = train_downstream(train, tiny_downstream_config(steps=5))
    assert facts["steps"] == 5


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no training pairs"):
        train_downstream([], tiny_downstream_config())
    pairs = write_disk_pairs(tmp_path / "a", 2)
    small = tmp_path / "small_mask.png"
    cv2.imwrite(str(small), np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="mask size"):
        train_downstream([(pairs[0][0], small)], tiny_downstream_config())
    with pytest.raises(DataError):
        train_downstream([(tmp_path / "missing.png", pairs[0][1])], tiny_downstream_config())


def test_scores_from_counts() -> None:
    s = scores_from_counts([5, 5, 0, 90])
    assert s["iou"] == pytest.approx(0.5) and s["precision"] == pytest.approx(0.5)
    assert s["recall"] == 1.0 and s["tp"] == 5


def test_learning_curve_points_and_per_image_counts(tmp_path: Path) -> None:
    from sam2elnet.engine.downstream import curve_steps

    assert curve_steps(600, 6) == [100, 200, 300, 400, 500, 600]
    assert curve_steps(3, 6) == [1, 2, 3] and curve_steps(50, 0) == [50]
    train = write_disk_pairs(tmp_path / "train", 8)
    test = write_disk_pairs(tmp_path / "test", 4, seed=1)
    with_curve = train_and_evaluate(train, test, tiny_downstream_config(steps=12, curve_points=4))
    plain = train_and_evaluate(train, test, tiny_downstream_config(steps=12, curve_points=0))
    assert [p["step"] for p in with_curve.curve] == [3, 6, 9, 12]
    assert plain.curve == []
    # scoring during training is inference only: the final model is the same
    assert with_curve.metrics == plain.metrics and with_curve.per_image == plain.per_image
    assert with_curve.curve[-1]["iou"] == pytest.approx(with_curve.metrics["iou"])
    assert all(np.isfinite(p["loss"]) for p in with_curve.curve)
    # per-image counts: one row per test image, summing to the aggregate
    counts = np.array(plain.per_image)
    assert counts.shape == (4, 4) and (counts.sum(axis=1) == 32 * 32).all()
    assert scores_from_counts(counts.sum(axis=0))["iou"] == pytest.approx(plain.metrics["iou"])


def test_progress_counts_steps_and_images(tmp_path: Path, caplog, capsys) -> None:
    """--no-progress: one line for the training (steps, last epoch's loss, latest curve IoU) and
    one for the test scoring (images, the aggregate IoU); none for the learning-curve scoring.
    With a bar: the units are step and img, not 'it'."""
    import logging

    from sam2elnet.utils.progress import LOGGER_NAME

    train = write_disk_pairs(tmp_path / "train", 8)
    test = write_disk_pairs(tmp_path / "test", 3, seed=1)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        res = train_and_evaluate(train, test, tiny_downstream_config(steps=6, curve_points=3))
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(msgs) == 2, msgs
    train_line, test_line = msgs
    assert train_line.startswith("downstream training (8 img): 6/6 steps in "), train_line
    loss = f"{res.history[-1]['loss']:.3f}"
    # the last curve point scored during training, with its step (not the final model's IoU)
    curve_iou = f"{res.curve[-2]['iou']:.3f} at step {res.curve[-2]['step']}"
    assert train_line.endswith(f"step/s), loss {loss}, test_IoU {curve_iou}"), train_line
    assert test_line.startswith("downstream test: 3/3 img in "), test_line
    assert test_line.endswith(f"img/s), IoU {res.metrics['iou']:.3f}"), test_line
    capsys.readouterr()
    train_and_evaluate(train, test, tiny_downstream_config(steps=2, progress=True))
    err = capsys.readouterr().err
    assert "/2 [" in err and "step/s]" in err and "/3 [" in err and "img/s]" in err, err
    assert "it/s" not in err, err


@pytest.mark.parametrize("flag", ["", "0"])
def test_channels_last_by_default_and_switchable(tmp_path: Path, monkeypatch, flag: str) -> None:
    """The downstream U-Net trains and predicts channels-last (oneDNN's faster layout,
    benchmarks/bench_downstream.py) unless SAM2ELNET_CHANNELS_LAST=0; both layouts learn the same
    task to the same scores up to float rounding."""
    import torch

    monkeypatch.setenv("SAM2ELNET_CHANNELS_LAST", flag)
    train = write_disk_pairs(tmp_path / "train", 8)
    test = write_disk_pairs(tmp_path / "test", 3, seed=1)
    model, _ = train_downstream(train, tiny_downstream_config(epochs=2))
    # (a weight with one input channel or a 1x1 kernel is contiguous in both layouts)
    convs = [
        m.weight
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1 and m.kernel_size != (1, 1)
    ]
    assert convs
    cl = [w.is_contiguous(memory_format=torch.channels_last) for w in convs]
    assert all(cl) if flag == "" else not any(cl)
    m = evaluate_downstream(model, test, tiny_downstream_config(epochs=2))
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 3 * 32 * 32
