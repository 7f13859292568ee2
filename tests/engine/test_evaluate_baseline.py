"""``elnet evaluate --baseline --group-by folder``: enhancement measured against its coarse input,
per sensor sub-folder, on a SOS-like nested layout (exact values from constructed masks)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.engine.comparison import compare, outcome
from sam2elnet.engine.metrics import Confusion

S = 32


def _box(c1: int) -> np.ndarray:
    """Rows 8:24, columns 8:c1 (16 x (c1 - 8) pixels); c1 = 8 is empty."""
    m = np.zeros((S, S), bool)
    m[8:24, 8:c1] = True
    return m


# id -> (sensor, truth, baseline, prediction, predicted IoU, kept)
# 1: baseline IoU 0.75 -> 1.0 (improved); 2: 1.0 -> 0.9375 (worse by 6.25 points);
# 3: empty truth, empty baseline, empty prediction (unchanged, correct); 4: 0.5 -> 0.875 (improved)
CASES = {
    "1": ("palsar", _box(24), _box(20), _box(24), 0.9, True),
    "2": ("palsar", _box(24), _box(24), _box(23), 0.5, False),
    "3": ("sentinel", _box(8), _box(8), _box(8), 0.95, True),
    "4": ("sentinel", _box(24), _box(16), _box(22), 0.8, True),
}


@pytest.fixture
def sos(tmp_path: Path) -> dict[str, Path]:
    """truth/<sensor>/<id>_sat.jpg + <id>_mask.png, coarse/<sensor>/<id>_mask.png and one enhance
    run folder per sensor (labels/, rejected/, changes/, quality.csv, summary.json)."""
    truth, coarse, enh = tmp_path / "train", tmp_path / "coarse", tmp_path / "enh"
    rows: dict[str, list[dict]] = {"palsar": [], "sentinel": []}
    for i, (sensor, t, b, p, q, kept) in CASES.items():
        write_mask_png(truth / sensor / f"{i}_mask.png", t)
        Image.fromarray(np.full((S, S), 90, np.uint8)).save(truth / sensor / f"{i}_sat.jpg")
        write_mask_png(coarse / sensor / f"{i}_mask.png", b)
        rel = f"{'labels' if kept else 'rejected'}/{i}_sat.png"
        write_mask_png(enh / sensor / rel, p)
        write_mask_png(
            enh / sensor / "changes" / f"{i}_sat.png", ~p
        )  # not a label: must be ignored
        rows[sensor].append(
            {"image": f"{i}_sat.jpg", "label": rel, "predicted_iou": q, "kept": kept}
        )
    for sensor, rs in rows.items():
        with (enh / sensor / "quality.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rs[0]))
            w.writeheader()
            w.writerows(rs)
        choice = {"threshold": 0.6, "target_precision": 0.9, "tau": 0.9, "precision": 0.95}
        summary = {"filter": {"threshold": 0.6, "target_precision": {**choice, "recall": 0.7}}}
        (enh / sensor / "summary.json").write_text(json.dumps(summary))
    return {"truth": truth, "coarse": coarse, "enh": enh, "tmp": tmp_path}


def test_compare_rules() -> None:
    """2 of 3 improve -> 0.667; the empty/empty/empty image is unchanged, never a loss."""
    full = Confusion(tp=10, fp=0, fn=0, tn=90)
    half = Confusion(tp=5, fp=0, fn=5, tn=90)
    empty_ok = Confusion(tp=0, fp=0, fn=0, tn=100)
    c = compare(["a", "b", "c"], [full, full, empty_ok], [half, half, empty_ok])
    assert c.n == 3 and c.n_improved == 2 and c.n_unchanged == 1 and c.n_worse == 0
    assert round(c.share_improved, 3) == 0.667
    assert c.share_improved_of_improvable == 1.0 and c.n_improvable == 2
    assert c.n_empty_stayed_empty == 1 and c.n_empty_spoiled == 0
    # an empty truth the baseline got right and the prediction spoiled is the typical loss
    spoiled = Confusion(tp=0, fp=3, fn=0, tn=97)
    c = compare(["a"], [spoiled], [empty_ok])
    assert c.n_worse_by == 1 and c.worse_images == ["a"] and c.n_empty_spoiled == 1
    assert c.mean_delta == -1.0
    # no counted pixel (all nodata): no IoU, left out
    c = compare(["x"], [Confusion()], [Confusion()])
    assert c.n == 0 and math.isnan(c.share_improved)
    assert outcome(0.0) == "unchanged" and outcome(0.03) == "improved" and outcome(-0.01) == "worse"
    with pytest.raises(ValueError):
        compare(["a"], [full], [])


def test_evaluate_baseline_groups_quality(
    sos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = sos["tmp"] / "eval"
    argv = [
        "evaluate", "--pred", str(sos["enh"]), "--truth", str(sos["truth"]),
        "--baseline", str(sos["coarse"]), "--group-by", "folder",
        "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), "--report",
    ]  # fmt: skip
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "compared with the baseline" in captured.out and "palsar" in captured.out
    assert "worse than the baseline by more than 0.02 IoU: 1 image, worst first: 2" in (
        " ".join(captured.out.split())
    )
    data = json.loads((out / "e.json").read_text())
    assert data["aggregate"]["n_images"] == 4
    c = data["comparison"]
    # pred TP 256+240+0+224 = 720, FN 48 -> 720/768; baseline TP 576, FN 192 -> 576/768
    assert c["iou"] == pytest.approx(0.9375) and c["baseline_iou"] == pytest.approx(0.75)
    assert c["gain"] == pytest.approx(0.1875)
    assert c["mean_delta"] == pytest.approx((0.25 - 0.0625 + 0.0 + 0.375) / 4)
    assert (c["n_improved"], c["n_unchanged"], c["n_worse"], c["n_worse_by"]) == (2, 1, 1, 1)
    assert c["share_improved"] == 0.5 and c["share_worse_by"] == 0.25
    assert c["share_improved_of_improvable"] == 1.0
    assert c["n_empty_stayed_empty"] == 1 and c["worse_images"] == ["2"]
    g = data["groups"]
    assert list(g) == ["palsar", "sentinel"]
    assert g["palsar"]["comparison"]["iou"] == pytest.approx(496 / 512)
    assert g["palsar"]["comparison"]["baseline_iou"] == pytest.approx(448 / 512)
    assert g["palsar"]["comparison"]["share_worse_by"] == 0.5
    assert g["sentinel"]["comparison"]["iou"] == pytest.approx(224 / 256)
    assert g["sentinel"]["comparison"]["share_improved"] == 0.5
    assert g["sentinel"]["comparison"]["share_unchanged"] == 0.5
    # quality: two runs' quality.csv read together; tau 0.9 from their summary.json
    q = data["quality"]
    assert q["n"] == 4 and q["n_kept"] == 3 and q["tau"] == 0.9
    assert q["precision_kept"] == pytest.approx(2 / 3) and q["recall_kept"] == pytest.approx(2 / 3)
    assert q["spearman"] == pytest.approx(3.5 / math.sqrt(22.5))
    assert data["quality_filter"]["target_precision"] == 0.9
    assert data["quality_filter"]["estimated_precision"] == 0.95
    assert g["palsar"]["quality"]["n"] == 2
    rows = {r["image"]: r for r in csv.DictReader((out / "e.csv").open())}
    assert rows["2"]["outcome"] == "worse" and float(rows["2"]["delta_iou"]) == -0.0625
    assert rows["3"]["outcome"] == "unchanged" and rows["3"]["group"] == "sentinel"
    html = (out / "report.html").read_text()
    assert "compared with the baseline" in html and "palsar" in html
    # each group's scores as the overall ones: pixel-summed apart from per-image means (one
    # "palsar: aggregate" table mixed them without saying which)
    for name in ("palsar", "sentinel"):
        pixel = html.index(f"{name}: aggregate (pixel-summed)")
        means = html.index(f"{name}: aggregate (mean per image)")
        assert pixel < means and "mean per-image" not in html[pixel:means]
        assert "mean per-image IoU" in html[means : html.index("</table>", means)]


def test_evaluate_worse_by_and_tau(
    sos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    js = sos["tmp"] / "w.json"
    argv = [
        "evaluate", "--pred", str(sos["enh"]), "--truth", str(sos["truth"]),
        "--baseline", str(sos["coarse"]), "--worse-by", "0.1", "--tau", "0.8", "--json", str(js),
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    data = json.loads(js.read_text())
    assert data["comparison"]["n_worse"] == 1 and data["comparison"]["n_worse_by"] == 0
    assert data["groups"] == {}
    # tau 0.8: every label is good; kept 3 of 4
    assert data["quality"]["precision_kept"] == 1.0 and data["quality"]["recall_kept"] == 0.75


def test_evaluate_one_sensor_flat(sos: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The SOS training folder itself (images next to masks) as truth, one run as prediction."""
    js = sos["tmp"] / "p.json"
    argv = [
        "evaluate", "--pred", str(sos["enh"] / "palsar"), "--truth", str(sos["truth"] / "palsar"),
        "--baseline", str(sos["coarse"] / "palsar"), "--group-by", "folder", "--json", str(js),
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    data = json.loads(js.read_text())
    assert list(data["groups"]) == ["palsar"]
    assert data["comparison"]["n"] == 2 and data["comparison"]["n_improved"] == 1


def _expect_error(argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error:") and err.count("\n") == 1, err
    assert needle in err


def test_evaluate_baseline_bad_inputs(
    sos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate", "--pred", str(sos["enh"]), "--truth", str(sos["truth"])]
    _expect_error([*base, "--baseline", str(sos["tmp"] / "nope")], capsys, "nope")
    _expect_error([*base, "--group-by", "sensor"], capsys, "--group-by")
    _expect_error([*base, "--worse-by", "-1"], capsys, "--worse-by")
    # a baseline that misses an evaluated image
    _expect_error(
        [*base, "--baseline", str(sos["coarse"] / "palsar")], capsys, "have no baseline label"
    )
    assert not (sos["tmp"] / "eval").exists()
    # a baseline of another size skips its pair (named, with both sizes); the rest is compared
    bad = sos["coarse"] / "sentinel" / "4_mask.png"
    write_mask_png(bad, np.zeros((16, S), bool))
    js = sos["tmp"] / "b.json"
    assert main([*base, "--baseline", str(sos["coarse"]), "--json", str(js)]) == 0
    cap = capsys.readouterr()
    assert f"warning: skipping {bad}: is {S}x16 (WxH) but its ground truth" in cap.err
    assert cap.out.splitlines()[-1] == f"1 of 4 skipped, see {js}"
    data = json.loads(js.read_text())
    assert [r["image"] for r in data["images"]] == ["1", "2", "3"]
    assert [s["file"] for s in data["skipped"]] == [str(bad)]
    c = data["comparison"]
    assert (c["n"], c["n_improved"], c["n_unchanged"], c["n_worse"]) == (3, 1, 1, 1)


def test_evaluate_ids(sos: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """--ids: a run's splits.json restricts the evaluation to its held-out images."""
    splits = sos["tmp"] / "splits.json"
    splits.write_text(json.dumps({"train": ["2", "4"], "val": [], "held_out": ["1", "3"]}))
    js = sos["tmp"] / "i.json"
    argv = [
        "evaluate", "--pred", str(sos["enh"]), "--truth", str(sos["truth"]),
        "--baseline", str(sos["coarse"]), "--ids", str(splits), "--json", str(js),
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    data = json.loads(js.read_text())
    assert [r["image"] for r in data["images"]] == ["1", "3"]
    assert data["unmatched_truth"] == [] and data["comparison"]["n_improved"] == 1
    (sos["tmp"] / "none.txt").write_text("77\n")
    _expect_error([*argv[:-4], "--ids", str(sos["tmp"] / "none.txt")], capsys, "--ids")


def test_baseline_of_streamed_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large GeoTIFF labels are counted strip by strip; the baseline the same way, same counts."""
    from helpers_data import write_tif

    from sam2elnet.data import windowed
    from sam2elnet.engine.evaluate import evaluate_folders

    for i, (_, t, b, p, _, _) in CASES.items():
        for sub, m in (("truth", t), ("base", b), ("pred", p)):
            write_tif(tmp_path / sub / f"{i}.tif", (m * 255).astype(np.uint8)[None])
    args = (tmp_path / "pred", tmp_path / "truth")
    whole = evaluate_folders(*args, baseline_dir=tmp_path / "base", progress=False)
    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
    monkeypatch.setattr(windowed, "STRIP_PIXELS", 5 * S)
    import sam2elnet.engine.eval_stream as es

    calls: list[Path] = []
    real = es.streamed_counts  # predictions and baselines
    monkeypatch.setattr(
        es, "streamed_counts", lambda p, *a, _r=real, **k: calls.append(p) or _r(p, *a, **k)
    )
    streamed = evaluate_folders(*args, baseline_dir=tmp_path / "base", progress=False)
    assert len(calls) == 8  # 4 predictions + 4 baselines
    assert streamed.comparison.as_dict() == whole.comparison.as_dict()
    assert whole.comparison.n_improved == 2 and whole.comparison.baseline_iou == 0.75


def test_evaluate_says_when_the_target_precision_was_not_reachable(
    sos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose --target-precision no threshold reached at training rejected every label; the
    caption said 'the run kept labels with predicted IoU >= T for precision >= 0.9'."""
    note = "no threshold reaches precision 0.9 on the 32 labelled samples"
    for sensor in ("palsar", "sentinel"):
        choice = {"threshold": 0.97, "target_precision": 0.9, "tau": 0.9, "precision": None}
        choice |= {"recall": 0.0, "achievable": False, "note": note}
        summary = {"filter": {"threshold": 0.97, "target_precision": choice}}
        (sos["enh"] / sensor / "summary.json").write_text(json.dumps(summary))
    js = sos["tmp"] / "u.json"
    argv = ["evaluate", "--pred", str(sos["enh"]), "--truth", str(sos["truth"]), "--json", str(js)]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the run kept labels" not in out
    assert (
        f"--target-precision 0.9 was not reachable at training ({note}): the run's threshold "
        "0.9700 lies above every score it was calibrated on"
    ) in out
    qf = json.loads(js.read_text())["quality_filter"]
    assert qf["achievable"] is False and qf["note"] == note
