"""``elnet evaluate``'s label-quality table when no label reaches ``--tau`` (new-user trial,
roads): it printed "precision of kept 0.0000" and "recall — (of 0)" without a word on why; thin
roads rarely reach the default tau 0.7."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png

from sam2elnet.cli import main


def _roads(tmp_path: Path) -> tuple[Path, Path]:
    """4 thin road strips predicted 1-2 px off: true IoUs 0.5 and 0.2, all below 0.7."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    rows = []
    for k in range(4):
        t = np.zeros((32, 32), bool)
        t[14:17, :] = True
        p = np.zeros_like(t)
        p[14 + 1 + k % 2 : 17 + 1 + k % 2, :] = True
        write_mask_png(truth / f"{k}_mask.png", t)
        write_mask_png(pred / f"{k}_pred.png", p)
        rows.append({"image": f"{k}_sat.png", "label": "", "predicted_iou": 0.6 - 0.1 * k,
                     "kept": k < 2})  # fmt: skip
    with (pred / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return pred, truth


def test_quality_table_says_when_no_label_reaches_tau(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = _roads(tmp_path)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "no label reached true IoU >= 0.7 (--tau; mean true IoU 0.35" in said, said
    assert "give --tau an IoU your good labels reach" in said, said
    # a tau the labels reach: the precision and recall count, no such line
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress", "--tau", "0.4"]
    assert main(argv) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "no label reached" not in said and "precision of kept (true IoU >= 0.4" in said, said
