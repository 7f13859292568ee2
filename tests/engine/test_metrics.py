"""Metrics: hand-computed confusion counts, edge cases, boundary F, road measures, folder evaluation."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from PIL import Image

from sam2elnet.data.naming import mask_key
from sam2elnet.engine.evaluate import evaluate_folders, read_binary_mask
from sam2elnet.engine.metrics import (
    BoundaryCounts,
    Confusion,
    RoadCounts,
    boundary_counts,
    boundary_f1,
    confusion,
    iou_per_sample,
    quality_stats,
    road_counts,
    scores,
)
from sam2elnet.errors import DataError, UserError


def _save(path: Path, mask: np.ndarray, scale: int = 255) -> Path:
    Image.fromarray((np.asarray(mask) * scale).astype(np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- confusion / scores


def test_confusion_hand_computed() -> None:
    pred = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
    truth = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    c = confusion(pred, truth)
    assert c == Confusion(tp=2, fp=1, fn=1, tn=2)
    s = scores(c)
    assert s["iou"] == pytest.approx(2 / 4)
    assert s["iou_bg"] == pytest.approx(2 / 4)
    assert s["miou"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(4 / 6)
    assert s["dice"] == s["f1"]
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)


def test_confusion_valid_mask_and_addition() -> None:
    pred = np.array([[1, 1], [0, 0]], dtype=bool)
    truth = np.array([[1, 0], [0, 1]], dtype=bool)
    valid = np.array([[1, 0], [1, 1]], dtype=bool)
    c = confusion(pred, truth, valid)
    assert c == Confusion(tp=1, fp=0, fn=1, tn=1)
    assert c.total == 3
    assert c + c == Confusion(2, 0, 2, 2)
    assert sum([c, c, c]) == Confusion(3, 0, 3, 3)


def test_confusion_accepts_uint8_and_float() -> None:
    assert confusion(np.array([255, 0]), np.array([1, 1])) == Confusion(1, 0, 1, 0)
    assert confusion(np.array([0.7, 0.2]), np.array([1.0, 0.0])) == Confusion(1, 0, 0, 1)


def test_confusion_torch_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p, t, v = (rng.random((2, 8, 8)) > 0.5 for _ in range(3))
    ref = confusion(p, t, v)
    got = confusion(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(v))
    assert got == ref
    assert confusion(torch.from_numpy(p).float(), torch.from_numpy(t)) == confusion(p, t)


def test_iou_per_sample_numpy_and_torch() -> None:
    rng = np.random.default_rng(2)
    p, t = rng.random((3, 5, 5)) > 0.5, rng.random((3, 5, 5)) > 0.5
    p[2] = t[2] = False  # empty vs empty -> 1.0
    ref = [scores(confusion(p[i], t[i]))["iou"] for i in range(3)]
    assert iou_per_sample(p, t) == pytest.approx(ref)
    assert iou_per_sample(p, t)[2] == 1.0
    torch = pytest.importorskip("torch")
    got = iou_per_sample(torch.from_numpy(p).float()[:, None], torch.from_numpy(t)[:, None])
    assert got.tolist() == pytest.approx(ref)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        confusion(np.zeros((2, 2)), np.zeros((3, 3)))


def test_edge_cases() -> None:
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    s = scores(confusion(empty, empty))
    assert s["iou"] == s["f1"] == s["precision"] == s["recall"] == 1.0
    assert s["iou_bg"] == 1.0 and s["accuracy"] == 1.0
    # prediction empty, truth not: nothing found
    s = scores(confusion(empty, full))
    assert s["iou"] == s["f1"] == s["precision"] == s["recall"] == 0.0
    # truth empty, prediction not: all false alarms
    s = scores(confusion(full, empty))
    assert s["iou"] == s["precision"] == s["recall"] == 0.0
    # all-foreground agreement: background IoU is vacuous
    s = scores(confusion(full, full))
    assert s["iou"] == 1.0 and s["iou_bg"] == 1.0
    # nothing valid
    s = scores(confusion(full, full, valid=empty))
    assert all(math.isnan(v) for v in s.values())


@settings(max_examples=60, deadline=None)
@given(
    a=arrays(bool, (6, 7)),
    b=arrays(bool, (6, 7)),
)
def test_iou_properties(a: np.ndarray, b: np.ndarray) -> None:
    ab = scores(confusion(a, b))["iou"]
    ba = scores(confusion(b, a))["iou"]
    assert ab == pytest.approx(ba)
    assert 0.0 <= ab <= 1.0
    if a.any() or b.any():
        assert (ab == 1.0) == bool(np.array_equal(a, b))
    # F1 and IoU carry the same ranking information: F1 = 2 IoU / (1 + IoU)
    f1 = scores(confusion(a, b))["f1"]
    assert f1 == pytest.approx(2 * ab / (1 + ab))


# ---------------------------------------------------------------- boundary F


def _square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def test_boundary_f1_shifted_square() -> None:
    truth = _square((40, 40), 10, 10, 16)
    assert boundary_f1(truth, truth) == 1.0
    # shifted by 1 px: every boundary pixel is within 2 px of the other boundary
    assert boundary_f1(_square((40, 40), 11, 10, 16), truth, tolerance_px=2) == 1.0
    # shifted by 5 px along x: only the horizontal edges (which overlap) still match
    shifted = _square((40, 40), 10, 15, 16)
    bf = boundary_f1(shifted, truth, tolerance_px=2)
    c = boundary_counts(shifted, truth, tolerance_px=2)
    assert 0.0 < bf < 1.0
    # by symmetry both directions match the same number of boundary pixels
    assert c.pred_total == c.truth_total == 60
    assert c.pred_matched == c.truth_matched
    # by hand (60 inner-boundary pixels each): top and bottom edges match for the 11 overlapping
    # columns + 2 within tolerance (13 each); the near vertical edge matches only its 2 + 2 pixels
    # close to the horizontal edges; the far vertical edge (5 px away) matches none: 30/60.
    assert c.pred_matched == 30
    assert bf == pytest.approx(0.5)
    # larger tolerance covers the whole shift
    assert boundary_f1(shifted, truth, tolerance_px=5) == 1.0


def test_boundary_edge_cases() -> None:
    empty = np.zeros((10, 10), bool)
    full = np.ones((10, 10), bool)
    sq = _square((10, 10), 2, 2, 4)
    assert boundary_f1(empty, empty) == 1.0
    assert boundary_f1(full, full) == 1.0  # the image frame is not a boundary
    assert boundary_f1(sq, empty) == 0.0
    assert boundary_f1(empty, sq) == 0.0
    total = boundary_counts(sq, sq) + BoundaryCounts()
    assert total.scores()["boundary_f1"] == 1.0


# ---------------------------------------------------------------- roads


def test_road_measures() -> None:
    truth = np.zeros((40, 60), bool)
    truth[18:23, 5:55] = True  # one horizontal road
    same = road_counts(truth, truth).scores()
    assert same["road_correctness"] == same["road_completeness"] == same["road_quality"] == 1.0
    assert same["road_connectivity"] == 1.0
    # a gap in the middle breaks connectivity and lowers completeness
    broken = truth.copy()
    broken[:, 26:36] = False
    s = road_counts(broken, truth).scores()
    assert s["road_connectivity"] == 0.0
    assert s["road_completeness"] < 1.0
    assert s["road_correctness"] == pytest.approx(1.0)
    # an extra false road lowers correctness only
    extra = truth.copy()
    extra[2:6, 5:55] = True
    s = road_counts(extra, truth).scores()
    assert s["road_correctness"] < 0.7 and s["road_completeness"] == 1.0
    # Wiedemann et al. (1998): a measure is undefined (NaN) when its denominator is 0
    empty = np.zeros_like(truth)
    s = road_counts(empty, empty).scores()
    assert all(math.isnan(s[k]) for k in s)  # no road anywhere: nothing to measure
    s = road_counts(extra, empty).scores()  # no reference road: no completeness, not 0.0
    assert math.isnan(s["road_completeness"]) and math.isnan(s["road_connectivity"])
    assert s["road_correctness"] == 0.0 and s["road_quality"] == 0.0
    s = road_counts(empty, truth).scores()  # nothing extracted: no correctness
    assert math.isnan(s["road_correctness"])
    assert s["road_completeness"] == 0.0 and s["road_quality"] == 0.0


def test_road_aggregate_ignores_undefined_images() -> None:
    """Summed lengths: a tile without roads (and without a prediction) adds 0 to both sums."""
    truth = np.zeros((40, 60), bool)
    truth[18:23, 5:55] = True
    broken = truth.copy()
    broken[:, 26:36] = False
    empty = np.zeros_like(truth)
    one = road_counts(broken, truth)
    total = sum([one, road_counts(empty, empty)], RoadCounts())
    assert total.scores() == pytest.approx(one.scores())
    assert 0.0 < total.scores()["road_completeness"] < 1.0


# ---------------------------------------------------------------- reading and pairing


def test_mask_key() -> None:
    assert mask_key("10791_sat.jpg") == "10791"
    assert mask_key("10791_mask.png") == "10791"
    assert mask_key("dir/10791_pred.png") == "10791"
    assert mask_key("satimage_3.png") == "satimage_3"
    assert mask_key("_mask.png") == "_mask"


def test_read_binary_mask_value_conventions(tmp_path: Path) -> None:
    m = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    assert read_binary_mask(_save(tmp_path / "a.png", m, 1)).tolist() == m.astype(bool).tolist()
    assert read_binary_mask(_save(tmp_path / "b.png", m, 255)).tolist() == m.astype(bool).tolist()
    grey = np.array([[0, 200], [128, 127]], dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "c.png")
    assert read_binary_mask(tmp_path / "c.png").tolist() == [[False, True], [True, False]]


def _write_quality(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "label", "predicted_iou", "kept", "area"])
        w.writeheader()
        w.writerows(rows)
    return path


def _make_folders(tmp_path: Path, n: int = 5) -> tuple[Path, Path, list[float]]:
    """Truth squares, predictions shrunk by k px: true IoU falls with k."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    ious = []
    for k in range(n):
        t = _square((32, 32), 6, 6, 20)
        p = _square((32, 32), 6 + k, 6 + k, 20 - 2 * k)
        _save(truth / f"{k:03d}_mask.png", t)
        _save(pred / f"{k:03d}_pred.png", p)
        ious.append(p.sum() / t.sum())
    return pred, truth, ious


def test_evaluate_folders_and_quality(tmp_path: Path) -> None:
    pred, truth, ious = _make_folders(tmp_path)
    _save(truth / "999_mask.png", np.zeros((32, 32), bool))  # no partner
    (truth / "999_sat.jpg").write_bytes(b"")  # images next to masks are ignored (SOS layout)
    # predicted quality ranks the images exactly like the true IoU; two kept
    _write_quality(
        pred / "quality.csv",
        [
            {
                "image": f"{k:03d}_sat.jpg",
                "label": "",
                "predicted_iou": 0.9 - 0.1 * k,
                "kept": int(k < 2),
                "area": 1,
            }
            for k in range(5)
        ],
    )
    res = evaluate_folders(pred, truth, boundary=True, roads=True, progress=False)
    assert [r.name for r in res.images] == ["000", "001", "002", "003", "004"]
    assert res.unmatched_truth == ["999_mask.png"] and res.unmatched_pred == []
    assert [r.iou for r in res.images] == pytest.approx(ious)
    total_tp = sum(r.confusion.tp for r in res.images)
    assert res.aggregate["iou"] == pytest.approx(total_tp / (5 * 400))
    assert res.aggregate["mean_image_iou"] == pytest.approx(np.mean(ious))
    assert "boundary_f1" in res.aggregate and "road_quality" in res.aggregate
    q = res.quality
    assert q is not None and q.n == 5
    assert q.spearman == pytest.approx(1.0)
    assert q.n_kept == 2
    assert q.mean_iou_kept == pytest.approx(np.mean(ious[:2]))
    assert q.mean_iou_all == pytest.approx(np.mean(ious))
    d = res.to_dict()
    assert d["quality"]["spearman"] == pytest.approx(1.0)
    assert d["images"][0]["kept"] is True


def test_quality_stats_crafted() -> None:
    q = quality_stats([0.1, 0.5, 0.3, 0.9], [0.2, 0.6, 0.7, 0.8], [False, True, False, True])
    assert q.spearman == pytest.approx(0.8)
    assert q.mean_iou_kept == pytest.approx(0.7)
    assert q.mean_iou_all == pytest.approx(0.575)
    assert math.isnan(quality_stats([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]).spearman)


def test_evaluate_errors(tmp_path: Path) -> None:
    pred, truth, _ = _make_folders(tmp_path, n=2)
    with pytest.raises(UserError, match="does not exist"):
        evaluate_folders(tmp_path / "nope", truth, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no mask files"):
        evaluate_folders(empty, truth, progress=False)
    # a prediction of another size: skipped (reason naming both files), the other pair scored
    _save(pred / "000_pred.png", np.zeros((16, 32), bool))
    res = evaluate_folders(pred, truth, progress=False)
    assert [r.name for r in res.images] == ["001"] and res.aggregate["n_images"] == 1
    assert [s["file"] for s in res.skipped] == [str(pred / "000_pred.png")]
    assert "000_mask.png" in res.skipped[0]["reason"] and "32x16" in res.skipped[0]["reason"]
    # every pair skipped: one error summarising the reasons
    _save(pred / "001_pred.png", np.zeros((16, 32), bool))
    with pytest.raises(DataError, match="nothing produced: all 2 files could not be used") as err:
        evaluate_folders(pred, truth, progress=False)
    assert f"{truth / '001_mask.png'} is 32x32" in str(err.value)
    other = tmp_path / "other"
    other.mkdir()
    _save(other / "zzz.png", np.zeros((32, 32), bool))
    with pytest.raises(DataError, match="pairs with"):
        evaluate_folders(other, truth, progress=False)


def test_sos_dev_self_evaluation(shared_data: Path) -> None:
    """Real SOS masks against themselves: perfect scores, pairing of the training layout."""
    folder = shared_data / "sos-dev" / "train" / "palsar"
    if not folder.is_dir():
        pytest.skip("sos-dev not present")
    res = evaluate_folders(folder, folder, progress=False)
    assert res.aggregate["n_images"] == 200
    assert res.aggregate["iou"] == 1.0 and res.aggregate["mean_image_iou"] == 1.0
