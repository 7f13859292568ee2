"""What ``elnet cv`` says about its folds: the quality evaluator not fitted (once for all folds,
naming them), each fold's closing line (test sets in the field's words, road quality per test
set) and why cv.md's quality Spearman is empty."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import pytest
from helpers_roads import make_road_dataset

from sam2elnet.pipeline.crossval import CVConfig, run_cv, unfitted_lines
from sam2elnet.pipeline.crossval_report import render_markdown

TRAIN = {"size": "micro", "epochs": 1, "image_size": 48, "batch_size": 2}


@pytest.fixture(scope="module")
def roads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_road_dataset(tmp_path_factory.mktemp("cvm") / "data", n=12, size=48, two_looks=True)


def test_unfitted_evaluators_are_said_once_for_all_folds_and_explained_in_cv_md(
    roads: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """12 images in 2 folds: each fold's evaluator has too few labelled samples. The trial saw
    ``warning: quality evaluator not fitted: only 12 labelled samples (need >= 16)`` once per
    fold with no fold named, and cv.md's quality Spearman was ``–`` without a reason."""
    out = tmp_path / "cv"
    lines: list[str] = []
    cfg = CVConfig(data=roads, out=out, folds=2, train=dict(TRAIN), progress=False)
    with caplog.at_level(logging.WARNING, logger="sam2elnet"):
        r = run_cv(cfg, echo=lines.append)
    said = [m for m in caplog.messages if "quality evaluator" in m]
    assert len(said) == 1, said
    why = r["folds"][0]["quality_unfitted"]
    assert re.fullmatch(r"only \d+ labelled samples \(need >= 16\)", why), why
    assert said[0] == (
        f"quality evaluator not fitted in 2 of 2 folds (fold-1, fold-2): {why}; their predicted "
        "IoUs are a capped heuristic, so cv.md has no quality Spearman for them"
    )
    assert [f["quality_unfitted"] for f in r["folds"]] == [why, why]
    md = (out / "cv.md").read_text(encoding="utf-8")
    assert (
        f"Quality Spearman is empty (–) in every row: the quality evaluator was not fitted: {why}."
    ) in md
    saved = json.loads((out / "folds" / "fold-1" / "result.json").read_text("utf-8"))
    assert saved["tests"]["test"]["quality_spearman_why"] == (
        f"the quality evaluator was not fitted: {why}"
    )
    assert any(x.startswith("fold-1: test IoU ") and ", road quality " in x for x in lines)


def _fold(name: str, why: str | None, tests: dict[str, Any]) -> dict[str, Any]:
    return {"fold": name, "quality_unfitted": why, "tests": tests}


def test_unfitted_lines_group_the_folds_by_reason() -> None:
    """One line per reason, naming its folds; folds trained with --no-quality asked for it."""
    folds = [
        _fold("fold-1", "only 12 labelled samples (need >= 16)", {}),
        _fold("fold-2", None, {}),
        _fold("fold-3", "only 12 labelled samples (need >= 16)", {}),
        _fold("fold-4", "no labelled samples", {}),
        _fold("fold-5", "trained with --no-quality", {}),
    ]
    got = [x.split(";")[0] for x in unfitted_lines(folds)]
    assert got == [
        "quality evaluator not fitted in 2 of 5 folds (fold-1, fold-3): only 12 labelled "
        "samples (need >= 16)",
        "quality evaluator not fitted in 1 of 5 folds (fold-4): no labelled samples",
    ]


def test_cv_md_says_why_each_empty_spearman_is_empty() -> None:
    """Rows empty for different reasons: each reason once, naming its rows; a fitted row is
    left out."""
    t = {"n_images": 2, "iou": 0.1, "f1": 0.2}
    folds = [
        _fold("A-to-B", None, {
            "in_domain": {**t, "quality_spearman": None,
                          "quality_spearman_why": "only 2 test images (a rank correlation needs 3)"},
            "cross_domain": {**t, "n_images": 6, "quality_spearman": 0.4},
        }),
        _fold("B-to-A", "no labelled samples", {
            "in_domain": {**t, "quality_spearman": None,
                          "quality_spearman_why": "the quality evaluator was not fitted: no "
                          "labelled samples"},
            "cross_domain": {**t, "n_images": 6, "quality_spearman": None,
                             "quality_spearman_why": "the quality evaluator was not fitted: no "
                             "labelled samples"},
        }),
    ]  # fmt: skip
    r = {
        "keys": ["iou", "f1"], "mode": "cross-domain", "folds_total": 2, "folds_done": 2,
        "data": "d", "n_images": 16, "domain": "other", "domain_reason": "given",
        "groups": {"describe": "A vs B"}, "in_domain_fraction": 0.25, "folds": folds,
        "summary": {}, "train": {}, "seed": 0, "seconds_this_run": 1.0,
    }  # fmt: skip
    md = render_markdown(r)
    assert (
        "Quality Spearman is empty (–) where it cannot be measured: A-to-B in-domain: only 2 "
        "test images (a rank correlation needs 3); B-to-A in-domain, B-to-A cross-domain: the "
        "quality evaluator was not fitted: no labelled samples."
    ) in md
