"""Label quality evaluator: features, fitting, calibration, thresholds, plain-data state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers_logs import logs_warning
from hypothesis import given, settings
from hypothesis import strategies as st

from sam2elnet.model.quality import QualityEvaluator
from sam2elnet.model.quality_calibration import choose_threshold, min_kept_for
from sam2elnet.model.quality_features import FEATURE_NAMES, tta_views, uncertainty_features


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
    # 5 kept labels cannot promise a precision within 0.03: said, not hidden
    assert c.n_held_out_above == 5 and not c.reliable and "rests on 5 held-out labels" in c.note
    assert ev.threshold_for_precision(1.0).threshold == pytest.approx(0.7)
    ev.heldout_iou = [0.0] * 8
    c = ev.threshold_for_precision(0.5)
    assert not c.achievable and c.threshold > 0.8
    assert c.n_held_out_above == 0 and not c.reliable and "no threshold reaches" in c.note
    assert c.note == "no threshold reaches precision 0.5 on the 8 held-out labels" + NONE_GOOD


#: the reason added when no sample reaches tau 0.7 (no threshold can reach any precision)
NONE_GOOD = (
    ": none has a true IoU >= 0.7 (--tau, what makes a label good; lower it to an IoU good "
    "labels of these data reach, as for thin roads)"
)


def test_no_good_label_at_tau_is_the_reason_given() -> None:
    """Road labels of a young model (true IoU 0.2-0.45) never reach the default tau 0.7, so
    --target-precision could never be met; the note named only the precision and sample count,
    not that the IoU a label must reach (--tau) was the cause. With some good labels it says
    nothing more; with a lower tau a threshold is found."""
    ev = QualityEvaluator(tau=0.7)
    ev.fitted = True
    ev.heldout_scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    ev.heldout_iou = [0.2, 0.25, 0.3, 0.35, 0.4, 0.45]
    c = ev.threshold_for_precision(0.9)
    assert not c.achievable
    assert c.note == "no threshold reaches precision 0.9 on the 6 held-out labels" + NONE_GOOD
    ev.heldout_iou = [0.2, 0.25, 0.3, 0.35, 0.8, 0.2]  # one good label, never 90 % of the kept
    c = ev.threshold_for_precision(0.9)
    assert (
        not c.achievable and c.note == "no threshold reaches precision 0.9 on the 6 held-out labels"
    )
    ev.heldout_iou = [0.2, 0.25, 0.3, 0.35, 0.4, 0.45]
    c = ev.threshold_for_precision(0.9, tau=0.3)
    assert c.achievable and c.threshold == pytest.approx(0.3) and "--tau" not in c.note


def test_threshold_note_says_when_it_was_chosen_on_all_samples() -> None:
    """Too few held out: the threshold is chosen on every sample's out-of-fold score, and the
    note says so instead of calling them held out."""
    ev = QualityEvaluator(tau=0.7)
    ev.fitted = True
    ev.heldout_scores = [0.1, 0.2, 0.3, 0.4]
    ev.heldout_iou = [0.0, 0.1, 0.2, 0.3]
    ev.metrics = {"threshold_on_in_sample": 1.0, "n_heldout": 2.0}
    c = ev.threshold_for_precision(0.9)
    assert not c.achievable
    assert c.note == (
        "no threshold reaches precision 0.9 on the 4 labelled samples (out-of-fold scores; only "
        "2 held out, too few to choose on)" + NONE_GOOD
    )


def test_min_kept_for_is_the_binomial_sample_size() -> None:
    # sqrt(0.9 * 0.1 / k) <= 0.03  <=>  k >= 100; sqrt(0.8 * 0.2 / k) <= 0.03 <=> k >= 178
    assert min_kept_for(0.9) == 100
    assert min_kept_for(0.8) == 178
    assert min_kept_for(1.0) == 10 and min_kept_for(0.9, tolerance=0.1) == 10


@pytest.mark.parametrize(("n", "reliable"), [(3000, True), (60, False)])
def test_threshold_precision_on_a_known_relation(n: int, reliable: bool) -> None:
    """Scores uniform on [0, 1] with P(IoU >= tau | score s) = s: keeping s >= t has population
    precision (1 + t) / 2, so target 0.9 wants t = 0.8."""
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 1, n)
    iou = np.where(rng.uniform(0, 1, n) < s, 0.9, 0.3)
    c = choose_threshold(s, iou, 0.9, 0.7)
    assert c.achievable and c.reliable is reliable
    if reliable:  # enough labels above the threshold: the promise holds for the population
        assert c.n_held_out_above >= min_kept_for(0.9)
        assert abs((1 + c.threshold) / 2 - 0.9) <= 0.03
    else:
        assert c.n_held_out_above < min_kept_for(0.9) and "about 100 are needed" in c.note


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=40),
    st.floats(0.05, 1.0),
    st.floats(0.05, 1.0),
)
def test_higher_target_never_lowers_the_threshold(
    pairs: list[tuple[float, float]], a: float, b: float
) -> None:
    s, iou = (np.array(v) for v in zip(*pairs, strict=True))
    lo, hi = min(a, b), max(a, b)
    c_lo, c_hi = choose_threshold(s, iou, lo, 0.7), choose_threshold(s, iou, hi, 0.7)
    assert c_hi.threshold >= c_lo.threshold
    if c_hi.achievable:
        assert c_hi.precision >= hi and c_lo.achievable


def test_too_few_samples_fall_back_to_heuristic(caplog: pytest.LogCaptureFixture) -> None:
    feats, emb, iou = _synthetic(5)
    with logs_warning(caplog, "heuristic"):
        ev = QualityEvaluator().fit(feats, emb, iou)
    assert not ev.fitted
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
    from sam2elnet.model.quality import QualityEvaluator
    from sam2elnet.model.quality_calibration import ISOTONIC_MIN_SAMPLES, MIN_FIT_SAMPLES
    from sam2elnet.model.quality_features import FEATURE_NAMES

    rng = np.random.default_rng(0)
    for n in (MIN_FIT_SAMPLES + 5, ISOTONIC_MIN_SAMPLES + 10):
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


# ----------------------------------------------------------------- garbage never scores high
def _confident_features(n: int) -> np.ndarray:
    """Features of a model that is sure of itself (what an empty prediction looks like)."""
    f = np.zeros((n, len(FEATURE_NAMES)))
    for name, v in (("tta_agreement", 1.0), ("ds_agreement", 1.0), ("valid_frac", 1.0)):
        f[:, FEATURE_NAMES.index(name)] = v
    return f


def test_model_that_predicts_nothing_gets_zero_not_heuristic_confidence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10: a micro model predicting nothing got ~0.96 for every label from an evaluator
    fitted on 8 labels. Its labels have IoU 0 everywhere: uniform labels, conservative score 0."""
    from sam2elnet.model.quality_calibration import MIN_FIT_SAMPLES

    for n in (8, MIN_FIT_SAMPLES + 20):
        feats = _confident_features(n) + np.random.default_rng(n).normal(0, 1e-3, (n, 13))
        with logs_warning(caplog, "not fitted"):
            ev = QualityEvaluator().fit(feats, None, np.zeros(n))
        assert not ev.fitted
        assert ev.status == ("too_few_samples" if n < MIN_FIT_SAMPLES else "uniform_labels")
        assert ev.prior == 0.0
        assert np.all(ev.score(_confident_features(5)) == 0.0)
        state = ev.state_dict()
        assert state["status"] == ev.status and "not fitted" not in state["warning"]
        assert state["warning"] and QualityEvaluator.from_state(state).status == ev.status


def test_too_few_varied_labels_are_capped_at_a_lower_bound_of_their_mean(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feats, emb, iou = _synthetic(10)
    with logs_warning(caplog, "only 10 labelled samples"):
        ev = QualityEvaluator().fit(feats, emb, iou)
    se = iou.std(ddof=1) / np.sqrt(10)
    assert ev.prior == pytest.approx(iou.mean() - se)
    s = ev.score(_confident_features(4))
    assert np.all(s <= ev.prior + 1e-12) and np.all(s < 0.6)  # never "keep everything"


def test_no_samples_cap_is_conservative() -> None:
    ev = QualityEvaluator()
    assert ev.status == "no_samples" and not ev.fitted
    assert np.all(ev.score(_confident_features(3)) == pytest.approx(0.5))


def test_non_finite_features_or_embeddings_score_zero() -> None:
    feats, emb, iou = _synthetic(80)
    ev = QualityEvaluator(pca_dim=4).fit(feats, emb, iou)
    f, e = feats[:4].copy(), emb[:4].copy()
    f[0, 0] = np.nan
    f[1, 2] = np.inf
    e[2, 3] = np.nan
    scores, flags = ev.assess(f, e)
    assert list(scores[:3]) == [0.0, 0.0, 0.0] and scores[3] > 0
    assert flags[:3] == ["non-finite features"] * 3 and flags[3] in ("", "out of distribution")
    unfitted = QualityEvaluator()
    assert unfitted.score(f[:1])[0] == 0.0


def test_out_of_distribution_features_are_damped_to_zero() -> None:
    from sam2elnet.model.quality_calibration import OOD_MIN_SCALE, OOD_SPAN, OOD_TOLERANCE

    feats, emb, iou = _synthetic(120)
    ev = QualityEvaluator(pca_dim=4).fit(feats, emb, iou)
    assert ev.metrics["ood_rate_oof"] < 0.1  # in-distribution samples are rarely damped
    base = feats[:1].copy()
    s0, fl0 = ev.assess(base, emb[:1])
    assert fl0 == [""]
    j = FEATURE_NAMES.index("boundary_entropy")
    hi = ev.ood_hi[
        [
            n for n in FEATURE_NAMES if n not in ("has_coarse", "coarse_agreement", "valid_frac")
        ].index("boundary_entropy")
    ]
    scale = max(float(np.std(feats[:, j])), OOD_MIN_SCALE)
    for beyond, factor in ((0.5, 1.0), (OOD_TOLERANCE + OOD_SPAN / 2, 0.5), (10.0, 0.0)):
        f = base.copy()
        f[0, j] = hi + beyond * scale
        raw = np.clip(ev._calibrate(ev._raw(f, emb[:1])), 0, 1)
        s, flags = ev.assess(f, emb[:1])
        assert s[0] == pytest.approx(raw[0] * factor, abs=1e-9), beyond
        assert flags == (["out of distribution"] if factor < 1 else [""])
    # an embedding far from every fitted one
    s, flags = ev.assess(base, emb[:1] * 100)
    assert s[0] == 0.0 and flags == ["out of distribution"]
    # partly-nodata inputs are not "out of distribution"
    f = base.copy()
    f[0, FEATURE_NAMES.index("valid_frac")] = 0.2
    assert ev.assess(f, emb[:1])[1] == [""]


def test_input_flags_catch_nodata_nan_constant_and_empty_inputs() -> None:
    import torch

    from sam2elnet.model.quality_features import input_flags

    x = torch.rand(5, 2, 8, 8)
    valid = torch.ones(5, 8, 8)
    valid[0] = 0  # all nodata
    x[1] = float("nan")  # all NaN
    x[2] = 0.3  # constant
    x[3, :, :4] = float("nan")  # half NaN: still usable
    assert input_flags(x, valid) == ["all nodata", "all nodata", "constant image", "", ""]
    assert input_flags(torch.rand(2, 1, 0, 5)) == ["no pixels", "no pixels"]
    # constant within the valid pixels only (the rest is nodata fill) is still constant
    y = torch.rand(1, 1, 8, 8)
    y[0, 0, :4] = 0.5
    v = torch.zeros(1, 8, 8)
    v[0, :4] = 1
    assert input_flags(y, v) == ["constant image"]


def test_version_1_states_still_load() -> None:
    feats, emb, iou = _synthetic(60)
    ev = QualityEvaluator(pca_dim=4).fit(feats, emb, iou)
    state = ev.state_dict()
    for k in ("status", "warning", "prior", "ood_lo", "ood_hi", "ood_scale", "in_sample_coef"):
        state.pop(k)
    state["version"] = 1
    old = QualityEvaluator.from_state(state)
    assert old.fitted and old.status == "fitted" and not old.ood_lo
    np.testing.assert_allclose(
        old.score(feats[:5], emb[:5]),
        ev.score(feats[:5], emb[:5]) / ev.ood_factor(feats[:5], emb[:5]),
    )


# ----------------------------------------------------------------- cross-fitting with in-sample items
def test_in_sample_items_are_cross_fitted_grouped_and_their_optimism_absorbed() -> None:
    """Training-image predictions are optimistic (IoU + 0.2 for the same features): the ridge's
    in-sample indicator absorbs the offset, so new images are scored on the held-out relation, and
    thresholds are chosen on held-out items only."""
    rng = np.random.default_rng(0)
    n_val, n_tr = 60, 200
    feats, emb, iou = _synthetic(n_val + n_tr, seed=3)
    ins = np.r_[np.zeros(n_val), np.ones(n_tr)]
    y = np.clip(iou + 0.2 * ins, 0, 1)
    groups = np.r_[np.arange(n_val), n_val + np.arange(n_tr)] // 2  # two samples per image
    ev = QualityEvaluator(pca_dim=4).fit(feats, emb, y, in_sample=ins, groups=groups, seed=1)
    assert ev.fitted and ev.in_sample_coef == pytest.approx(0.2, abs=0.05)
    m = ev.metrics
    assert (m["n_heldout"], m["n_in_sample"]) == (n_val, n_tr)
    assert m["threshold_on_in_sample"] == 0.0 and len(ev.heldout_scores) == n_val
    assert m["mean_iou_in_sample"] - m["mean_iou_heldout"] > 0.1  # the bias, measured
    tf, te, ti = _synthetic(200, seed=9)
    s = ev.score(tf, te)
    assert abs(float(s.mean() - ti.mean())) < 0.08  # calibrated to out-of-sample IoU
    # groups: both samples of an image land in the same fold (changing one's group changes folds)
    alone = QualityEvaluator(pca_dim=4).fit(feats, emb, y, in_sample=ins, seed=1)
    assert not np.allclose(alone.oof_scores, ev.oof_scores)
    del rng


def test_an_evaluator_that_cannot_rank_says_so(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    feats, emb, iou = rng.random((100, len(FEATURE_NAMES))), None, rng.random(100)
    with logs_warning(caplog, "hardly rank"):
        ev = QualityEvaluator().fit(feats, emb, iou)
    assert ev.fitted and ev.status == "fitted" and "Spearman" in ev.warning
    s = ev.score(feats)
    assert abs(float(s.mean()) - float(iou.mean())) < 0.1 and float(s.max()) < 0.9


def test_the_weak_ranking_warning_never_rounds_up_to_its_limit(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An out-of-fold Spearman of 0.297 read "Spearman 0.30 < 0.3" (rounded up to the limit it
    fell below, seen training a micro roads model); now the shown value is rounded down."""
    from sam2elnet.model import quality_learning

    monkeypatch.setattr(quality_learning, "spearman", lambda a, b: 0.2996)
    rng = np.random.default_rng(5)
    feats, iou = rng.random((60, len(FEATURE_NAMES))), rng.random(60)
    with logs_warning(caplog, "hardly rank"):
        ev = QualityEvaluator().fit(feats, None, iou)
    assert ev.warning.startswith("out-of-fold Spearman 0.29 < 0.3:"), ev.warning


def test_an_unfitted_evaluator_chooses_its_threshold_on_the_held_out_labels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`elnet train` on 12 images (2 validation): 24 samples, 4 held out, uniform IoUs. The line
    said "no threshold reaches precision 0.9 on the 24 held-out labels"; the threshold is chosen
    on the 4 held-out labels and says so (all 24 only when none is held out)."""
    n, n_out = 24, 4
    feats = np.random.default_rng(0).random((n, len(FEATURE_NAMES)))
    iou = np.full(n, 0.3)
    ins = np.r_[np.zeros(n_out), np.ones(n - n_out)]
    with logs_warning(caplog, "almost the same IoU"):
        ev = QualityEvaluator().fit(feats, None, iou, in_sample=ins)
    assert not ev.fitted and ev.status == "uniform_labels"
    assert ev.metrics["n_heldout"] == 4
    choice = ev.threshold_for_precision(0.9)
    assert choice.n_heldout == 4 and not choice.achievable
    assert choice.note == "no threshold reaches precision 0.9 on the 4 held-out labels" + NONE_GOOD
    with logs_warning(caplog, "almost the same IoU"):
        ev = QualityEvaluator().fit(feats, None, iou, in_sample=np.ones(n))
    choice = ev.threshold_for_precision(0.9)
    assert choice.n_heldout == 24
    assert (
        choice.note
        == "no threshold reaches precision 0.9 on the 24 labelled samples (none held out, too few "
        "to choose on)" + NONE_GOOD
    )


def test_counts_of_one_sample_are_said_in_the_singular(caplog: pytest.LogCaptureFixture) -> None:
    """'rests on 1 labelled samples', 'only 1 labelled samples': one is said as one."""
    c = choose_threshold(np.array([0.2, 0.9]), np.array([0.1, 0.9]), 0.9, 0.5, "held-out labels")
    assert c.n_held_out_above == 1
    assert c.note.startswith("the threshold rests on 1 held-out label above it; about ")
    what = "labelled samples (none held out, too few to choose on)"
    c = choose_threshold(np.array([0.5]), np.array([0.1]), 0.9, 0.5, what)
    assert c.note.startswith(
        "no threshold reaches precision 0.9 on the 1 labelled sample (none held out, too few"
    )
    c = choose_threshold(np.array([0.2, 0.9]), np.array([0.1, 0.9]), 0.9, 0.5, what)
    assert "rests on 1 labelled sample (none held out" in c.note  # the rule before the brackets
    feats, emb, iou = _synthetic(1)
    with logs_warning(caplog, r"only 1 labelled sample \(need >= "):
        QualityEvaluator().fit(feats, emb, iou)
    from sam2elnet.engine.quality_fit import describe_summary

    line = describe_summary({"status": "too_few_samples", "n": 1, "n_heldout": 1})
    assert line.startswith("quality evaluator: too_few_samples on 1 labelled sample (1 held out, ")
