"""Bootstrap intervals, per-sensor groups, the verdict and the frozen experiment identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam2elnet.engine.metrics import (
    bootstrap_iou_ci,
    bootstrap_iou_interval,
    bootstrap_ratio_ci,
    bootstrap_ratio_interval,
)
from sam2elnet.pipeline.experiment import (
    ExperimentConfig,
    Split,
    add_intervals,
    group_of,
    verdict_lines,
)
from sam2elnet.pipeline.experiment_stats import ci_text


def _counts(n: int, iou: float, spread: float, seed: int) -> np.ndarray:
    """n images of 1000 union pixels each; per-image IoU around ``iou`` +- ``spread``."""
    rng = np.random.default_rng(seed)
    per = np.clip(iou + rng.uniform(-spread, spread, n), 0, 1)
    tp = np.round(per * 1000).astype(np.int64)
    fp = (1000 - tp) // 2
    fn = 1000 - tp - fp
    return np.stack([tp, fp, fn, np.full(n, 5000)], axis=1)


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_images() -> None:
    small, large = _counts(20, 0.7, 0.3, 1), _counts(500, 0.7, 0.3, 2)
    widths = []
    for c in (small, large):
        tp, fp, fn = c[:, :3].sum(axis=0)
        point = tp / (tp + fp + fn)
        lo, hi = bootstrap_iou_ci(c)
        assert lo < point < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n): 5x narrower expected
    # more spread between images -> wider interval; no spread -> zero width
    assert bootstrap_iou_ci(_counts(100, 0.7, 0.3, 3))[1] - bootstrap_iou_ci(
        _counts(100, 0.7, 0.3, 3)
    )[0] > np.ptp(bootstrap_iou_ci(_counts(100, 0.7, 0.05, 3)))
    lo, hi = bootstrap_iou_ci(_counts(50, 0.6, 0.0, 4))
    assert lo == pytest.approx(0.6) and hi == pytest.approx(0.6)
    # reproducible (fixed seed), None for a single image, bad shapes refused
    assert bootstrap_iou_ci(small) == bootstrap_iou_ci(small)
    assert bootstrap_iou_ci(small[:1]) is None
    with pytest.raises(ValueError, match="shape"):
        bootstrap_iou_ci(np.zeros((5, 3)))


def test_paired_ratio_ci_is_exact_for_identical_models() -> None:
    a = _counts(200, 0.7, 0.3, 5)
    assert bootstrap_ratio_ci(a, a) == pytest.approx((1.0, 1.0))
    b = a.copy()
    b[:, 0] = (b[:, 0] * 0.9).astype(np.int64)  # model b finds 10 % fewer oil pixels everywhere
    b[:, 2] += a[:, 0] - b[:, 0]
    lo, hi = bootstrap_ratio_ci(b, a)
    iou = [x[:, 0].sum() / x[:, :3].sum() for x in (b, a)]
    point = iou[0] / iou[1]
    assert point == pytest.approx(0.9, abs=0.005)
    assert lo <= point <= hi and hi - lo < 0.02  # paired: the shared test-set luck cancels
    lo_a, hi_a = bootstrap_iou_ci(a)  # unpaired, the IoU itself varies far more
    assert (hi_a - lo_a) / iou[1] > 2 * (hi - lo)


EMPTY = [0, 0, 0, 1000]  # an image whose truth and label are both empty (union 0)


def test_bootstrap_leaves_out_resamples_without_foreground() -> None:
    """A resample of only empty images has no IoU (0/0): it is left out and counted, not scored 1
    (which put the upper end at exactly 1.000); too many of them leave no interval at all."""
    fg = [[60, 20, 20, 900], [70, 15, 15, 900], [80, 10, 10, 900]]  # per-image IoU 0.6 / 0.7 / 0.8
    # 3 of 5 images empty: 0.6^5 = 7.8 % of resamples are all-empty, over the 2.5 % tail
    iv = bootstrap_iou_interval([EMPTY] * 3 + fg[:2])
    assert iv.left_out == 158 and iv.resamples == 2000  # fixed seed: reproducible count
    assert not iv.defined and iv.low is None and iv.as_tuple() is None  # was (0.6, 1.0)
    assert bootstrap_iou_ci([EMPTY] * 3 + fg[:2]) is None
    # 2 of 5 empty: 0.4^5 = 1 % left out; the rest give the interval, below 1
    iv = bootstrap_iou_interval([EMPTY] * 2 + fg)
    assert iv.left_out == 19 and iv.as_tuple() == pytest.approx((0.6, 0.8))
    # the point estimate keeps its convention: an all-empty set scores 1 (module rules)
    from sam2elnet.engine.downstream import scores_from_counts

    assert scores_from_counts(np.sum([EMPTY] * 3, axis=0))["iou"] == 1.0
    # the paired ratio leaves out resamples on which either IoU is undefined
    rv = bootstrap_ratio_interval([EMPTY] * 2 + fg, [EMPTY] * 2 + fg)
    assert rv.left_out == 19 and rv.as_tuple() == pytest.approx((1.0, 1.0))


def test_bootstrap_unchanged_where_no_resample_is_undefined() -> None:
    """Fixed counts without empty images: the intervals are exactly those of the code before
    resamples were left out (scipy's own percentile interval, same seed), nothing left out."""
    a, b = _counts(12, 0.6, 0.3, 11), _counts(12, 0.7, 0.2, 12)
    assert bootstrap_iou_ci(a) == (0.4435, 0.6542520833333334)
    assert bootstrap_ratio_ci(a, b) == (0.6753878109504571, 0.9690976831362661)
    assert bootstrap_iou_interval(a).left_out == 0 == bootstrap_ratio_interval(a, b).left_out
    row: dict = {}
    add_intervals(row, a, [str(k) for k in range(12)], dict.fromkeys(map(str, range(12)), "all"))
    assert row["iou_ci"] == [0.4435, 0.6542520833333334] and "iou_ci_left_out" not in row
    assert ci_text(row) == "[0.444, 0.654]"


def test_intervals_say_when_resamples_were_left_out() -> None:
    fg = [[60, 20, 20, 900], [70, 15, 15, 900], [80, 10, 10, 900]]
    ids = [str(k) for k in range(5)]
    row: dict = {}
    add_intervals(row, [EMPTY] * 2 + fg, ids, dict.fromkeys(ids, "sentinel"))
    assert row["iou_ci_left_out"] == 19 == row["by_group"]["sentinel"]["iou_ci_left_out"]
    assert ci_text(row) == "[0.600, 0.800] (19 resamples without foreground left out)"
    add_intervals(row, [EMPTY] * 3 + fg[:2], ids, dict.fromkeys(ids, "sentinel"))
    assert row["iou_ci"] is None and row["iou_ci_left_out"] == 158
    assert ci_text(row) == "(no CI: 158 resamples without foreground)"
    assert ci_text({"iou_ci": None}) == ""
    from sam2elnet.pipeline.experiment_markdown import _iou_ci

    assert _iou_ci({**row, "iou": 0.69}) == "0.690 (no CI: 158 resamples without foreground)"
    # the verdict's paired ratio says so too
    c = np.array([EMPTY] * 2 + fg)
    table = [
        {"setting": k, "iou": 0.7, "hand_labels": h, "skipped": None}
        for k, h in (("full", 10), ("auto_filtered", 3), ("fraction_auto_filtered", 3))
    ]
    lines = verdict_lines(table, {"full": c, "auto_filtered": c, "fraction_auto_filtered": c})
    assert (
        "; left out: (a) has IoU 0, or no image has foreground, on 19 of the 2000 resamples of "
        "the 5 test images)" in lines[0]
    )
    lines = verdict_lines(table, dict.fromkeys(("full", "auto_filtered", "fraction_auto_filtered"),
                                               np.array([EMPTY] * 3 + fg[:2])))  # fmt: skip
    assert (
        "(no bootstrap interval of the ratio: (a) has IoU 0, or no image has foreground, on 158 "
        in lines[0]
    )


def test_groups_by_sensor_and_intervals_per_group() -> None:
    split = Split(
        modality="sar",
        layout="sos",
        labelled=[],
        unlabelled=[],
        test=["1", "2", "3", "4"],
        images={
            "1": "d/train/palsar/1_sat.jpg",
            "2": "d/train/palsar/2_sat.jpg",
            "3": "d/train/sentinel/3_sat.jpg",
            "4": "d/train/sentinel/4_sat.jpg",
        },
        masks={},
        own={},
        own_is_truth=True,
        test_source="x",
    )
    groups = group_of(split, split.test)
    assert groups == {"1": "palsar", "2": "palsar", "3": "sentinel", "4": "sentinel"}
    row: dict = {}
    counts = [[10, 0, 0, 90], [10, 10, 0, 80], [0, 0, 20, 80], [5, 0, 5, 90]]
    add_intervals(row, counts, split.test, groups)
    assert row["by_group"]["palsar"]["n"] == 2
    assert row["by_group"]["palsar"]["iou"] == pytest.approx(20 / 30)
    assert row["by_group"]["sentinel"]["iou"] == pytest.approx(5 / 30)
    assert row["by_group"]["sentinel"]["miou"] == pytest.approx(0.5 * (5 / 30 + 170 / 195))
    generic = Split(**{**split.__dict__, "layout": "generic"})
    assert set(group_of(generic, split.test).values()) == {"all"}


def test_verdict_states_ratio_interval_and_saving() -> None:
    a = _counts(300, 0.70, 0.2, 6)
    d = a.copy()
    d[:, 0] = (d[:, 0] * 0.99).astype(np.int64)
    d[:, 2] += a[:, 0] - d[:, 0]
    c = a.copy()
    c[:, 0] = (c[:, 0] * 0.8).astype(np.int64)
    c[:, 2] += a[:, 0] - c[:, 0]

    def row(key: str, cnt: np.ndarray, hand: int) -> dict:
        tp, fp, fn = cnt[:, :3].sum(axis=0)
        r = {"setting": key, "iou": tp / (tp + fp + fn), "hand_labels": hand, "skipped": None}
        r["iou_ci"] = list(bootstrap_iou_ci(cnt))
        return r

    table = [
        row("full", a, 1600),
        row("auto_filtered", c, 480),
        row("fraction_auto_filtered", d, 480),
    ]
    lines = verdict_lines(table, {"full": a, "auto_filtered": c, "fraction_auto_filtered": d})
    assert "(c) filtered auto-labels only does not reach 97%" in lines[0]
    assert "whole interval is below 97%" in lines[0]
    assert "(d) fraction + filtered auto-labels reaches 97%" in lines[1]
    assert "whole interval is above 97%" in lines[1] and "CIs overlap" in lines[1]
    assert "480 hand labels instead of 1600 (70.0 % fewer)" in lines[1]


def test_an_undecided_verdict_does_not_decide_in_its_headline() -> None:
    """A ratio interval that contains 97 %: the headline said "does not reach 97%" and the
    bracket "the data cannot decide" (a user trial read it as a contradiction)."""
    a = _counts(12, 0.70, 0.3, 6)  # few, spread images: a wide interval
    c = _counts(12, 0.62, 0.3, 7)

    def row(key: str, cnt: np.ndarray) -> dict:
        tp, fp, fn = cnt[:, :3].sum(axis=0)
        return {"setting": key, "iou": tp / (tp + fp + fn), "hand_labels": 9, "skipped": None}

    lines = verdict_lines(
        [row("full", a), row("auto_filtered", c)], {"full": a, "auto_filtered": c}
    )
    ratio = row("auto_filtered", c)["iou"] / row("full", a)["iou"]
    assert ratio < 0.97  # the point estimate alone would say "does not reach"
    assert lines[0].startswith(
        "(c) filtered auto-labels only is not shown to reach or to miss 97% of (a): IoU "
    )
    assert "the interval contains 97%, so the data cannot decide" in lines[0]
    assert "does not reach" not in lines[0]


def test_experiment_identity_is_frozen() -> None:
    """Runs started by earlier versions must resume: the identity (experiment.json) keys may not
    change when options are added (new options belong to RUNTIME / DOWNSTREAM or need a migration)."""
    ident = ExperimentConfig(data=Path("."), out=Path("o")).identity()
    assert sorted(ident) == sorted(
        [
            "data", "fraction", "epochs", "image_size", "batch_size", "max_train", "max_test",
            "test_fraction", "size", "weights", "trunk", "seed", "split_seed", "min_quality",
            "target_precision", "coarse_profile", "coarse_severity", "refiners", "enhancement",
            "sources", "precision",
            # added with a migration (upgrade_identity: missing = 0 / None, the old behaviour)
            "quality_folds", "quality_fold_epochs", "positive_values", "trunk_scale",
            "road_buffer",  # missing = 3 px, the buffer every run used before --road-buffer
            "road_buffer_m",  # missing = None (pixels), as every run before --road-buffer-m
            "modality",  # missing = auto, decided in the split stage as before --modality
        ]
    )  # fmt: skip


def test_identity_of_runs_before_split_seed_is_upgraded() -> None:
    """experiment.json of a run made before --split-seed: its hold-out used seed + 1000, so a
    seed-0 run resumes under the default --split-seed 1000 and a seed-3 run has split_seed 1003."""
    from sam2elnet.pipeline.experiment_config import upgrade_identity

    cur = ExperimentConfig(data=Path("."), out=Path("o")).identity()
    old = {k: v for k, v in cur.items() if k != "split_seed"}
    assert upgrade_identity(dict(old)) == cur
    assert upgrade_identity({**old, "seed": 3})["split_seed"] == 1003
    assert upgrade_identity({**cur, "split_seed": 7})["split_seed"] == 7
    # before --positive-values: masks were read by the default rule (the option not given)
    assert upgrade_identity({k: v for k, v in cur.items() if k != "positive_values"}) == cur
    assert upgrade_identity({**cur, "positive_values": [2.0]})["positive_values"] == [2.0]
    # before --trunk-scale: auto (None); the scale built is read from the model file
    assert upgrade_identity({k: v for k, v in cur.items() if k != "trunk_scale"}) == cur
    assert upgrade_identity({**cur, "trunk_scale": 1})["trunk_scale"] == 1
    # before --road-buffer: road measures within 3 px (the default)
    assert upgrade_identity({k: v for k, v in cur.items() if k != "road_buffer"}) == cur
    assert upgrade_identity({**cur, "road_buffer": 5.0})["road_buffer"] == 5.0
    # before --modality: auto (decided from the layout, dataset.json or the images)
    assert upgrade_identity({k: v for k, v in cur.items() if k != "modality"}) == cur
    assert upgrade_identity({**cur, "modality": "sar"})["modality"] == "sar"


def test_convergence_status_from_the_last_two_curve_points() -> None:
    from sam2elnet.pipeline.experiment import convergence

    assert convergence([{"step": 1, "iou": 0.5}, {"step": 2, "iou": 0.505}]) == (
        pytest.approx(0.005),
        "converged",
    )
    assert convergence([{"step": 1, "iou": 0.5}, {"step": 2, "iou": 0.55}])[1] == "still rising"
    assert convergence([{"step": 1, "iou": 0.5}, {"step": 2, "iou": 0.4}])[1] == "falling"
    assert convergence([{"step": 2, "iou": 0.4}]) == (None, "no curve")


def test_an_undefined_ratio_interval_is_a_note_not_a_raw_warning() -> None:
    """Three test images, (a) finds no oil on two: some resamples give (a) IoU 0, the ratio is
    undefined there and scipy warned "The BCa confidence interval cannot be calculated" (raw, with
    its source line, for the percentile method too). Now: no warning, no interval, and the verdict
    says why."""
    import warnings

    a = np.array([[12, 3, 3, 80], [0, 5, 2, 90], [0, 4, 6, 90]])  # (a): IoU 0 on images 2 and 3
    c = np.array([[10, 5, 5, 80], [0, 3, 4, 90], [8, 2, 2, 88]])
    table = [
        {"setting": k, "iou": cnt[:, 0].sum() / cnt[:, :3].sum(), "hand_labels": h, "skipped": None}
        for k, cnt, h in (("full", a, 3), ("auto_filtered", c, 1), ("fraction_auto_filtered", c, 1))
    ]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert bootstrap_ratio_ci(c, a) is None
        lines = verdict_lines(table, {"full": a, "auto_filtered": c, "fraction_auto_filtered": c})
    assert [str(w.message) for w in seen] == []
    assert (
        "(no bootstrap interval of the ratio: (a) has IoU 0, or no image has foreground, on 599 "
        "of the 2000 resamples of the 3 test images)" in lines[0]
    )
    assert "paired bootstrap" not in lines[0]


def test_auto_label_sentence_names_the_median_fallback_not_the_unused_threshold() -> None:
    """When the filter rule kept nothing, the sentence says which threshold was applied instead."""
    from sam2elnet.pipeline.experiment_markdown import filter_words

    rule = "target precision 0.90 of 'IoU >= 0.70' on held-out labels -> threshold 0.770"
    assert filter_words({"threshold_rule": rule, "fallback": None, "threshold": 0.77}) == rule
    fb = (
        f"the filter ({rule}) kept no label; fell back to keeping labels with predicted "
        "quality > the median (0.397)"
    )
    words = filter_words({"threshold_rule": rule, "fallback": fb, "threshold": 0.3971})
    assert words == (
        f"{rule} kept none, so the labels above the median predicted quality (0.397) "
        "were kept instead"
    )
    fb_ge = fb.replace("quality > the median", "quality >= the median")
    words = filter_words({"threshold_rule": rule, "fallback": fb_ge, "threshold": 0.4})
    assert "at or above the median predicted quality (0.400)" in words


def test_filter_decision_is_data_and_the_words_come_from_it() -> None:
    """The quality filter's decision is stored as data (rule, its threshold, the threshold
    applied, fallback yes/no, how kept labels compare); the sentence and the fallback note are
    made from it, and results stored before it carry the same decision in their words."""
    from sam2elnet.pipeline.experiment_autolabels import (
        fallback_text,
        filter_decision,
        filter_labels,
    )
    from sam2elnet.pipeline.experiment_markdown import filter_words

    rule = "target precision 0.90 of 'IoU >= 0.70' on held-out labels -> threshold 0.770"
    q = {"a": 0.8, "b": 0.5, "c": float("nan"), "d": 0.3}
    kept, d = filter_labels(q, 0.77, rule)
    assert kept == {"a": True, "b": False, "c": False, "d": False}
    assert d == {
        "rule": rule,
        "rule_threshold": 0.77,
        "threshold": 0.77,
        "fallback": False,
        "keep": ">=",
    }
    assert fallback_text(d) is None and filter_words({"filter": d}) == rule
    # the rule keeps none: quality > the median (0.5; the unscored label is left out of it)
    kept, d = filter_labels(q, 0.9, rule)
    assert kept == {"a": True, "b": False, "c": False, "d": False}
    assert d["fallback"] and d["keep"] == ">" and d["threshold"] == 0.5
    assert d["rule_threshold"] == 0.9
    assert filter_words({"filter": d}) == (
        f"{rule} kept none, so the labels above the median predicted quality (0.500) "
        "were kept instead"
    )
    # tied scores: > the median keeps none either, so >= the median
    kept, d2 = filter_labels({"a": 0.4, "b": 0.4}, 0.9, rule)
    assert kept == {"a": True, "b": True} and d2["keep"] == ">=" and d2["threshold"] == 0.4
    assert "at or above the median predicted quality (0.400)" in filter_words({"filter": d2})
    assert fallback_text(d2) == (
        f"the filter ({rule}) kept no label; fell back to keeping labels with predicted "
        "quality >= the median (0.400)"
    )
    # results made before the decision was stored: the same decision from their words
    for dec in (d, d2):
        old = {
            "threshold_rule": rule,
            "fallback": fallback_text(dec),
            "threshold": dec["threshold"],
        }
        assert filter_decision(old) == dec | {"rule_threshold": None}
        assert filter_words(old) == filter_words({**old, "filter": dec})


def test_verdict_gives_none_for_a_degenerate_model() -> None:
    """A trial on sos-dev (8 downstream steps): (a), (c) and (d) labelled every test pixel oil,
    all scored the test set's oil share 0.308, and the verdict read "(c) ... reaches 97% of (a):
    100.0 % ... the whole interval is above 97%" beside a warning that such scores say nothing.
    Now a comparison with a degenerate model says "no verdict" and why."""
    fg = np.array([[30, 70, 0, 0], [50, 50, 0, 0], [20, 80, 0, 0]])  # every pixel labelled oil
    fine = np.array([[25, 5, 5, 65], [40, 5, 10, 45], [15, 5, 5, 75]])
    table = [
        {"setting": "full", "iou": 0.333, "hand_labels": 30, "skipped": None},
        {"setting": "auto_filtered", "iou": 0.333, "hand_labels": 9, "skipped": None},
        {"setting": "fraction_auto_filtered", "iou": 0.70, "hand_labels": 9, "skipped": None},
    ]
    counts = {"full": fg, "auto_filtered": fg, "fraction_auto_filtered": fine}
    flags = {"full": "all foreground", "auto_filtered": "all foreground"}
    lines = verdict_lines(table, counts, degenerate={**flags, "fraction_auto_filtered": None})
    assert lines[0] == (
        "(c) filtered auto-labels only: no verdict: (a) is degenerate (all foreground) and (c) is "
        "degenerate (all foreground), so IoU 0.333 vs 0.333 (100.0 % of (a)) says nothing about "
        "the labels; train the downstream models longer (--downstream-epochs / "
        "--downstream-steps) or on more images. It uses 9 hand labels instead of 30 (70.0 % fewer)."
    )
    assert lines[1].startswith(
        "(d) fraction + filtered auto-labels: no verdict: (a) is degenerate (all foreground), so "
        "IoU 0.700 vs 0.333 (210.2 % of (a))"
    )
    assert not any("reaches" in line for line in lines)
    # no degenerate model: the verdict as before
    assert verdict_lines(table, counts, degenerate={})[1].startswith(
        "(d) fraction + filtered auto-labels reaches 97% of (a)"
    )


def test_road_note_names_the_runs_buffer() -> None:
    """results.md / report.html said "matched within 3 px" under the road tables of every run,
    also of one made with --road-buffer 5 (a trial on roads-dev); now the run's buffer."""
    from sam2elnet.pipeline.experiment_stats import road_note

    px5 = road_note({"settings": {"road_buffer": 5.0, "road_buffer_m": None}})
    assert "matched within 5 px (--road-buffer), lengths summed over the test images" in px5
    metres = {"settings": {"road_buffer": None, "road_buffer_m": 2.0}}
    assert "within 2 m = 4-8 px by image (--road-buffer-m)," in road_note(
        metres | {"road_buffer_px_range": [4.0, 8.0]}
    )
    assert "within 3 px (--road-buffer)," in road_note({})  # results without settings


def test_verdict_names_a_model_still_rising() -> None:
    """A trial on sos-dev: (a) rose +0.024 over its last 10 of 40 steps ("still rising" in the
    curve table) while the verdict said "(d) ... 96.1 % of (a)" as if final; now the line says
    which model was still rising and that more steps may change the ratio."""
    a = _counts(20, 0.5, 0.2, 3)
    curve = [{"step": 30, "iou": 0.448}, {"step": 40, "iou": 0.472}]
    flat = [{"step": 30, "iou": 0.442}, {"step": 40, "iou": 0.45}]
    table = [
        {"setting": "full", "iou": 0.472, "hand_labels": 60, "skipped": None, "curve": curve},
        {"setting": "auto_filtered", "iou": 0.45, "hand_labels": 18, "skipped": None,
         "curve": flat},
        {"setting": "fraction_auto_filtered", "iou": 0.45, "hand_labels": 18, "skipped": None,
         "curve": [{"step": 30, "iou": 0.40}, {"step": 40, "iou": 0.45}]},
    ]  # fmt: skip
    lines = verdict_lines(
        table, dict.fromkeys(("full", "auto_filtered", "fraction_auto_filtered"), a)
    )
    assert (
        "; (a) was still rising at its last learning-curve point (+0.024), so the ratio is at "
        "equal updates, not at convergence: more --downstream-steps may change it. It uses 18"
    ) in lines[0]
    assert (
        "(a) was still rising at its last learning-curve point (+0.024) and (d) was still "
        "rising at its last learning-curve point (+0.050)" in lines[1]
    )
    table[0]["curve"] = flat
    assert "still rising" not in verdict_lines(table, {"full": a, "auto_filtered": a})[0]
