"""Cohen's kappa (``kappa``): hand-computed per image and pixel-summed, its one undefined case,
and its way to ``elnet evaluate``'s CSV, JSON, terminal table and report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png

from sam2elnet.engine.metrics import Confusion, cohen_kappa, confusion, scores


def test_kappa_hand_computed() -> None:
    """TP 2, FP 1, FN 1, TN 2 (N = 6): observed agreement 4/6, chance agreement
    (3 * 3 + 3 * 3) / 36 = 1/2, kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3."""
    pred = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
    truth = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    assert scores(confusion(pred, truth))["kappa"] == pytest.approx(1 / 3)


def test_kappa_edge_cases() -> None:
    empty, full = np.zeros((4, 4), bool), np.ones((4, 4), bool)
    # one class everywhere in both masks: chance agreement is 1, kappa 0/0 -> agreement, 1.0
    assert scores(confusion(empty, empty))["kappa"] == 1.0
    assert scores(confusion(full, full))["kappa"] == 1.0
    # the opposite of the truth everywhere: -1 at balanced classes, 0 with one class only
    half = np.zeros((4, 4), bool)
    half[:2] = True
    assert scores(confusion(~half, half))["kappa"] == pytest.approx(-1.0)
    assert scores(confusion(full, empty))["kappa"] == 0.0
    assert scores(confusion(empty, half))["kappa"] == 0.0  # one mask empty: 0.0
    # a false alarm on an empty tile: no better than chance, 0.0 (accuracy says 0.96)
    assert scores(Confusion(tp=0, fp=4, fn=0, tn=96))["kappa"] == 0.0
    assert np.isnan(scores(Confusion())["kappa"])  # nothing counted


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    """a: truth rows 0-3, prediction rows 1-4 (TP 30, FP 10, FN 10, TN 50: kappa 7/12);
    b: empty truth, 4 px predicted (kappa 0); c: both empty (kappa 1)."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    t, p = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    t[0:4], p[1:5] = True, True
    write_mask_png(truth / "a.png", t)
    write_mask_png(pred / "a.png", p)
    b = np.zeros((10, 10), bool)
    b[0:2, 0:2] = True
    write_mask_png(truth / "b.png", np.zeros((10, 10), bool))
    write_mask_png(pred / "b.png", b)
    write_mask_png(truth / "c.png", np.zeros((10, 10), bool))
    write_mask_png(pred / "c.png", np.zeros((10, 10), bool))
    return pred, truth


# pixel-summed: TP 30, FP 14, FN 10, TN 246 (N = 300):
# 2 (TP TN - FN FP) / ((TP + FP)(FP + TN) + (TP + FN)(FN + TN)) = 14480 / 21680 = 181 / 271
AGG_KAPPA = 181 / 271


def test_evaluate_folders_reports_kappa_per_image_and_pixel_summed(tmp_path: Path) -> None:
    from sam2elnet.engine.evaluate import evaluate_folders

    pred, truth = _folders(tmp_path)
    res = evaluate_folders(pred, truth, progress=False)
    rows = {r["image"]: r for r in res.rows()}
    assert rows["a"]["kappa"] == pytest.approx(7 / 12)
    assert rows["b"]["kappa"] == 0.0
    assert rows["c"]["kappa"] == 1.0
    assert res.aggregate["kappa"] == pytest.approx(AGG_KAPPA)
    res.write_csv(tmp_path / "per_image.csv")
    with (tmp_path / "per_image.csv").open() as fh:
        cells = {r["image"]: r["kappa"] for r in csv.DictReader(fh)}
    assert float(cells["a"]) == pytest.approx(7 / 12)
    res.write_json(tmp_path / "eval.json")
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["aggregate"]["kappa"] == pytest.approx(AGG_KAPPA)


def test_elnet_evaluate_prints_kappa_and_the_report_defines_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    pred, truth = _folders(tmp_path)
    out = tmp_path / "out"
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-roads",
               "--json", str(out / "eval.json"), "--report", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    line = next(ln for ln in captured.out.splitlines() if "Cohen's kappa" in ln)
    assert f"{AGG_KAPPA:.4f}" in line and "pixel-summed" in line
    page = (out / "report.html").read_text()
    assert "Cohen&#39;s kappa" in page or "Cohen's kappa" in page


def test_kappa_of_numpy_counts_past_int64_products():
    # 4e9 of each count: the products pass 2**63; chance agreement exactly, so kappa 0
    big = np.int64(4 * 10**9)
    assert cohen_kappa(Confusion(big, big, big, big)) == 0.0
