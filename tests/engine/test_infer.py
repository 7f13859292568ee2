"""Folder jobs (annotate): outputs, filtering by predicted quality, resume, closing lines,
summaries and reports.

enhance's outputs and coarse labels: test_infer_enhance.py; inputs (GeoTIFFs, band counts,
large scenes, folders, defaults): test_infer_inputs.py; the model alone (Predictor, model files,
thresholds): test_predictor.py; vector coarse labels of enhance: test_enhance_vector.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import no_temp_files, tiled_scene

from sam2elnet.engine.infer import annotate_folder, enhance_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError
from sam2elnet.model.quality_features import FEATURE_NAMES


def test_annotate_filters_into_kept_and_rejected(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images = run["data"] / "images"
    res = annotate_folder(
        run["model"],
        images,
        tmp_path / "a",
        min_quality=0.5,
        save_prob=True,
        progress=False,
        predictor=pred,
    )
    rows = list(csv.DictReader((tmp_path / "a" / "quality.csv").open()))
    assert len(rows) == 8
    assert {"image", "label", "predicted_iou", "kept", *FEATURE_NAMES} <= set(rows[0])
    for r in rows:
        q = float(r["predicted_iou"])
        assert 0 <= q <= 1
        kept = r["kept"] == "True"
        assert kept == (q >= 0.5)
        assert r["label"].startswith("labels/" if kept else "rejected/")
        assert (tmp_path / "a" / r["label"]).is_file()
    n_kept = sum(r["kept"] == "True" for r in rows)
    assert len(list((tmp_path / "a" / "labels").glob("*.png")) if n_kept else []) == n_kept
    assert res.summary["n_kept"] == n_kept and res.summary["n_rejected"] == 8 - n_kept
    assert len(list((tmp_path / "a" / "prob").glob("*.png"))) == 8
    mask = cv2.imread(str(tmp_path / "a" / rows[0]["label"]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0, 255}
    no_temp_files(tmp_path / "a")


def test_target_precision_records_threshold(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    res = annotate_folder(
        run["model"],
        run["data"] / "images",
        tmp_path / "a",
        target_precision=0.5,
        tau=0.3,
        progress=False,
        predictor=pred,
    )
    tp = res.summary["filter"]["target_precision"]
    assert tp["target_precision"] == 0.5 and tp["tau"] == 0.3 and "recall" in tp
    assert res.summary["threshold"] == pytest.approx(tp["threshold"])


def test_annotate_skips_unreadable_and_resumes(
    run: dict[str, Path],
    pred: Predictor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    with caplog.at_level("WARNING"):
        res = annotate_folder(run["model"], src, tmp_path / "a", progress=False, predictor=pred)
    assert any(
        "skipping" in r.getMessage() and "broken.png" in r.getMessage() for r in caplog.records
    )
    assert len(res.rows) == 3 and len(res.skipped) == 1
    skipped = list(csv.DictReader((tmp_path / "a" / "skipped.csv").open()))
    assert skipped[0]["image"].endswith("broken.png") and skipped[0]["reason"]
    # resume: the three finished images are not predicted again, one new image is
    (src / "broken.png").unlink()
    extra = sorted((run["data"] / "images").glob("*.png"))[3]
    (src / extra.name).write_bytes(extra.read_bytes())
    seen: list[int] = []
    real = Predictor.predict

    def counting(self: Predictor, images, coarse=None, valid=None):  # type: ignore[no-untyped-def]
        seen.append(len(images))
        return real(self, images, coarse, valid)

    monkeypatch.setattr(Predictor, "predict", counting)
    res2 = annotate_folder(
        run["model"], src, tmp_path / "a", resume=True, progress=False, predictor=pred
    )
    assert seen == [1] and len(res2.rows) == 4
    assert len(list(csv.DictReader((tmp_path / "a" / "quality.csv").open()))) == 4
    assert not (tmp_path / "a" / "skipped.csv").exists()  # nothing skipped: the old list goes
    # the summary says what was reused ('annotated 4 images in 0.3 s' hid that 3 were not redone)
    assert res.summary["n_resumed"] == 0 and res2.summary["n_resumed"] == 3
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["n_resumed"] == 3
    from sam2elnet.cli.job_summary import print_folder

    print_folder(res2, "annotated")
    assert capsys.readouterr().out.startswith(
        "annotated 4 images (3 done by the earlier run, --resume) in "
    )


def test_the_closing_line_says_what_its_time_covers(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'annotate: 3/3 img in 4.6 s' then 'annotated 3 images in 11.7 s' read as two
    measurements of one thing: the closing line now says the total is from the start, with the
    model load and the images' time (recorded in summary.json); older summaries keep one time."""
    import re

    from sam2elnet.cli.job_summary import print_folder, took

    src = tmp_path / "imgs"
    src.mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    res = annotate_folder(run["model"], src, tmp_path / "a", progress=False)  # loads the model
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["seconds_model_load"] > 0 and s["seconds_images"] > 0
    assert s["seconds_model_load"] + s["seconds_images"] <= s["seconds"]
    print_folder(res, "annotated")
    m = re.match(
        r"annotated 3 images in (\d+\.\d) s in all \(model load (\d+\.\d) s, images "
        r"(\d+\.\d) s\): kept ",
        capsys.readouterr().out,
    )
    assert m, "the closing line does not split its time"
    want = [f"{s[k]:.1f}" for k in ("seconds", "seconds_model_load", "seconds_images")]
    assert list(m.groups()) == want
    assert took({"seconds": 2.04}) == "in 2.0 s"  # a summary.json written before


def test_nothing_produced_names_the_skip_list_it_leaves(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """Was: an annotate run whose every image was skipped said "nothing produced" without
    saying where the list of skipped images went (OUT/skipped.csv of an --out that existed).
    Now the error line ends with its path; a folder the run made is removed, list and all, and
    the line names none."""
    src = tmp_path / "imgs"
    src.mkdir()
    for name in ("a.png", "b.png"):
        (src / name).write_bytes(b"\x89PNG not really")
    out = tmp_path / "mine"
    out.mkdir()
    with pytest.raises(DataError) as err:
        annotate_folder(run["model"], src, out, progress=False, predictor=pred)
    listed = out / "skipped.csv"
    assert str(err.value).endswith(
        f"; fix or remove the files and re-run (listed with the reasons in {listed})"
    ), err.value
    assert [Path(r["image"]).name for r in csv.DictReader(listed.open())] == ["a.png", "b.png"]
    new = tmp_path / "new"
    with pytest.raises(DataError) as err:
        annotate_folder(run["model"], src, new, progress=False, predictor=pred)
    assert str(err.value).endswith("; fix or remove the files and re-run") and not new.exists()


def test_resume_with_another_threshold_refilters_the_reused_labels(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--resume --min-quality Q2 after a run at Q1 printed and recorded Q2 but kept the Q1
    split of labels/ and rejected/ (sos-dev: 'threshold 0.800', 'kept 6' of which 3 < 0.8).
    The reused rows are now decided under Q2 and their files moved, without predicting again."""
    images = run["data"] / "images"
    out = tmp_path / "a"
    res = annotate_folder(run["model"], images, out, progress=False, predictor=pred)
    scores = sorted(float(r["predicted_iou"]) for r in res.rows)
    assert scores[0] < scores[1] and scores[3] < scores[4], scores
    q = (scores[3] + scores[4]) / 2  # half of the 8 labels above, half below

    def no_predict(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("resumed images must not be predicted again")

    monkeypatch.setattr(Predictor, "predict", no_predict)
    for threshold, n_kept in ((q, 4), (None, 8), ((scores[0] + scores[1]) / 2, 7)):
        res = annotate_folder(
            run["model"], images, out, resume=True, min_quality=threshold, progress=False,
            predictor=pred,
        )  # fmt: skip
        rows = list(csv.DictReader((out / "quality.csv").open()))
        kept = {Path(r["label"]).name for r in rows if r["kept"] == "True"}
        assert len(kept) == n_kept == res.summary["n_kept"]
        assert {p.name for p in (out / "labels").glob("*.png")} == kept
        rejected = {p.name for p in (out / "rejected").glob("*.png")} if n_kept < 8 else set()
        assert len(rejected) == 8 - n_kept and not kept & rejected
        for r in rows:
            assert (out / r["label"]).is_file()
            assert (r["kept"] == "True") == (
                threshold is None or float(r["predicted_iou"]) >= threshold
            )


def test_report_is_written(run: dict[str, Path], pred: Predictor, tmp_path: Path) -> None:
    from sam2elnet.pipeline.jobs import annotate_folder

    res = annotate_folder(
        run["model"],
        run["data"] / "images",
        tmp_path / "a",
        report=True,
        progress=False,
        predictor=pred,
    )
    html = (tmp_path / "a" / "report.html").read_text()
    assert res.summary["report"].endswith("report.html") and "s03.png" in html


def test_annotate_and_enhance_summaries_keep_the_entries_they_share(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """summary.json's entries of the job's model and options, shared by annotate and enhance and
    written in one place for both: their values, and their order (the shared ones, the task's
    own, then ``warp``) as each task wrote them itself."""
    import geopandas as gpd
    from shapely.geometry import box

    from sam2elnet.engine.coarse_rule import CoarseRule
    from sam2elnet.engine.runtime import resolve_precision

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    tiled_scene(scene, run["data"] / "images" / "s00.png", size=64)
    labels = tmp_path / "coarse.geojson"
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(labels)
    a = annotate_folder(run["model"], scene, tmp_path / "a", progress=False, predictor=pred)
    e = enhance_folder(
        run["model"], scene, labels, tmp_path / "e", progress=False, predictor=pred,
        new_objects="keep", max_growth=3,
    )  # fmt: skip
    shared = ["task", "backend", "model", "model_version", "domain", "filter"]
    shared += ["window"]  # the windows of images too large to predict whole (None: none)
    shared += ["precision_option", "precision_resolved"]
    own = ["coarse_rule", "n_missing_labels", "missing_labels"]
    for res, task, entries in ((a, "annotate", shared), (e, "enhance", shared + own)):
        keys = list(res.summary)
        start = keys.index("task")
        assert keys[start : start + len(entries) + 1] == [*entries, "warp"], task
        on_disk = json.loads((res.out_dir / "summary.json").read_text())
        assert list(on_disk) == keys and on_disk["task"] == task
        assert res.summary["model"] == a.summary["model"]
        assert res.summary["backend"] == {"name": "local"}
        assert res.summary["model_version"].startswith(f"{Path(run['model']).name}@")
        # the ready-made float32 predictor: "auto" stays the option where auto means float32
        # (no native bf16), else the record says "32" (announce_precision)
        want = "auto" if resolve_precision("auto") == "32" else "32"
        assert res.summary["precision_option"] == want
        assert res.summary["precision_resolved"] == "32"
        assert res.summary["warp"] is None and res.summary["threshold"] is None
    assert e.summary["model_version"] == a.summary["model_version"]
    assert e.summary["coarse_rule"] == CoarseRule("keep", 3).as_dict()
    assert e.summary["n_missing_labels"] == 0 and e.summary["missing_labels"] == []
