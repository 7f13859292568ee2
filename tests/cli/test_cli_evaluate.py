"""``elnet evaluate`` end to end on tiny generated PNG folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import nodata_strip_pair, write_mask_png
from PIL import Image

from sam2elnet.cli import main


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    pred, truth, images = tmp_path / "pred", tmp_path / "truth", tmp_path / "images"
    for d in (pred, truth, images):
        d.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for k in range(4):
        t = np.zeros((24, 24), bool)
        t[4:20, 4:20] = True
        p = np.zeros_like(t)
        p[4 + k : 20, 4:20] = True
        write_mask_png(truth / f"{k}_mask.png", t)
        write_mask_png(pred / f"{k}_pred.png", p)
        Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(images / f"{k}_sat.png")
        rows.append(
            {"image": f"{k}_sat.png", "label": "", "predicted_iou": 1 - 0.1 * k, "kept": k < 2}
        )
    with (pred / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return pred, truth, images


def test_evaluate_json_csv_report(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth, images = folders
    out = tmp_path / "out"
    rc = main(
        [
            "evaluate", "--pred", str(pred), "--truth", str(truth),
            "--json", str(out / "eval.json"), "--csv", str(out / "eval.csv"),
            "--boundary", "--roads", "--report", "--images", str(images),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "IoU" in captured.out and "Spearman" in captured.out
    text = (out / "eval.json").read_text()
    assert "NaN" not in text  # strict JSON: undefined scores are null
    data = json.loads(text)
    agg = data["aggregate"]
    assert agg["n_images"] == 4
    # pixel-summed: tp = 256 + 240 + 224 + 208 over 4 * 256 truth pixels, no false positives
    assert agg["iou"] == pytest.approx((256 + 240 + 224 + 208) / 1024)
    assert agg["precision"] == 1.0
    assert {"boundary_f1", "road_quality", "road_connectivity"} <= set(agg)
    assert len(data["images"]) == 4 and data["images"][1]["image"] == "1"
    assert data["quality"]["spearman"] == pytest.approx(1.0)
    assert data["quality"]["n_kept"] == 2
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert len(rows) == 4 and "iou" in rows[0]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and 'src="http' not in html
    # the terminal table and the page say which rows are pixel-summed, which per-image means
    over = {s.split("│")[1].strip(): s.split("│")[3].strip() for s in captured.out.splitlines()
            if s.count("│") == 4}  # fmt: skip
    assert over["IoU (foreground)"] == over["boundary F1"] == "pixel-summed"
    assert over["mean per-image IoU"] == over["mean per-image boundary F1"] == "mean per image"
    pixel, means = html.index("aggregate (pixel-summed)"), html.index("aggregate (mean per image)")
    assert pixel < means and "mean per-image" not in html[pixel:means]
    # the per-image table has boundary F1 and HD95 columns: image 0 is exact, image 1 one row off
    cells = _table_cells(html)
    assert float(cells["0"]["boundary_f1"]) == float(cells["1"]["boundary_f1"]) == 1.0  # 2 px
    assert float(cells["0"]["boundary_hd95_px"]) == 0.0
    assert float(cells["1"]["boundary_hd95_px"]) == data["images"][1]["boundary_hd95_px"] == 1.0


def _table_cells(html: str) -> dict[str, dict[str, str]]:
    """report.html's per-image table: image name -> {column key: its sort value (data-v)}."""
    import re

    head = re.search(r"<table id=\"items\">.*?</thead>", html, re.S).group(0)
    keys = re.findall(r'<th (?:data-key="([^"]*)" )?data-type', head)
    rows = re.findall(r'<tr data-idx="\d+" data-name="([^"]*)".*?</tr>', html, re.S)
    bodies = re.findall(r'<tr data-idx="\d+" data-name="[^"]*".*?</tr>', html, re.S)
    out = {}
    for name, body in zip(rows, bodies, strict=True):
        values = re.findall(r'<td(?: class="[^"]*")?(?: data-v="([^"]*)")?', body)
        out[name] = {k: v for k, v in zip(keys, values, strict=True) if k}
    return out


def test_evaluate_report_defaults_to_pred_dir(
    folders: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth, _ = folders
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--report"]) == 0
    assert (pred / "report.html").is_file()


def _expect_error(argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:"), err
    assert needle in err


def test_evaluate_bad_inputs(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth, _ = folders
    _expect_error(
        ["evaluate", "--pred", str(tmp_path / "missing"), "--truth", str(truth)], capsys, "missing"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    _expect_error(
        ["evaluate", "--pred", str(empty), "--truth", str(truth)], capsys, "no mask files"
    )


def _truncate(path: Path) -> None:
    """Cut a file in half (a download or copy that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_evaluate_skips_bad_pairs_and_scores_the_rest(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated prediction and a ground truth of another size are skipped (warning naming the
    file, listed with the reason in the JSON, in eval_evaluate_skipped.csv and in the report's 'skipped
    pairs' table); the two good pairs are scored with their exact values; the last line counts
    the skips."""
    from helpers_data import write_tif

    pred, truth, _ = folders
    _truncate(pred / "2_pred.png")
    (truth / "3_mask.png").unlink()
    write_tif(truth / "3_mask.tif", np.zeros((1, 12, 24), np.uint8), georef=False)
    out = tmp_path / "out"
    js, table = out / "eval.json", out / "eval.csv"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress",
            "--json", str(js), "--csv", str(table), "--report"]  # fmt: skip
    assert main(argv) == 0
    cap = capsys.readouterr()
    warned = [ln for ln in cap.err.splitlines() if ln.startswith("warning: skipping ")]
    assert len(warned) == 2, cap.err
    assert warned[0].startswith(f"warning: skipping {pred / '2_pred.png'}: ")
    assert warned[1] == (
        f"warning: skipping {pred / '3_pred.png'}: is 24x24 (WxH) but its ground truth "
        f"{truth / '3_mask.tif'} is 24x12; predictions need their mask's size, or both files "
        "a georeference (GeoTIFF with CRS + transform, or GCPs) so the truth is resampled onto "
        "the prediction's grid"
    )
    skipped_csv = out / "eval_evaluate_skipped.csv"
    assert cap.out.splitlines()[-1] == f"2 of 4 skipped, see {skipped_csv}"
    data = json.loads(js.read_text())
    # images 0 and 1: 256 and 240 of 256 truth pixels found, no false positives
    assert data["aggregate"]["n_images"] == 2
    assert data["aggregate"]["iou"] == pytest.approx((256 + 240) / 512)
    assert [r["image"] for r in data["images"]] == ["0", "1"]
    assert data["images"][1]["iou"] == pytest.approx(240 / 256)
    assert data["n_skipped"] == 2
    assert [s["file"] for s in data["skipped"]] == [
        str(pred / "2_pred.png"),
        str(pred / "3_pred.png"),
    ]
    # a reason does not repeat the path of its own file (in "file"); another file's path stays
    assert data["skipped"][0]["reason"].startswith("cannot decode image")
    assert "3_mask.tif" in data["skipped"][1]["reason"]
    assert data["quality"]["n"] == 2  # the skipped images' scores are not correlated
    assert [r["image"] for r in csv.DictReader(table.open())] == ["0", "1"]
    rows = list(csv.DictReader(skipped_csv.open()))
    assert [(r["file"], r["reason"]) for r in rows] == [
        (s["file"], s["reason"]) for s in data["skipped"]
    ]
    # the report lists them too: a warning and a table of file and reason (path left off)
    html = (out / "report.html").read_text()
    assert "2 of 4 pairs skipped: they could not be scored" in html
    table_html = html[html.index("skipped pairs") :]
    assert str(pred / "2_pred.png") in table_html and str(pred / "3_pred.png") in table_html
    assert "is 24x24 (WxH) but its ground truth" in table_html
    from sam2elnet.pipeline.report import _skipped_table

    tables, said = _skipped_table(data["skipped"], 2)
    assert [r["file"] for r in tables["skipped pairs"]] == [s["file"] for s in data["skipped"]]
    assert tables["skipped pairs"][1]["reason"].startswith("is 24x24 (WxH) but its ground truth")
    assert _skipped_table([], 4) == ({}, [])
    # fixed and re-run: everything scored, the stale list of skips is gone
    write_mask_png(pred / "2_pred.png", np.ones((24, 24), bool))
    (truth / "3_mask.tif").unlink()
    write_mask_png(truth / "3_mask.png", np.ones((24, 24), bool))
    assert main(argv) == 0
    assert json.loads(js.read_text())["n_skipped"] == 0 and not skipped_csv.exists()
    assert "skipped pairs" not in (out / "report.html").read_text()
    assert "skipped" not in capsys.readouterr().out


def test_evaluate_nothing_usable_is_one_error_and_writes_nothing(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth, _ = folders
    for k in range(4):
        _truncate(pred / f"{k}_pred.png")
    out = tmp_path / "out"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress",
            "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), "--report"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert errors == [err.splitlines()[-1]] and "Traceback" not in err
    assert errors[0].startswith(
        f"error: {pred}: nothing produced: all 4 files could not be used (4 x "
    )
    assert errors[0].endswith("fix or remove the files and re-run")
    assert err.count("warning: skipping") == 4
    assert not out.exists() or not any(out.iterdir())
    assert not (pred / "report.html").exists()
    # one pair: its own error (the file and the reason), no batch summary
    for k in range(1, 4):
        (pred / f"{k}_pred.png").unlink()
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"error: {pred / '0_pred.png'}: cannot decode")
    assert "skipping" not in err


def test_a_pair_whose_two_files_are_corrupt_names_both(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: a pair whose prediction and ground truth are both corrupt was skipped naming the
    ground truth only (the file read first), so the user fixed it and met the prediction on the
    next run. Now its one warning, row of the skip list and error (one pair) name both; a pair
    with one corrupt file names that file alone, as before."""
    pred, truth, _ = folders
    why = "cannot decode image (corrupt, truncated or not an image); re-export it or remove it"
    (pred / "2_pred.png").write_bytes(b"garbage")
    (truth / "2_mask.png").write_bytes(b"garbage")
    (truth / "3_mask.png").write_bytes(b"garbage")
    table = tmp_path / "out" / "e.csv"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress",
            "--csv", str(table)]  # fmt: skip
    assert main(argv) == 0
    cap = capsys.readouterr()
    both = f"{why}; its ground truth {truth / '2_mask.png'} too"
    warned = [ln for ln in cap.err.splitlines() if ln.startswith("warning: skipping ")]
    assert warned == [
        f"warning: skipping {pred / '2_pred.png'}: {both}",
        f"warning: skipping {truth / '3_mask.png'}: {why}",
    ], cap.err
    listed = tmp_path / "out" / "e_evaluate_skipped.csv"
    assert cap.out.splitlines()[-1] == f"2 of 4 skipped, see {listed}"
    rows = [(r["file"], r["reason"]) for r in csv.DictReader(listed.open())]
    assert rows == [(str(pred / "2_pred.png"), both), (str(truth / "3_mask.png"), why)]
    one = ["evaluate", "--pred", str(pred / "2_pred.png"), "--truth", str(truth / "2_mask.png")]
    assert main(one) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {pred / '2_pred.png'}: {both}"


def test_evaluate_run_folder_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An `elnet enhance` output folder: labels/ + rejected/ + quality.csv + summary.json."""
    run, truth, imgs, coarse = (tmp_path / d for d in ("run", "truth", "imgs", "coarse"))
    for d in (run / "labels", run / "rejected", truth, imgs, coarse):
        d.mkdir(parents=True)
    rows = []
    for k in range(4):
        t = np.zeros((24, 24), bool)
        t[4:20, 4:20] = True
        p = np.zeros_like(t)
        p[4 + 2 * k : 20, 4:20] = True
        kept = k < 2
        rel = f"{'labels' if kept else 'rejected'}/{k}_sat.png"
        write_mask_png(run / rel, p)
        write_mask_png(truth / f"{k}_mask.png", t)
        write_mask_png(coarse / f"{k}_mask.png", t)
        Image.fromarray(np.full((24, 24), 100, np.uint8)).save(imgs / f"{k}_sat.jpg")
        rows.append(
            {
                "image": str(imgs / f"{k}_sat.jpg"),
                "label": rel,
                "predicted_iou": 0.9 - 0.1 * k,
                "kept": kept,
                "coarse": str(coarse / f"{k}_mask.png"),
            }
        )
    with (run / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (run / "summary.json").write_text(json.dumps({"threshold": 0.75}))
    rc = main(
        [
            "evaluate",
            "--pred",
            str(run),
            "--truth",
            str(truth),
            "--json",
            str(tmp_path / "e.json"),
            "--report",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "e.json").read_text())
    assert data["aggregate"]["n_images"] == 4
    assert data["quality"]["n_kept"] == 2 and data["quality"]["spearman"] == pytest.approx(1.0)
    html = (tmp_path / "report.html").read_text()
    assert "input label" in html and "threshold" in html
    # OUT/labels alone: only the kept labels, quality.csv found in the parent
    assert (
        main(
            [
                "evaluate",
                "--pred",
                str(run / "labels"),
                "--truth",
                str(truth),
                "--json",
                str(tmp_path / "k.json"),
            ]
        )
        == 0
    )
    kept_only = json.loads((tmp_path / "k.json").read_text())
    assert kept_only["aggregate"]["n_images"] == 2 and kept_only["quality"]["n"] == 2


def test_evaluate_no_progress_prints_one_line(
    folders: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--no-progress (as in every batch command): no bar even on a terminal, and one line when
    scoring ends with the image count, time and the pixel-summed IoU (928 / 1024 here)."""
    import sys

    pred, truth, _ = folders
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in cap.out.splitlines() if ln.startswith("evaluate: ")]
    assert len(lines) == 1 and lines[0].startswith("evaluate: 4/4 img in "), cap.out
    assert lines[0].endswith("pixel_iou 0.906")
    assert "img/s]" not in cap.err and "%|" not in cap.err  # no tqdm bar


def _shown(text: str) -> list[str]:
    """The lines a terminal shows of ``text``: each line from its last carriage return."""
    return [v for ln in text.split("\n") if (v := ln.split("\r")[-1].rstrip())]


@pytest.mark.parametrize("flags", [["--no-progress"], []])
def test_evaluate_error_is_the_only_line(
    folders: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
) -> None:
    """Bad input stops evaluate with its error line alone: no 'evaluate: 0/1 img' progress line
    (stdout) and no bar (stderr) before it, for a single pair, for a folder whose every pair is
    skipped, with the progress lines (--no-progress) and with the bar (a terminal: the bar is
    cleared, so what a terminal shows after the carriage returns is the error line)."""
    import sys

    pred, truth, _ = folders
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    one = pred / "0_pred.png"
    one.write_bytes(b"garbage")
    assert main(["evaluate", "--pred", str(one), "--truth", str(truth / "0_mask.png"), *flags]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert _shown(cap.err) == [
        f"error: {one}: cannot decode image (corrupt, truncated or not an image); re-export it "
        "or remove it"
    ]
    if not flags:  # on a terminal the skip warnings are drawn over the bar (not checked here)
        return
    for k in range(1, 4):
        (pred / f"{k}_pred.png").write_bytes(b"garbage")
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), *flags]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    err = _shown(cap.err)
    assert [ln for ln in err if not ln.startswith("warning: skipping")] == [err[-1]]
    assert err[-1].startswith(f"error: {pred}: nothing produced: all 4 files could not be used")


def test_one_pair_report_takes_an_image_file(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--pred FILE --truth FILE --images FILE: the report draws that image (it was refused,
    'images folder does not exist', and the report showed an empty image panel); an image
    file with a --pred folder is one error saying to give the folder."""
    pred, truth, images = folders
    base = ["evaluate", "--pred", str(pred / "1_pred.png"), "--truth", str(truth / "1_mask.png")]
    out = tmp_path / "out"
    assert main([*base, "--json", str(out / "e.json"), "--report"]) == 0
    assert "data:image/jpeg" not in (out / "report.html").read_text()  # no image known
    argv = [*base, "--json", str(out / "e.json"), "--report", "--images", str(images / "1_sat.png")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "data:image/jpeg" in (out / "report.html").read_text()
    _expect_error(
        [
            "evaluate",
            "--pred",
            str(pred),
            "--truth",
            str(truth),
            "--images",
            str(images / "1_sat.png"),
        ],
        capsys,
        "is a file, but --pred",
    )
    _expect_error([*base, "--images", str(tmp_path / "nope.png")], capsys, "does not exist")


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_prediction_nodata_is_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """A label's nodata pixels (127, tagged as the GeoTIFF's nodata; 127 in our PNG labels) are
    left out like the truth's ignore pixels. They were counted as background: a truth object
    under the nodata strip became 100 false negatives (IoU 0.8 instead of 1.0)."""

    p, t = nodata_strip_pair(tmp_path, suffix)  # a truth object under the nodata strip
    out = tmp_path / "e.json"
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json", str(out)]) == 0
    agg = json.loads(out.read_text())["aggregate"]
    assert agg["iou"] == pytest.approx(1.0)
    assert (agg["total_tp"], agg["total_fn"], agg["total_fp"]) == (400, 0, 0)
    assert agg["total_tn"] == 64 * 48 - 400


def test_evaluate_nothing_produced_removes_an_earlier_skip_list(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: every pair skipped (exit 2) left an earlier run's e_skipped.csv next to --csv,
    listing files of another run. Now it is removed and nothing is written beside --csv (the
    error line says why nothing was scored), as export does."""
    pred, truth, _ = folders
    for k in range(4):
        _truncate(pred / f"{k}_pred.png")
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "e_skipped.csv"
    stale.write_text("file,reason\nold.png,an earlier run's\n")
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress",
            "--csv", str(out / "e.csv")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nothing produced: all 4 files" in err and "cannot decode" in err, err
    assert list(out.iterdir()) == []


def _header(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def test_evaluate_and_export_of_one_stem_in_one_folder_keep_a_skipped_list_each(
    folders: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: ``elnet evaluate --csv out/w.csv`` and ``elnet export --out out/w.gpkg`` both wrote
    ``out/w_skipped.csv``: the export replaced the evaluation's list of skipped pairs with its
    labels (and one that skipped nothing removed it). Now each list is tagged by what wrote it
    (``w_evaluate_skipped.csv``, ``w_gpkg_skipped.csv``), and each command's last line names
    its own. An older ``w_skipped.csv`` of an evaluation is removed by the next evaluation
    (which replaces it), not by the export."""
    pred, truth, _ = folders
    _truncate(pred / "3_pred.png")
    labels = tmp_path / "labels"
    labels.mkdir()
    for name in ("0_pred.png", "3_pred.png"):
        (labels / name).write_bytes((pred / name).read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    old = out / "w_skipped.csv"  # an earlier evaluation's list, under the name it had
    old.write_text("file,reason\nold.png,an earlier run's\n")
    assert main(["export", "--labels", str(labels), "--out", str(out / "w.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    exported = out / "w_gpkg_skipped.csv"
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"1 of 2 skipped, see {exported}"
    assert old.read_text() == "file,reason\nold.png,an earlier run's\n"  # not the export's
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress",
            "--csv", str(out / "w.csv")]  # fmt: skip
    assert main(argv) == 0
    evaluated = out / "w_evaluate_skipped.csv"
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"1 of 4 skipped, see {evaluated}"
    assert _header(evaluated) == ["file", "reason"] and "3_pred.png" in evaluated.read_text()
    assert _header(exported) == ["label", "reason"] and "3_pred.png" in exported.read_text()
    assert not old.exists()  # replaced by the evaluation's list of its new name
    assert sorted(p.name for p in out.glob("*skipped*")) == [evaluated.name, exported.name]
