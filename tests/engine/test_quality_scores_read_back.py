"""A quality score read back from a table is used only when it is a number in [0, 1].

``1.5``, ``-0.2``, ``inf`` / ``-inf`` or text in the score column of a ``quality.csv`` is an
unusable predicted IoU: every reader treats it as no score (NaN, like a blank or ``nan`` cell,
which elnet writes for an unfitted evaluator), with one warning naming the table, a row and the
allowed range (data.runfolder.read_quality_table); a
resumed folder job redoes such rows. Also: annotate's output folder may be the images folder
itself and be resumed (engine.folder_inputs.check_job_out does not refuse it).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import blob_mask, write_png

from sam2elnet.data.runfolder import (
    parse_score,
    quality_by_key,
    quality_by_stem,
    read_quality_table,
)

TABLE = (
    "image,label,predicted_iou\n"
    "a.png,labels/a.png,0.8\n"
    "b.png,labels/b.png,inf\n"
    "c.png,labels/c.png,-inf\n"
    "d.png,labels/d.png,\n"
    "e.png,labels/e.png,nan\n"
    "f.png,labels/f.png,high\n"
    "g.png,labels/g.png,Infinity\n"
)


def test_parse_score_rules() -> None:
    assert parse_score("0.25") == (0.25, "")
    for blank in ("", "nan", "NaN"):
        v, note = parse_score(blank)
        assert math.isnan(v) and note == ""
    for text, what in (("inf", "infinite"), ("-inf", "infinite"), ("high", "not a number")):
        v, note = parse_score(text)
        assert math.isnan(v) and note == f"score {text!r} is {what}; treated as no score"
    assert parse_score("0") == (0.0, "") and parse_score("1") == (1.0, "")  # the ends count
    for text in ("1.5", "-0.2", "87"):  # not an IoU (87: a percentage)
        v, note = parse_score(text)
        assert math.isnan(v)
        assert note == f"score {text!r} is outside [0, 1] (a predicted IoU); treated as no score"


def test_scores_outside_0_1_are_refused_by_every_reader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A foreign table's 1.5 / -0.2 is no predicted IoU: one warning naming the table, the first
    such row (name and line) and the range; the export's and the evaluation's lookups agree."""
    from sam2elnet.export.labels import read_quality_csv

    q = tmp_path / "quality.csv"
    q.write_text("image,quality\na.png,0.25\nb.png,1.5\nc.png,-0.2\nd.png,1\n")
    with caplog.at_level("WARNING", logger="sam2elnet.data.runfolder"):
        recs = read_quality_table(q)
    assert [r["predicted_iou"] for r in recs][::3] == [0.25, 1.0]
    assert math.isnan(recs[1]["predicted_iou"]) and math.isnan(recs[2]["predicted_iou"])
    assert [r.getMessage() for r in caplog.records] == [
        f"{q}: 2 rows have a quality that is not a number in [0, 1] (e.g. '1.5' for b.png on "
        "line 3); they are treated as having no score (as a blank or nan one)"
    ]
    assert read_quality_csv(q) == {"a": 0.25, "d": 1.0}
    assert set(quality_by_key(q)) == {"a", "b", "c", "d"}
    assert math.isnan(quality_by_key(q)["b"]["predicted_iou"])


def test_read_quality_table_treats_non_finite_scores_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    q = tmp_path / "quality.csv"
    q.write_text(TABLE)
    with caplog.at_level("WARNING", logger="sam2elnet.data.runfolder"):
        recs = read_quality_table(q)
    scores = [r["predicted_iou"] for r in recs]
    assert scores[0] == 0.8 and all(math.isnan(s) for s in scores[1:])
    assert [bool(r["score_note"]) for r in recs] == [False, True, True, False, False, True, True]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"{q}: 4 rows have a predicted_iou that is not a number in [0, 1] (e.g. 'inf' for "
        "labels/b.png on line 3); they are treated as having no score (as a blank or nan one)"
    ]
    # the export's lookup keeps finite scores only; evaluation's carries NaN (no score)
    assert quality_by_stem(q) == {"a": 0.8}
    by_key = quality_by_key(q)
    assert by_key["a"]["predicted_iou"] == 0.8 and math.isnan(by_key["b"]["predicted_iou"])


def test_export_and_evaluate_ignore_an_infinite_score(tmp_path: Path) -> None:
    """The export reads no score for ``inf``; evaluation correlates only the finite scores."""
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.export.labels import read_quality_csv

    pred, truth = tmp_path / "pred", tmp_path / "truth"
    rows = ["image,label,predicted_iou"]
    for i in range(4):
        m = blob_mask(32, i).astype(np.uint8) * 255
        write_png(truth / f"img{i}.png", m)
        write_png(pred / f"img{i}.png", np.roll(m, i, axis=1))
        rows.append(f"img{i}.png,img{i}.png,{['0.9', '0.7', 'inf', '-inf'][i]}")
    (pred / "quality.csv").write_text("\n".join(rows) + "\n")
    assert read_quality_csv(pred / "quality.csv") == {"img0": 0.9, "img1": 0.7}
    res = evaluate_folders(pred, truth, progress=False)
    got = {Path(r.name).stem: r.predicted_iou for r in res.images}
    assert got["img0"] == 0.9 and got["img1"] == 0.7
    assert math.isnan(got["img2"]) and math.isnan(got["img3"])
    assert res.quality is not None and res.quality.n == 2


def test_annotate_into_the_images_folder_resumes_and_redoes_infinite_rows(
    run: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.engine.predictor import Predictor

    pred = Predictor.from_file(run["model"], precision="32", batch_size=4)
    src = tmp_path / "imgs"
    src.mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    res = annotate_folder(run["model"], src, src, progress=False, predictor=pred)
    assert len(res.rows) == 3 and len(list((src / "labels").glob("*.png"))) == 3
    # an edited score: inf is no score of ours, so resume predicts that image again
    q = src / "quality.csv"
    rows = list(csv.DictReader(q.open()))
    rows[1]["predicted_iou"] = "inf"
    with q.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    seen: list[int] = []
    real = Predictor.predict

    def counting(self: Predictor, images, coarse=None, valid=None):  # type: ignore[no-untyped-def]
        seen.append(len(images))
        return real(self, images, coarse, valid)

    with pytest.MonkeyPatch.context() as mp, caplog.at_level("WARNING"):
        mp.setattr(Predictor, "predict", counting)
        res2 = annotate_folder(run["model"], src, src, resume=True, progress=False, predictor=pred)
    assert seen == [1] and len(res2.rows) == 3
    assert all(math.isfinite(float(r["predicted_iou"])) for r in res2.rows)
    assert any("1 row of" in r.getMessage() and "'inf'" in r.getMessage() for r in caplog.records)
