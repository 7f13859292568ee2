"""Batch outcomes of ``elnet annotate`` / ``elnet enhance`` (docs/reliability.md): a run whose
every label is unusable (all-black tiles) is an error, exit 2, its outputs left as the record; a
filter that keeps no label is the user's choice (exit 0, with a warning); ``skipped.csv``'s
reason does not repeat the path of its first column; ``changed_frac`` is over valid pixels."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import write_png, write_tif

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _black(folder: Path, n: int) -> Path:
    for i in range(n):
        write_png(folder / f"b{i}.png", np.zeros((40, 40, 3), np.uint8))
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_annotate_a_folder_of_black_tiles_is_nothing_usable(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every label is rejected whatever the filter ('constant image'): it exited 0 with 'kept 0'.
    Now exit 2, one error line naming the folder, the counts, what to do and that the written
    files stay; a corrupt file beside them is counted on the same line."""
    imgs = _black(tmp_path / "tiles", 3)
    (imgs / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    argv = ["annotate", "--model", str(run["model"]), "--images", str(imgs), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {imgs}: nothing usable produced: all 3 labels were rejected")
    assert "(3 x constant image)" in line and "1 image skipped (cannot decode image" in line
    assert f"stay in {out} as the record" in line
    # the record: every label in rejected/, quality.csv, summary.json, skipped.csv
    assert sorted(p.name for p in (out / "rejected").iterdir()) == ["b0.png", "b1.png", "b2.png"]
    assert {r["quality_flag"] for r in _rows(out / "quality.csv")} == {"constant image"}
    assert (out / "summary.json").is_file() and (out / "skipped.csv").is_file()


def test_enhance_one_black_image_is_nothing_usable(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = _black(tmp_path / "tiles", 1)
    write_png(tmp_path / "coarse" / "b0.png", np.zeros((40, 40), np.uint8))
    out = tmp_path / "out"
    code = main(["enhance", "--model", str(run["model"]), "--images", str(imgs / "b0.png"),
                 "--labels", str(tmp_path / "coarse"), "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {imgs / 'b0.png'}: nothing usable produced: its label was")
    assert "(constant image)" in line and (out / "rejected" / "b0.png").is_file()


def test_annotate_with_some_usable_labels_still_succeeds(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = _black(tmp_path / "tiles", 2)
    good = sorted((run["data"] / "images").glob("*.png"))[0]
    (imgs / good.name).write_bytes(good.read_bytes())
    out = tmp_path / "out"
    assert main(["annotate", "--model", str(run["model"]), "--images", str(imgs), "--out",
                 str(out), "--no-progress"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "rejected as unusable, whatever the filter: 2 x constant image" in said


def test_a_filter_that_keeps_no_label_exits_0_and_warns(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--min-quality above every score: the labels are usable, the user's filter left them all
    in rejected/. Exit 0 as before, but now with a warning giving the best score (there was
    only 'threshold 0.990' and 'kept 0')."""
    out = tmp_path / "out"
    assert main(["annotate", "--model", str(run["model"]), "--images",
                 str(run["data"] / "images"), "--out", str(out), "--no-progress",
                 "--min-quality", "0.999"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    best = max(float(r["predicted_iou"]) for r in _rows(out / "quality.csv"))
    assert (
        f"warning: the filter kept no label (quality >= 0.999; the best scored {best:.3f}): "
        "all 8 are in rejected/; lower --min-quality / --target-precision" in err
    )


def test_skipped_csv_reason_does_not_repeat_the_path(
    run, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reason column said '/x/imgs/c.png: cannot decode ...' beside the file column
    '/x/imgs/c.png'. A reason about another file keeps its path (enhance: the coarse label of the
    same name), in the CSV and on the warning line (which said the image could not be decoded)."""
    imgs = tmp_path / "imgs"
    good = sorted((run["data"] / "images").glob("*.png"))[:2]
    for g in good:
        (imgs / g.name).parent.mkdir(parents=True, exist_ok=True)
        (imgs / g.name).write_bytes(g.read_bytes())
    (imgs / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "a"
    assert main(["annotate", "--model", str(run["model"]), "--images", str(imgs), "--out",
                 str(out), "--no-progress"]) == 0  # fmt: skip
    rows = _rows(out / "skipped.csv")
    assert [r["image"] for r in rows] == [str(imgs / "c.png")]
    assert rows[0]["reason"].startswith("cannot decode image"), rows[0]["reason"]
    # enhance: the image is fine, its coarse label (another file of the same name) is not
    labels = tmp_path / "labels"
    write_png(labels / good[0].name, np.zeros((40, 40), np.uint8))
    (labels / good[1].name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (imgs / "c.png").unlink()
    caplog.clear()
    assert main(["enhance", "--model", str(run["model"]), "--images", str(imgs), "--labels",
                 str(labels), "--out", str(tmp_path / "e"), "--no-progress"]) == 0  # fmt: skip
    rows = _rows(tmp_path / "e" / "skipped.csv")
    assert [r["image"] for r in rows] == [str(imgs / good[1].name)]
    assert rows[0]["reason"].startswith(f"{labels / good[1].name}: cannot decode image")
    warned = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert warned == [f"skipping {imgs / good[1].name}: {rows[0]['reason']}"]


def test_changed_frac_is_over_valid_pixels(run, tmp_path: Path) -> None:
    """A GeoTIFF whose top 10 of 40 rows are nodata, its coarse label all foreground: the
    changed share is over the 30 x 40 valid pixels (it was over 40 x 40, nodata included)."""
    from sam2elnet.engine.infer import enhance_folder

    src = sorted((run["data"] / "images").glob("*.png"))[0]
    rgb = cv2.imread(str(src))[:, :, ::-1].astype(np.float32)
    data = np.ascontiguousarray(np.moveaxis(rgb, -1, 0))
    h, w = data.shape[1:]
    data[:, :10] = -9999
    write_tif(tmp_path / "imgs" / "a.tif", data, nodata=-9999)
    write_png(tmp_path / "coarse" / "a.png", np.full((h, w), 255, np.uint8))
    res = enhance_folder(run["model"], tmp_path / "imgs", tmp_path / "coarse", tmp_path / "out",
                         progress=False, new_objects="keep")  # fmt: skip
    row = res.rows[0]
    changed = row["added_px"] + row["removed_px"]
    assert changed > 0
    assert row["changed_frac"] == pytest.approx(changed / ((h - 10) * w))


def test_change_stats_leave_nodata_out() -> None:
    from sam2elnet.engine.change_maps import change_stats

    coarse = np.ones((4, 5), bool)
    mask = np.zeros((4, 5), bool)
    nodata = np.zeros((4, 5), bool)
    nodata[0] = True
    assert change_stats(coarse, mask, nodata) == {
        "added_px": 0, "removed_px": 15, "changed_frac": 1.0,
    }  # fmt: skip
    assert change_stats(coarse, mask, np.ones((4, 5), bool))["changed_frac"] == 0.0


def test_large_images_on_the_window_path_get_the_quality_flag(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images over --max-memory go window by window (FolderJob.run_scene): a black one got no
    quality_flag and was kept, so a folder of them exited 0. Now flagged, score 0, rejected/,
    counted: with a usable image beside it exit 0 and the count line; alone, exit 2."""
    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.errors import DataError

    pred = Predictor.from_file(run["model"], precision="32", batch_size=4)
    imgs = tmp_path / "imgs"
    write_tif(imgs / "a_black.tif", np.zeros((3, 48, 48), np.uint8))
    src = sorted((run["data"] / "images").glob("*.png"))[0]
    rgb = cv2.imread(str(src))[:, :, ::-1]
    write_tif(imgs / "b_real.tif", np.ascontiguousarray(np.moveaxis(rgb, -1, 0)))
    kw = {"progress": False, "predictor": pred, "tile": 32, "overlap": 8}
    kw["max_memory"] = pred.whole_bytes(32 * 32)  # every image goes window by window
    res = annotate_folder(run["model"], imgs, tmp_path / "out", **kw)
    assert (tmp_path / "out" / "tiles" / "a_black.gpkg").is_file()  # it took the window path
    rows = {Path(r["image"]).name: r for r in res.rows}
    assert rows["a_black.tif"]["quality_flag"] == "constant image"
    assert rows["a_black.tif"]["kept"] is False and rows["a_black.tif"]["predicted_iou"] == 0.0
    assert rows["a_black.tif"]["label"] == "rejected/a_black.tif"
    assert rows["b_real.tif"]["quality_flag"] == ""
    assert {r["quality_flag"] for r in _rows(tmp_path / "out" / "quality.csv")} == {
        "constant image",
        "",
    }
    (imgs / "b_real.tif").unlink()
    with pytest.raises(DataError, match=r"nothing usable produced: its label was rejected .*"
                       r"\(constant image\)"):  # fmt: skip
        annotate_folder(run["model"], imgs, tmp_path / "out2", **kw)
    assert (tmp_path / "out2" / "rejected" / "a_black.tif").is_file()


def test_the_none_kept_warning_skips_scores_a_resumed_run_left_as_nan() -> None:
    """Rows reused by --resume hold quality.csv's text: predicted_iou "nan" (an image the earlier
    run could not score) came first, max() returned it and the warning said "the best scored
    nan". Unusable rows stay out too; no finite score at all: no "best scored" part."""
    from types import SimpleNamespace

    from sam2elnet.cli.job_summary import none_kept_line

    summary = {"n_kept": 0, "n_images": 4, "threshold": 0.9}
    rows = [
        {"predicted_iou": "nan", "quality_flag": ""},
        {"predicted_iou": "0.412", "quality_flag": ""},
        {"predicted_iou": "0.95", "quality_flag": "constant image"},
        {"predicted_iou": "", "quality_flag": ""},
    ]
    line = none_kept_line(SimpleNamespace(summary=summary, rows=rows))
    assert line is not None and "(quality >= 0.900; the best scored 0.412)" in line
    only_nan = SimpleNamespace(summary=summary, rows=rows[:1])
    assert "(quality >= 0.900): all 4 are in rejected/" in str(none_kept_line(only_nan))
