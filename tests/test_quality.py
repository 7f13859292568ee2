"""Label quality evaluator: features, fitting, calibration, thresholds, plain-data state."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from sam2elnet.model.quality import (
    FEATURE_NAMES,
    QualityEvaluator,
    tta_views,
    uncertainty_features,
)


def test_tta_views_invert_exactly() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    views = tta_views(7)
    assert len(views) == 7 and len(tta_views(2)) == 2 and tta_views(0) == []
    for fwd, inv in views:
        y = fwd(x)
        assert not torch.equal(y, x)
        assert torch.equal(inv(y), x)


def test_features_confident_vs_uncertain() -> None:
    conf = torch.zeros(1, 32, 32)
    conf[:, 8:24, 8:24] = 1.0
    conf = conf * 0.98 + 0.01
    unsure = torch.full((1, 32, 32), 0.5)
    f = uncertainty_features(
        torch.cat([conf, unsure]), tta_probs=[torch.cat([conf, 1 - unsure.round()])]
    )
    assert f.shape == (2, len(FEATURE_NAMES))
    i = {n: k for k, n in enumerate(FEATURE_NAMES)}
    assert f[0, i["mean_entropy"]] < 0.2 < f[1, i["mean_entropy"]]
    assert f[0, i["uncertain_frac"]] == 0 and f[1, i["uncertain_frac"]] == 1
    assert f[0, i["tta_agreement"]] == pytest.approx(1.0)
    assert f[0, i["fg_frac"]] == pytest.approx(0.25)
    assert torch.all((f >= 0) & (f <= 1))


def test_features_honour_valid_and_coarse() -> None:
    p = torch.zeros(1, 16, 16)
    p[:, :, :8] = 0.9
    coarse = (p > 0.5).float()
    valid = torch.ones(1, 16, 16)
    valid[:, :, 8:] = 0
    f = uncertainty_features(p, valid=valid, coarse=coarse, has_coarse=torch.ones(1))
    i = {n: k for k, n in enumerate(FEATURE_NAMES)}
    assert f[0, i["fg_frac"]] == pytest.approx(1.0)  # every valid pixel is foreground
    assert f[0, i["valid_frac"]] == pytest.approx(0.5)
    assert f[0, i["has_coarse"]] == 1 and f[0, i["coarse_agreement"]] == pytest.approx(1.0)


def _synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    iou = rng.uniform(0, 1, n)
    feats = rng.uniform(0, 1, (n, len(FEATURE_NAMES)))
    feats[:, FEATURE_NAMES.index("mean_entropy")] = 1 - iou + rng.normal(0, 0.1, n)
    emb = rng.normal(size=(n, 16))
    return feats, emb, iou


def test_fit_ranks_and_calibrates() -> None:
    from scipy.stats import spearmanr

    feats, emb, iou = _synthetic(120)
    ev = QualityEvaluator(pca_dim=4).fit(feats, emb, iou, folds=5, seed=0)
    assert ev.fitted and ev.metrics["spearman_oof"] > 0.8
    tf, te, ti = _synthetic(60, seed=1)
    s = ev.score(tf, te)
    assert s.shape == (60,) and np.all((s >= 0) & (s <= 1))
    assert spearmanr(s, ti).statistic > 0.8
    # deterministic and fully plain-data serialisable
    state = ev.state_dict()
    json.dumps(state)
    ev2 = QualityEvaluator.from_state(json.loads(json.dumps(state)))
    np.testing.assert_allclose(ev2.score(tf, te), s)
    again = QualityEvaluator(pca_dim=4).fit(feats, emb, iou, folds=5, seed=0)
    np.testing.assert_allclose(again.score(tf, te), s)


def test_threshold_for_precision_picks_lowest_threshold() -> None:
    ev = QualityEvaluator(tau=0.7)
    ev.fitted = True
    ev.heldout_scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    ev.heldout_iou = [0.0, 0.9, 0.1, 0.8, 0.9, 0.2, 0.9, 0.95]
    c = ev.threshold_for_precision(0.75)
    # score >= 0.4 keeps [0.8, 0.9, 0.2, 0.9, 0.95]: 4/5 good = 0.8 ; >= 0.3 gives 4/6 < 0.75
    assert c.achievable and c.threshold == pytest.approx(0.4)
    assert c.precision == pytest.approx(0.8) and c.recall == pytest.approx(4 / 5)
    assert ev.threshold_for_precision(1.0).threshold == pytest.approx(0.7)
    ev.heldout_iou = [0.0] * 8
    c = ev.threshold_for_precision(0.5)
    assert not c.achievable and c.threshold > 0.8


def test_too_few_samples_fall_back_to_heuristic() -> None:
    feats, emb, iou = _synthetic(5)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ev = QualityEvaluator().fit(feats, emb, iou)
    assert not ev.fitted and any("heuristic" in str(x.message) for x in w)
    s = ev.score(feats, emb)
    assert np.all((s >= 0) & (s <= 1))


def test_incompatible_state_is_rejected() -> None:
    state = QualityEvaluator().state_dict()
    state["version"] = 999
    with pytest.raises(ValueError):
        QualityEvaluator.from_state(state)
    assert not QualityEvaluator.from_state(None).fitted


def test_small_heldout_sets_keep_the_ranking() -> None:
    """With few held-out samples the calibration stays strictly monotone (no pooled ties), so the
    filter can still rank labels; with many it is isotonic."""
    from sam2elnet.model.quality import FEATURE_NAMES, ISOTONIC_MIN_SAMPLES, QualityEvaluator

    rng = np.random.default_rng(0)
    for n in (10, ISOTONIC_MIN_SAMPLES + 10):
        feats = rng.random((n, len(FEATURE_NAMES)))
        iou = np.clip(0.6 * feats[:, 0] + 0.2 * rng.random(n), 0, 1)
        ev = QualityEvaluator().fit(feats, None, iou)
        assert ev.fitted
        scores = ev.score(feats)
        if n < ISOTONIC_MIN_SAMPLES:
            assert ev.linear and not ev.iso_x
            assert len(np.unique(np.round(scores, 9))) == n  # no ties
        else:
            assert ev.iso_x and not ev.linear
        restored = QualityEvaluator.from_state(ev.state_dict())
        assert np.allclose(restored.score(feats), scores)
