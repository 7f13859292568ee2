"""The closing lines of ``elnet annotate`` / ``elnet enhance``: labels flagged in quality.csv."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sam2elnet.cli.job_summary import flagged_line, print_folder


def test_the_closing_lines_say_which_labels_were_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary.json held ``"n_flagged": {"out of distribution": 1}`` and the closing lines did
    not say so (only flags that reject a label were listed)."""
    summary = {"n_images": 3, "n_kept": 3, "n_rejected": 0, "n_skipped": 0, "seconds": 1.0}
    summary.update(mean_predicted_iou=0.5, n_flagged={"out of distribution": 1})
    print_folder(SimpleNamespace(summary=summary, rows=[], out_dir=tmp_path), "annotated")
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "1 label flagged (score not fully trusted): out of distribution (quality_flag in "
        "quality.csv)"
    )


def test_flagged_line_counts_each_flag_and_leaves_out_what_is_said_elsewhere() -> None:
    both = {"out of distribution": 2, "empty label: 3 of 4 held-out empty labels like it": 1}
    assert flagged_line(both) == (
        "3 labels flagged (score not fully trusted): 2 x out of distribution; 1 x empty label: "
        "3 of 4 held-out empty labels like it (quality_flag in quality.csv)"
    )
    # unusable labels have their own line; an unfitted evaluator its warning
    said = {"constant image": 2, "evaluator not fitted: too_few_samples": 5, "all nodata": 0}
    assert flagged_line(said) is None
