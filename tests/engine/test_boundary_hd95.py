"""HD95 (95th-percentile Hausdorff distance between boundaries, px): hand-computed values and
edge cases of :func:`sam2elnet.engine.metrics.boundary_hd95`, and its row / aggregate in
``evaluate_folders``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sam2elnet.engine.metrics import boundary_counts, boundary_hd95, boundary_measures, hd95


def _square(top: int, left: int, size: int = 16, shape: tuple[int, int] = (48, 48)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def test_hd95_of_shifted_squares_by_hand() -> None:
    """16 px squares: shifted 1 px down, every boundary pixel is 0 or 1 px from the other
    boundary (30 of 60 at 1 px) -> 1.0; shifted 5 px along x, 22 of the 60 pixels each way are
    5 px away (the far vertical edge and the ends of the horizontal ones) -> 5.0."""
    truth = _square(10, 10)
    assert boundary_hd95(truth, truth) == 0.0
    assert boundary_hd95(_square(11, 10), truth) == pytest.approx(1.0)
    assert boundary_hd95(_square(10, 15), truth) == pytest.approx(5.0)


def test_hd95_ignores_the_worst_five_percent_unlike_the_hausdorff_distance() -> None:
    """One stray pixel 20 px from the square is 1 of 61 predicted boundary pixels (< 5 %): the
    plain Hausdorff distance would be 20, HD95 stays 0."""
    truth = _square(10, 10)
    pred = truth.copy()
    pred[45, 25] = True  # 20 px below the bottom edge (row 25)
    assert boundary_hd95(pred, truth) == 0.0
    assert boundary_hd95(truth, pred) == 0.0  # the larger of both directions, symmetric


def test_hd95_directed_percentiles_and_edge_cases() -> None:
    d = np.arange(21, dtype=float)  # 0..20 px: the 95th percentile is 19
    assert hd95(d, np.zeros(3)) == pytest.approx(19.0)
    assert hd95(np.zeros(3), d) == pytest.approx(19.0)
    empty, full = np.zeros((12, 12), bool), np.ones((12, 12), bool)
    sq = _square(2, 2, 4, (12, 12))
    assert boundary_hd95(empty, empty) == 0.0
    assert boundary_hd95(full, full) == 0.0  # the image frame is not a boundary
    assert math.isnan(boundary_hd95(sq, empty)) and math.isnan(boundary_hd95(empty, sq))
    valid = np.zeros((12, 12), bool)  # no boundary pixel counted: agreement, as boundary F1
    assert boundary_hd95(sq, _square(3, 3, 4, (12, 12)), valid) == 0.0


def test_boundary_measures_gives_the_counts_of_boundary_counts() -> None:
    pred, truth = _square(10, 15), _square(10, 10)
    counts, h = boundary_measures(pred, truth, 2.0)
    assert counts == boundary_counts(pred, truth, 2.0) and h == pytest.approx(5.0)
    assert counts.pred_matched == 30 and counts.pred_total == 60  # tests/engine/test_metrics.py


def test_evaluate_folders_reports_hd95_per_image_and_its_mean(tmp_path) -> None:
    """Per image (``boundary_hd95_px``, CSV and JSON) and the aggregate's plain mean over the
    images where both masks have a boundary; an empty prediction has no HD95 (empty cell)."""
    import csv
    import json

    from helpers_data import write_mask_png

    from sam2elnet.engine.evaluate import evaluate_folders

    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir(), truth.mkdir()
    for name, p in (("a", _square(11, 10)), ("b", _square(10, 15)), ("c", np.zeros((48, 48)))):
        write_mask_png(truth / f"{name}.png", _square(10, 10))
        write_mask_png(pred / f"{name}.png", p.astype(bool))
    res = evaluate_folders(pred, truth, boundary=True, progress=False)
    rows = {r["image"]: r for r in res.rows()}
    assert rows["a"]["boundary_hd95_px"] == pytest.approx(1.0)
    assert rows["b"]["boundary_hd95_px"] == pytest.approx(5.0)
    assert rows["c"]["boundary_hd95_px"] is None  # NaN -> null in JSON
    assert res.aggregate["mean_image_boundary_hd95_px"] == pytest.approx(3.0)
    res.write_csv(tmp_path / "per_image.csv")
    with (tmp_path / "per_image.csv").open() as fh:
        cells = {r["image"]: r["boundary_hd95_px"] for r in csv.DictReader(fh)}
    assert float(cells["b"]) == pytest.approx(5.0) and cells["c"] == ""
    res.write_json(tmp_path / "eval.json")
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["aggregate"]["mean_image_boundary_hd95_px"] == pytest.approx(3.0)
    assert "boundary_hd95_px" not in evaluate_folders(pred, truth, progress=False).rows()[0]
    # the mean leaves c out (often the worst image): the note under the table says so
    assert res.notes == [
        "mean per-image boundary HD95 is over 2 of 3 images; left out: 1 with a boundary in one "
        "mask only (nothing predicted or nothing true there: no distance; see its boundary "
        "F1): c (its boundary_hd95_px is empty)"
    ]
    assert evaluate_folders(pred, truth, progress=False).notes == []  # no --boundary: no note


def test_a_pair_read_in_strips_has_the_hd95_of_a_whole_read(tmp_path, monkeypatch) -> None:
    """Large GeoTIFF pairs are counted strip by strip (``eval_stream.streamed_counts``): boundary
    F1 and HD95 as for a pair read whole (before, HD95 was left empty for them)."""
    from helpers_data import write_tif

    from sam2elnet.data import windowed
    from sam2elnet.engine.evaluate import evaluate_folders

    for sub, m in (("truth", _square(10, 10)), ("pred", _square(10, 15))):
        write_tif(tmp_path / sub / "a.tif", (m * 255).astype(np.uint8)[None])
    args = (tmp_path / "pred", tmp_path / "truth")
    whole = evaluate_folders(*args, boundary=True, progress=False).rows()[0]
    assert whole["boundary_hd95_px"] == pytest.approx(5.0)
    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
    monkeypatch.setattr(windowed, "STRIP_PIXELS", 5 * 48)
    res = evaluate_folders(*args, boundary=True, roads=False, progress=False)
    row = res.rows()[0]
    assert row["boundary_f1"] == pytest.approx(whole["boundary_f1"])
    assert row["boundary_hd95_px"] == pytest.approx(5.0)
    assert res.to_dict()["aggregate"]["mean_image_boundary_hd95_px"] == pytest.approx(5.0)
    assert res.notes == [] and res.to_dict()["notes"] == []


def test_a_strip_pair_with_too_long_a_boundary_says_why_hd95_is_empty(
    tmp_path, monkeypatch
) -> None:
    """A pair read in strips whose boundary is over ``HD95_MAX_POINTS`` pixels (kept in memory for
    HD95) gets no HD95, and the terminal note, the JSON's ``notes`` and the report say why
    (before, the note was the terminal's only: the JSON had a bare null)."""
    from helpers_data import write_tif

    from sam2elnet.data import windowed
    from sam2elnet.engine import strip_metrics
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.pipeline.report import write_evaluation_report

    for sub, m in (("truth", _square(10, 10)), ("pred", _square(10, 15))):
        write_tif(tmp_path / sub / "a.tif", (m * 255).astype(np.uint8)[None])
    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
    monkeypatch.setattr(windowed, "STRIP_PIXELS", 5 * 48)
    monkeypatch.setattr(strip_metrics, "HD95_MAX_POINTS", 59)  # each square: 60
    res = evaluate_folders(tmp_path / "pred", tmp_path / "truth", boundary=True, roads=False,
                           progress=False)  # fmt: skip
    assert res.rows()[0]["boundary_hd95_px"] is None
    note = (
        "mean per-image boundary HD95 is over 0 of 1 image; left out: 1 read in strips with a "
        "boundary over 59 pixels (too long to keep for HD95): a (its boundary_hd95_px is empty)"
    )
    assert res.notes == [note]
    assert res.to_dict()["notes"] == [note]
    report = write_evaluation_report(res, tmp_path / "report.html")
    assert "too long to keep for HD95" in report.read_text(encoding="utf-8")


def test_distance_to_nearest_and_within_tolerance() -> None:
    """Distances from src's True pixels (row-major) to target's nearest True pixel; inf when target
    is empty, where within_tolerance says False for every pixel."""
    from sam2elnet.engine.metrics.boundary import distance_to_nearest, within_tolerance

    src = np.zeros((5, 6), bool)
    src[0, 0] = src[4, 5] = src[2, 3] = True
    target = np.zeros((5, 6), bool)
    target[2, 0] = True
    d = distance_to_nearest(src, target)
    assert d.dtype == np.float64
    assert np.allclose(d, [2.0, 3.0, math.hypot(2, 5)])  # (0,0), (2,3), (4,5)
    assert within_tolerance(src, target, 2.0).tolist() == [True, False, False]
    assert within_tolerance(src, target, 3.0).tolist() == [True, True, False]
    empty = np.zeros_like(target)
    assert distance_to_nearest(src, empty).tolist() == [math.inf] * 3
    assert within_tolerance(src, empty, 100.0).tolist() == [False] * 3
    assert distance_to_nearest(empty, target).shape == (0,)
