"""The model at inference: Predictor batching, model files, keep thresholds (--min-quality /
--target-precision), refitting the quality evaluator, the coarse rule on probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_logs import logs_warning

from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import CheckpointError, DataError, UserError
from sam2elnet.model.quality_features import FEATURE_NAMES


def test_predict_mixed_sizes_and_batching(pred: Predictor) -> None:
    rng = np.random.default_rng(0)
    imgs = [
        rng.random((3, 40, 40), dtype=np.float32),
        rng.random((3, 24, 56), dtype=np.float32),
        rng.random((3, 40, 40), dtype=np.float32),
    ]
    probs, q = pred.predict(imgs)
    assert [p.shape for p in probs] == [(40, 40), (24, 56), (40, 40)]
    assert q.predicted_iou.shape == (3,) and np.all((q.predicted_iou >= 0) & (q.predicted_iou <= 1))
    assert q.features.shape == (3, len(FEATURE_NAMES))
    alone, _ = pred.predict([imgs[2]])
    np.testing.assert_allclose(alone[0], probs[2], atol=1e-4)  # batching does not change results
    arr = pred.predict_arrays(np.stack([imgs[0], imgs[2]]))
    assert arr.shape == (2, 40, 40) and arr.dtype == np.float32
    enh = pred.predict_arrays(np.stack([imgs[0]]), coarse=np.ones((1, 40, 40)))
    assert enh.shape == (1, 40, 40) and not np.allclose(enh[0], arr[0])
    # enhancement through predict() accepts (H,W) and (1,H,W) coarse masks alike
    p2, q2 = pred.predict([imgs[0], imgs[0]], coarse=[np.ones((40, 40)), np.ones((1, 40, 40))])
    np.testing.assert_allclose(p2[0], p2[1], atol=1e-5)
    assert q2.features[0, FEATURE_NAMES.index("has_coarse")] == 1
    assert pred.normalization.method in ("fixed", "percentile", "stats")
    with pytest.raises(DataError):
        pred.predict_arrays(np.zeros((1, 2, 32, 32), np.float32))


def test_bad_model_files(run: dict[str, Path], tmp_path: Path) -> None:
    data = run["model"].read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        Predictor.from_file(tmp_path / "trunc.pt")
    obj = torch.load(run["model"], weights_only=True)
    obj["format_version"] = 99
    torch.save(obj, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer"):
        Predictor.from_file(tmp_path / "future.pt")
    obj["format_version"] = 1
    obj["extra"]["quality"]["version"] = 42
    torch.save(obj, tmp_path / "oldq.pt")
    with pytest.raises(CheckpointError, match="quality evaluator"):
        Predictor.from_file(tmp_path / "oldq.pt")
    with pytest.raises(CheckpointError):
        Predictor.from_file(tmp_path / "missing.pt")


def test_unfitted_evaluator_refuses_target_precision(run: dict[str, Path], tmp_path: Path) -> None:
    obj = torch.load(run["model"], weights_only=True)
    obj["extra"]["quality"] = {}
    torch.save(obj, tmp_path / "nq.pt")
    p = Predictor.from_file(tmp_path / "nq.pt")
    with pytest.raises(UserError, match="not fitted"):
        p.choose_threshold(target_precision=0.9)
    assert p.choose_threshold(min_quality=0.3)[0] == 0.3


def test_target_precision_on_few_labels_warns(
    run: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    p = Predictor.from_file(run["model"])
    ev = p.evaluator
    ev.fitted, ev.tau = True, 0.7
    ev.heldout_scores = [0.2, 0.4, 0.6, 0.8, 0.9]
    ev.heldout_iou = [0.1, 0.3, 0.8, 0.9, 0.95]
    ev.metrics = {**ev.metrics, "threshold_on_in_sample": 0.0}  # these 5 are held out
    with logs_warning(caplog, "rests on 3 held-out labels above it; about 100 are needed"):
        thr, info = p.choose_threshold(target_precision=0.9)
    assert thr == pytest.approx(0.6) and info["target_precision"]["reliable"] is False
    # held-out labels above the threshold, not named like the summary's top-level n_kept (images)
    assert info["target_precision"]["n_held_out_above"] == 3
    assert "n_kept" not in info["target_precision"]


def test_unreachable_target_precision_says_what_is_kept(
    run: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """No threshold reaches the target: the threshold sits just above every held-out score, so new
    labels scoring higher are still kept; the warning says so (it said every label is rejected)."""
    p = Predictor.from_file(run["model"])
    ev = p.evaluator
    ev.fitted, ev.tau = True, 0.7
    ev.heldout_scores = [0.2, 0.4, 0.6, 0.8, 0.9]
    ev.heldout_iou = [0.1, 0.9, 0.2, 0.9, 0.3]  # the best-scored label is bad: never 0.99
    ev.metrics = {**ev.metrics, "threshold_on_in_sample": 0.0}
    with logs_warning(
        caplog,
        r"only labels scoring above every held-out label "
        r"\(quality >= 0\.900\) will be kept, with no promised precision",
    ):
        thr, info = p.choose_threshold(target_precision=0.99)
    assert thr == pytest.approx(0.900001) and info["target_precision"]["achievable"] is False


def test_fit_quality_is_rerunnable(
    run: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sam2elnet.engine.quality_fit import fit_quality
    from sam2elnet.model import load_model

    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("model.pt", "splits.json"):
        (copy / name).write_bytes((run["run"] / name).read_bytes())
    summary = fit_quality(copy / "model.pt", run["data"])
    # 4 validation + 4 training images (splits.json), both modes
    assert (summary["n"], summary["n_heldout"], summary["n_in_sample"]) == (16, 8, 8)
    assert summary["fitted"]
    _, extra = load_model(copy / "model.pt")
    assert extra["quality_summary"]["n"] == 16 and extra["quality"]["fitted"]
    # validation images only: 8 samples are too few -> not fitted, said so in the file
    from sam2elnet.config import QualityConfig

    with logs_warning(caplog, "only 8 labelled samples"):
        summary = fit_quality(copy / "model.pt", run["data"], qcfg=QualityConfig(train_samples=0))
    assert not summary["fitted"] and summary["status"] == "too_few_samples"
    _, extra = load_model(copy / "model.pt")
    assert extra["quality"]["status"] == "too_few_samples" and extra["quality"]["warning"]


def test_coarse_rule_restricts_probabilities_and_features(pred: Predictor) -> None:
    """predict(rule=...) = the unrestricted map times the rule's support found on it; the
    evaluator's features see the restricted map (an empty coarse label: no foreground)."""
    from sam2elnet.engine.coarse_rule import CoarseRule

    rng = np.random.default_rng(3)
    img = rng.random((3, 40, 40), dtype=np.float32)
    corner = np.zeros((40, 40), np.float32)
    corner[:6, :6] = 1
    empty = np.zeros((40, 40), np.float32)
    free, _ = pred.predict([img, img], coarse=[corner, empty])
    for rule in (CoarseRule("drop"), CoarseRule("keep", max_growth_px=3)):
        got, q = pred.predict([img, img], coarse=[corner, empty], rule=rule)
        for p, f, c in zip(got, free, (corner, empty), strict=True):
            np.testing.assert_allclose(p, f * rule.support(f, c), atol=1e-5)
        assert not (got[1] > 0.5).any()  # an empty coarse label stays empty
        assert q.features[1, FEATURE_NAMES.index("fg_frac")] == 0
    same, _ = pred.predict([img], coarse=[corner], rule=CoarseRule("keep"))
    np.testing.assert_allclose(same[0], free[0], atol=1e-5)
