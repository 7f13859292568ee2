"""Empty labels (no object pixel) are scored by the held-out rate of right empty labels of their
kind, not by the ridge head's extrapolation (model/quality_empty.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sam2elnet.model.quality import QualityEvaluator
from sam2elnet.model.quality_empty import (
    count_empty,
    empty_kinds,
    empty_scores,
    rate_estimate,
)
from sam2elnet.model.quality_features import FEATURE_NAMES, uncertainty_features

COL = {n: k for k, n in enumerate(FEATURE_NAMES)}


def test_rate_estimate_is_laplace_mean_minus_one_sd() -> None:
    # no evidence: m = 1/2, sd = sqrt(1/4 / 3)
    assert rate_estimate(0, 0) == pytest.approx(0.5 - math.sqrt(0.25 / 3))
    m = 11 / 12  # 10 of 10 right
    assert rate_estimate(10, 10) == pytest.approx(m - math.sqrt(m * (1 - m) / 13))
    m = 1 / 12  # 0 of 10 right
    assert rate_estimate(10, 0) == pytest.approx(m - math.sqrt(m * (1 - m) / 13))
    assert rate_estimate(10, 0) < 0.01
    assert rate_estimate(200, 190) > rate_estimate(20, 19) > rate_estimate(2, 2) > 0.5


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 500), st.data())
def test_rate_estimate_stays_in_range_and_grows_with_right(n: int, data: st.DataObject) -> None:
    right = data.draw(st.integers(0, n))
    r = rate_estimate(n, right)
    assert 0.0 <= r <= (right + 1) / (n + 2)
    if right < n:
        assert rate_estimate(n, right + 1) > r


def test_kinds_from_real_features() -> None:
    """The kinds come from features computed the way inference computes them."""
    empty = torch.full((1, 16, 16), 0.1)
    full = torch.full((1, 16, 16), 0.1)
    full[:, 4:12, 4:12] = 0.9
    probs = torch.cat([empty, empty, empty, full])
    coarse = torch.zeros(4, 16, 16)
    coarse[2, :8] = 1  # a non-empty coarse label the model erased
    has = torch.tensor([0.0, 1.0, 1.0, 1.0])
    f = uncertainty_features(probs, coarse=coarse, has_coarse=has).numpy()
    assert list(empty_kinds(f)) == ["annotate", "enhance_coarse_empty", "enhance_erased", ""]


def _samples(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-empty labels whose IoU follows the uncertainty, plus empty labels: 12 held-out
    enhancements with an empty coarse label (11 right), 10 held-out empty annotations (all
    wrong: the model missed the object) and 6 in-sample empty annotations (all right)."""
    rng = np.random.default_rng(seed)
    n = 120
    f = rng.uniform(0.05, 0.95, (n, len(FEATURE_NAMES)))
    f[:, COL["has_coarse"]] = rng.integers(0, 2, n)
    iou = np.clip(1.0 - f[:, COL["mean_entropy"]] + rng.normal(0, 0.05, n), 0, 1)
    e = np.zeros((28, len(FEATURE_NAMES)))
    e[:, COL["mean_entropy"]] = rng.uniform(0.1, 0.5, 28)
    e[:, COL["uncertain_frac"]] = rng.uniform(0.1, 0.5, 28)
    e[:, [COL["tta_agreement"], COL["ds_agreement"], COL["valid_frac"]]] = 1.0
    e[:12, COL["has_coarse"]] = 1.0
    e[:12, COL["coarse_agreement"]] = 1.0  # both empty
    e_iou = np.r_[np.ones(11), 0.0, np.zeros(10), np.ones(6)]
    ins = np.r_[np.zeros(n), np.zeros(22), np.ones(6)]
    return np.vstack([f, e]), np.r_[iou, e_iou], ins


def test_empty_labels_get_the_held_out_rate_of_their_kind() -> None:
    feats, iou, ins = _samples()
    ev = QualityEvaluator().fit(feats, None, iou, in_sample=ins)
    # in-sample empty labels (optimistic: trained on) are not counted
    assert ev.empty_counts == {
        "annotate": [10.0, 0.0],
        "enhance_coarse_empty": [12.0, 11.0],
        "enhance_erased": [0.0, 0.0],
    }
    new = feats[[120, 132]]  # an empty enhancement of an empty coarse label, an empty annotation
    scores, flags = ev.assess(new)
    assert scores[0] == pytest.approx(rate_estimate(12, 11))
    assert scores[1] == pytest.approx(rate_estimate(10, 0))
    assert flags == [
        "empty label: 11 of 12 held-out empty labels like it were right",
        "empty label: 0 of 10 held-out empty labels like it were right",
    ]
    erased = new[:1].copy()
    erased[0, COL["coarse_agreement"]] = 0.0
    s, fl = ev.assess(erased)
    assert s[0] == pytest.approx(rate_estimate(0, 0))
    assert fl == ["empty label: no held-out empty label like it when fitted (prior)"]


def test_non_empty_labels_score_as_before() -> None:
    """Only empty labels change: an evaluator without empty counts (a state from before
    version 3) scores the non-empty ones identically and extrapolates the head on empty ones."""
    feats, iou, ins = _samples()
    ev = QualityEvaluator().fit(feats, None, iou, in_sample=ins)
    old = QualityEvaluator.from_state({**ev.state_dict(), "empty_counts": {}})
    a, _ = ev.assess(feats[:120])
    b, fb = old.assess(feats[:120])
    np.testing.assert_array_equal(a, b)
    _, f_old = old.assess(feats[120:])
    assert not any(f.startswith("empty label") for f in f_old + fb)


def test_held_out_scores_of_empty_labels_leave_themselves_out() -> None:
    """The threshold rule chooses on honest scores: each held-out empty label's score comes from
    the other held-out empty labels of its kind."""
    feats, iou, ins = _samples()
    ev = QualityEvaluator().fit(feats, None, iou, in_sample=ins)
    held = np.asarray(ev.heldout_scores)
    assert len(held) == 142  # the 6 in-sample rows are not held out
    assert held[120] == pytest.approx(rate_estimate(11, 10))  # a right one: 10 of the other 11
    assert held[131] == pytest.approx(rate_estimate(11, 11))  # the wrong one: 11 of 11
    assert held[132] == pytest.approx(rate_estimate(9, 0))


def test_empty_label_on_an_odd_image_is_still_out_of_distribution() -> None:
    """Object features are not checked on an empty label, the others are: an empty label whose
    image is far more uncertain than anything seen at fit time is damped to 0."""
    feats, iou, ins = _samples()
    ev = QualityEvaluator().fit(feats, None, iou, in_sample=ins)
    odd = feats[[120]].copy()
    odd[0, COL["ds_soft_diff"]] = 5.0
    s, fl = ev.assess(odd)
    assert s[0] == 0.0 and fl == ["out of distribution"]


def test_empty_counts_survive_the_model_file_state() -> None:
    feats, iou, ins = _samples()
    ev = QualityEvaluator().fit(feats, None, iou, in_sample=ins)
    back = QualityEvaluator.from_state(ev.state_dict())
    assert back.empty_counts == ev.empty_counts
    np.testing.assert_array_equal(back.score(feats[120:]), ev.score(feats[120:]))


def test_count_and_score_helpers_agree() -> None:
    feats, iou, _ = _samples()
    counts = count_empty(feats[120:], iou[120:])
    assert counts["annotate"] == [16.0, 6.0]
    kinds = empty_kinds(feats)
    sc = empty_scores(kinds, counts)
    assert np.isnan(sc[:120]).all() and sc[125] == pytest.approx(rate_estimate(12, 11))
