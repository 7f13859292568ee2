"""``elnet cv``: k-fold and cross-domain cross-validation on tiny synthetic road images."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_roads import make_road_dataset

from sam2elnet.data.domain import appearance_split
from sam2elnet.engine.runtime import resolve_precision
from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.crossval import ROAD_KEYS, CVConfig, run_cv
from sam2elnet.pipeline.crossval_plan import kfold_ids

TRAIN = {"size": "micro", "epochs": 1, "image_size": 48, "batch_size": 2, "fit_quality": False}


def _cfg(data: Path, out: Path, **kw: Any) -> CVConfig:
    base: dict[str, Any] = {"folds": 3, "train": dict(TRAIN), "progress": False}
    base.update(kw)
    return CVConfig(data=data, out=out, **base)


@pytest.fixture(scope="module")
def roads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_road_dataset(tmp_path_factory.mktemp("cv") / "data", n=12, size=48, two_looks=True)


def test_kfold_ids_partition_the_set() -> None:
    ids = [f"i{k:02d}" for k in range(11)]
    folds = kfold_ids(ids, 3, seed=0)
    assert sorted(x for f in folds for x in f) == ids
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    assert folds == kfold_ids(list(reversed(ids)), 3, seed=0)  # order of input does not matter
    assert folds != kfold_ids(ids, 3, seed=1)
    with pytest.raises(DataError, match="at least 10"):
        kfold_ids(ids[:9], 5, seed=0)


def test_cv_options_are_checked_against_one_declaration(tmp_path: Path, capsys) -> None:
    """CVConfig declares the ranges; ``elnet cv`` refuses a value outside them in one line
    (exit 2) before any work."""
    from pydantic import ValidationError

    from sam2elnet.cli import main

    with pytest.raises(ValidationError):
        CVConfig(data=tmp_path, out=tmp_path / "o", folds=1)
    out = tmp_path / "o"
    assert main(["cv", "--data", str(tmp_path), "--out", str(out), "--folds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: invalid value for --folds: 1 "
        "(input should be greater than or equal to 2; allowed: 2 <= x <= 20)"
    )
    assert not out.exists()
    cfg = CVConfig(data=tmp_path, out=out, train={"epochs": 0})
    with pytest.raises(UserError, match="invalid value for --epochs: 0"):
        cfg.validate()  # the training options are checked by TrainConfig's declaration
    assert CVConfig(data=tmp_path, out=out).folds == 5


def test_appearance_split_finds_the_two_looks(roads: Path) -> None:
    images = {p.stem: p for p in (roads / "images").glob("*.png")}
    split = appearance_split(images)
    green = [f"r{k:02d}" for k in range(6)]  # make_road_dataset: first half green, second desert
    desert = [f"r{k:02d}" for k in range(6, 12)]
    assert split.groups == (green, desert)
    assert split.means[1]["brightness"] > split.means[0]["brightness"] + 0.1
    assert split.separation > 1.5
    assert "group A (6 images)" in split.describe()


def _count_scorings(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record the prediction folder of every evaluate_folders call (cv and its reports import
    it from sam2elnet.engine.evaluate when they run)."""
    import sam2elnet.engine.evaluate as ev

    calls: list[Path] = []
    real = ev.evaluate_folders

    def counted(pred_dir: Any, *a: Any, **kw: Any) -> Any:
        calls.append(Path(pred_dir))
        return real(pred_dir, *a, **kw)

    monkeypatch.setattr(ev, "evaluate_folders", counted)
    return calls


def test_kfold_cv_reports_mean_and_std_and_resumes(
    roads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cv"
    lines: list[str] = []
    scored = _count_scorings(monkeypatch)
    r = run_cv(_cfg(roads, out, report=True), echo=lines.append)
    # --report draws each fold's test predictions as they were scored: one scoring per test set
    assert sorted(scored) == [out / "folds" / f"fold-{k}" / "pred-test" for k in (1, 2, 3)]
    assert r["domain"] == "roads" and r["folds_done"] == r["folds_total"] == 3
    # --report: the run's page lists every image once (k-fold tests each exactly once) with
    # its fold, and each fold has its training and test-image pages
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"report: {out / 'report.html'}" in lines
    for f in r["folds"]:
        fold = out / "folds" / f["fold"]
        assert (fold / "run" / "report.html").is_file()
        test_page = (fold / "pred-test" / "report.html").read_text(encoding="utf-8")
        for i in f["tests"]["test"]["ids"]:
            assert i in test_page and i in page
        assert f"{f['fold']}, test images: {fold / 'pred-test' / 'report.html'}" in page
    assert "Per-image table (12 images)" in page and "Test IoU per fold" in page
    # cv labels its test images without a quality filter: no alert about one not having run
    assert "No quality filter ran" not in page and "Test IoU per fold" in page
    assert "--min-quality" not in page
    assert "No quality filter ran" not in test_page and "--min-quality" not in test_page
    assert "only 3 of 3" not in page
    tests = [f["tests"]["test"] for f in r["folds"]]
    test_ids = [x for t in tests for x in t["ids"]]
    assert sorted(test_ids) == sorted(p.stem for p in (roads / "masks").glob("*.png"))
    for f in r["folds"]:  # never tested on a training image
        assert not set(f["train_ids"]) & set(f["tests"]["test"]["ids"])
    s = r["summary"]["test"]
    for key in ("iou", "f1", *ROAD_KEYS[:3]):
        vals = [t[key] for t in tests]
        assert s[key]["mean"] == pytest.approx(np.mean(vals))
        assert s[key]["std"] == pytest.approx(np.std(vals, ddof=1))
        assert 0.0 <= s[key]["mean"] <= 1.0
    assert s["quality_spearman"]["mean"] is None  # no evaluator fitted: no Spearman claimed
    md = (out / "cv.md").read_text()
    assert "3-fold cross-validation" in md and "road quality" in md and " ± " in md
    assert json.loads((out / "cv.json").read_text())["summary"] == r["summary"]
    # the precision option and what ran, apart from the "precision" metric
    ran = resolve_precision("auto", "cpu")
    assert (r["precision_option"], r["precision_resolved"]) == ("auto", ran)
    assert "precision" not in r["train"]
    assert f"- Precision of the folds' training: {ran} (--precision auto; " in md
    for f in r["folds"]:  # what each fold's training ran with, from its model file
        assert (f["precision_option"], f["precision_resolved"]) == ("auto", ran)
    assert any(x.startswith(f"precision: {ran} (") for x in lines)  # each fold's training says it
    # the trunk scale each fold's network was built with: roads, auto -> full resolution
    assert r["trunk_scale"] == 1 and [f["trunk_scale"] for f in r["folds"]] == [1, 1, 1]
    assert (
        "- Trunk of the folds' networks: trunk at full resolution (1) (--trunk-scale auto; " in md
    )
    ident = json.loads((out / "cv_config.json").read_text())
    assert ident["resolved"] == {
        "domain": "roads",
        "trunk_scale": 1,
        "epochs_auto": True,
        "weights_path": None,
        "weights_sha256": None,
    }
    # what happened, in each line: the flat dataset has no split folders, each fold's link
    # folder has none by design (named as the fold's), the domain was detected once by cv
    assert lines[0] == "no split folders found; cross-validation on all 12 pairs"
    assert sum("no split folders found" in x for x in lines) == 1
    assert "cross-validation fold-1: 8 labelled pairs (the fold's training images of " in (
        "\n".join(lines)
    )
    assert "fold-1 (1/3): 8 images in the fold's training pool" in lines
    assert not any("fold fold-" in x or "training on 8 images" in x for x in lines), lines
    dom = [x for x in lines if x.startswith("domain: ")]
    assert dom[0].startswith("domain: roads (thin, connected labels: median elongation")
    assert (
        len(dom) == 4
        and all(
            x.startswith("domain: roads (decided once by elnet cv for every fold: thin, connected")
            # detected: the hint says how to override (run_cv: the argument and the flag)
            and "; domain='roads'|'other' (--domain roads|other) overrides)" in x
            for x in dom[1:]
        )
    ), dom
    assert not any("given: --domain" in x for x in lines)

    # resumable per fold: finished folds are reused, a missing one is run again
    done = out / "folds" / "fold-1" / "result.json"
    stamp = done.stat().st_mtime_ns
    (out / "folds" / "fold-3" / "result.json").unlink()
    (out / "folds" / "fold-3" / "pred-test" / "report.html").unlink()
    kept = out / "folds" / "fold-1" / "pred-test" / "report.html"
    kept_stamp = kept.stat().st_mtime_ns
    lines.clear()
    scored.clear()
    r2 = run_cv(_cfg(roads, out, report=True), echo=lines.append)
    # fold-3 scored once as it ran; the reused folds once each for the report
    assert sorted(scored) == [out / "folds" / f"fold-{k}" / "pred-test" for k in (1, 2, 3)]
    assert done.stat().st_mtime_ns == stamp
    # a fold's reports are written once: the missing one again, the others kept
    assert kept.stat().st_mtime_ns == kept_stamp
    assert (out / "folds" / "fold-3" / "pred-test" / "report.html").is_file()
    assert any(x.startswith("fold-1: done before") for x in lines)
    assert any(x.startswith("fold-3: test IoU") for x in lines)
    assert r2["folds"][0] == r["folds"][0]
    # the same folder with other settings is refused, naming what changed
    with pytest.raises(UserError, match=r"other settings: --folds 4 \(saved: 3\); "):
        run_cv(_cfg(roads, out, folds=4))


def test_cv_log_lines_say_what_happened_with_splits_and_a_given_domain(tmp_path: Path) -> None:
    """A dataset with split folders and ``--domain roads``: the lines name the splits found and
    used, the domain as given on the command line, and each fold's training pool as the fold's
    (its link folder has no split folders by design; it used to say "no split folders found"
    and "given: --domain, or elnet cv for all folds")."""
    data = tmp_path / "data"
    make_road_dataset(data / "train", n=12, size=48)
    make_road_dataset(data / "test", n=4, size=48, seed=1)
    lines: list[str] = []
    cfg = _cfg(data, tmp_path / "cv", max_folds=1, domain="roads")
    r = run_cv(cfg, echo=lines.append)
    assert r["domain"] == "roads" and r["domain_reason"] == "given: --domain roads"
    assert lines[:4] == [
        "splits found: train (12), test (4); cross-validation on: train (12 pairs)",
        "modality: optical (8 of 8 images looked at: 3 differing bands (colour / multispectral); "
        "--modality sar|optical overrides)",
        "domain: roads (given: --domain roads)",
        "fold-1 (1/1): 8 images in the fold's training pool",
    ]
    assert lines[4] == (
        f"cross-validation fold-1: 8 labelled pairs (the fold's training images of {data}): "
        "training on 7, validation 1"
    )
    fold_domain = next(x for x in lines[5:] if x.startswith("domain: "))
    # given, so no "--domain roads|other overrides" hint
    assert fold_domain.startswith(
        "domain: roads (decided once by elnet cv for every fold: given: --domain roads), "
        "road measures in validation; no topology loss (auto:"
    ), fold_domain
    assert not any("no split folders" in x or "given: --domain," in x for x in lines)


def test_a_domain_given_to_train_is_named_as_given(tmp_path: Path) -> None:
    """``elnet train --domain roads`` (no cv): the reason is the option, not cv; a data folder
    whose cv record holds another domain does not borrow its reason."""
    from types import SimpleNamespace

    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train_data import training_domain

    cfg = TrainConfig(data=tmp_path, out=tmp_path / "o", domain="roads")
    plain = SimpleNamespace(meta={})
    assert training_domain(cfg, plain, []).reason == "given: --domain roads"
    other = SimpleNamespace(meta={"cv": {"domain": "other", "domain_reason": "SAR data"}})
    assert training_domain(cfg, other, []).reason == "given: --domain roads"
    same = SimpleNamespace(meta={"cv": {"domain": "roads", "domain_reason": "CHN6-CUG layout"}})
    got = training_domain(cfg, same, []).reason
    assert got == "decided once by elnet cv for every fold: CHN6-CUG layout"


def test_cross_domain_cv_measures_the_gap(roads: Path, tmp_path: Path) -> None:
    out = tmp_path / "xd"
    lines: list[str] = []
    r = run_cv(_cfg(roads, out, mode="cross-domain", max_folds=None, report=True), lines.append)
    # each fold's line: test sets in the field's words, road quality of each (it read
    # "in_domain IoU 0.135, cross_domain IoU 0.206, road quality 0.086": of which?)
    ind, cross = r["folds"][0]["tests"]["in_domain"], r["folds"][0]["tests"]["cross_domain"]
    assert any(
        x.startswith(
            f"fold A-to-B: in-domain IoU {ind['iou']:.3f}, road quality {ind['road_quality']:.3f}; "
            f"cross-domain IoU {cross['iou']:.3f}, road quality {cross['road_quality']:.3f} ("
        )
        for x in lines
    ), lines
    # an image is tested in both directions: the run's page names it with fold and test set
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "A-to-B/cross_domain/" in page and "B-to-A/in_domain/" in page
    assert "The two appearance groups (groups.png)" in page
    assert "in-domain minus cross-domain IoU" in page
    assert [f["fold"] for f in r["folds"]] == ["A-to-B", "B-to-A"]
    groups = json.loads((out / "groups.json").read_text())
    assert groups["A"] == [f"r{k:02d}" for k in range(6)]
    assert (out / "groups.png").is_file()
    for f, own, other in ((r["folds"][0], "A", "B"), (r["folds"][1], "B", "A")):
        ind, cross = f["tests"]["in_domain"], f["tests"]["cross_domain"]
        assert set(f["train_ids"]) | set(ind["ids"]) == set(groups[own])
        assert not set(f["train_ids"]) & set(ind["ids"])
        assert cross["ids"] == groups[other]
    gaps = [f["tests"]["in_domain"]["iou"] - f["tests"]["cross_domain"]["iou"] for f in r["folds"]]
    assert r["summary"]["iou_gap"]["mean"] == pytest.approx(np.mean(gaps))
    md = (out / "cv.md").read_text()
    assert "In-domain minus cross-domain IoU" in md
    # on roads the gap a road mapper reads is also of road quality (the IoU gap alone before)
    assert r["domain"] == "roads"
    rq = [f["tests"]["in_domain"]["road_quality"] - f["tests"]["cross_domain"]["road_quality"]
          for f in r["folds"]]  # fmt: skip
    assert r["summary"]["road_quality_gap"]["mean"] == pytest.approx(np.mean(rq))
    assert r["summary"]["road_quality_gap"]["n"] == 2
    assert "In-domain minus cross-domain road quality: **" in md
    assert "in-domain minus cross-domain road quality" in page
    # the training log's "val IoU" mixes annotation with enhancement of a coarse label (roads-dev:
    # 0.49 = mean of 0.27 and 0.71 while annotation tested at 0.19-0.39); each mode is reported
    for f in r["folds"]:
        a, e = f["best_val_iou_annotate"], f["best_val_iou_enhance"]
        assert 0.0 <= a <= 1.0 and 0.0 <= e <= 1.0 and 0.0 <= f["best_val_iou_coarse"] <= 1.0
        assert f["best_val_iou"] == pytest.approx(0.5 * (a + e))  # default coarse_prob 0.5
        assert f["selection"].startswith("val_iou = 0.5 x annotation IoU + 0.5 x enhancement")
        assert f"{f['fold']} {a:.3f} / {e:.3f}" in md
    assert "Compare the test IoUs with the annotation value" in md
    assert "the best epoch was selected by val_iou = 0.5 x annotation IoU" in md


def test_cli_cv_smoke_and_bad_options(
    roads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    base = ["cv", "--data", str(roads), "--size", "micro", "--epochs", "1", "--image-size", "48"]
    args = [*base, "--out", str(tmp_path / "c"), "--folds", "2", "--max-folds", "1"]
    flags = ["--batch-size", "2", "--no-progress", "--no-quality", "--report"]
    assert main([*args, *flags, "--road-buffer", "7.5"]) == 0
    text = capsys.readouterr().out
    # --road-buffer reaches the test scores, the fold's training and the record
    fold = tmp_path / "c" / "folds" / "fold-1"
    scores = json.loads((fold / "pred-test" / "evaluation.json").read_text())
    assert scores["options"]["road_buffer_px"] == 7.5
    assert json.loads((tmp_path / "c" / "cv.json").read_text())["road_buffer"] == 7.5
    assert "road_buffer: 7.5" in (fold / "run" / "config.yaml").read_text()
    assert "test: IoU" in text and "road quality" in text
    assert f"report: {tmp_path / 'c' / 'report.html'}" in text
    page = (tmp_path / "c" / "report.html").read_text(encoding="utf-8")
    assert "only 1 of 2 folds ran (--max-folds)" in page
    assert f"tables: {tmp_path / 'c' / 'cv.md'}\n" in text  # one space after the colon
    assert "Only 1 of 2 folds" in (tmp_path / "c" / "cv.md").read_text()
    assert main([*base, "--out", str(tmp_path / "d"), "--folds", "1"]) == 2
    assert "--folds" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "d"), "--road-buffer", "0"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: invalid value for --road-buffer: 0.0 "
        "(input should be greater than 0; allowed: 0 < x <= 100)\n"
    )
    assert not (tmp_path / "d").exists()
    assert main([*base, "--out", str(tmp_path / "e"), "--aug-scale", "2,1"]) == 2
    assert "--aug-scale" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "f"), "--folds", "7"]) == 2
    assert "at least 14" in capsys.readouterr().err
    # a --weights file of the wrong kind: refused before the data folder is scanned
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("epochs: 1\n")
    assert main([*base, "--out", str(tmp_path / "g"), "--weights", str(yaml_file)]) == 2
    cap = capsys.readouterr()
    assert cap.err == (
        f"error: {yaml_file}: not a readable checkpoint: a text file (first line 'epochs: 1'); "
        "check the path (or, for a download, download the file again)\n"
    )
    assert cap.out == "" and not (tmp_path / "g").exists()


def test_a_finished_fold_is_reused_only_for_its_settings_and_images(
    roads: Path, tmp_path: Path
) -> None:
    """cv_config.json refuses other options into the same OUT; what it cannot see is checked per
    fold (fold.json, or for older folds result.json + run/config.yaml): the images of the fold
    (the data folder changed), settings that differ (a fold folder copied from another run, a
    default changed between versions) and a missing network. Runtime options (precision) do not
    retrain."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(roads, data)
    out = tmp_path / "cv"
    fold = out / "folds" / "fold-1"
    lines: list[str] = []

    def run(**kw: Any) -> dict[str, Any]:
        lines.clear()
        return run_cv(_cfg(data, out, folds=2, max_folds=1, **kw), echo=lines.append)

    def stamp() -> int:
        return (fold / "result.json").stat().st_mtime_ns

    r = run()
    rec = json.loads((fold / "fold.json").read_text())
    assert rec["train_ids"] == r["folds"][0]["train_ids"]
    assert rec["tests"] == {"test": r["folds"][0]["tests"]["test"]["ids"]}
    assert rec["train"]["epochs"] == 1 and "precision" not in rec["train"]
    first = stamp()

    # a runtime option (precision) and a fold made before fold.json existed: reused
    (fold / "fold.json").unlink()
    r2 = run(precision="32", train={**TRAIN, "precision": "fp32"})
    assert any(x.startswith("fold-1: done before") for x in lines), lines
    assert stamp() == first and r2["folds"][0] == r["folds"][0]
    assert json.loads((fold / "fold.json").read_text()) == rec  # recorded again

    # a reused fold keeps the precision it was trained with (--precision auto), whatever this
    # run asks; a fold whose result predates the record: read from its model file
    ran = resolve_precision("auto", "cpu")
    res = json.loads((fold / "result.json").read_text())
    assert (res["precision_option"], res["precision_resolved"]) == ("auto", ran)
    for key in ("precision_option", "precision_resolved", "trunk_scale"):
        res.pop(key)
    (fold / "result.json").write_text(json.dumps(res))
    first = stamp()
    r3 = run(precision="bf16", train={**TRAIN, "precision": "bf16"})
    assert any(x.startswith("fold-1: done before") for x in lines), lines
    f3 = r3["folds"][0]
    assert (f3["precision_option"], f3["precision_resolved"]) == ("auto", ran)
    assert (r3["precision_option"], r3["precision_resolved"]) == ("auto", ran)
    assert f3["trunk_scale"] == r3["trunk_scale"] == 1  # roads: full; from the model file
    md = (out / "cv.md").read_text()
    assert f"- Precision of the folds' training: {ran} (--precision auto; " in md

    # an older fold trained with other settings (run/config.yaml): refused, nothing deleted
    (fold / "fold.json").unlink()
    saved = fold / "run" / "config.yaml"
    text = saved.read_text()
    saved.write_text(text.replace("epochs: 1\n", "epochs: 3\n"))
    with pytest.raises(UserError, match=r"--epochs 1 \(saved: 3\); give the saved values"):
        run()
    assert stamp() == first and (fold / "run" / "model.pt").is_file()
    saved.write_text(text)

    # the network of a trained but unscored fold is gone: trained again
    (fold / "result.json").unlink()
    (fold / "run" / "model.pt").unlink()
    run()
    assert any("not reused: its network (run/model.pt) is missing" in x for x in lines), lines
    assert (fold / "run" / "model.pt").is_file()

    # the data folder changed: the fold's images differ; its trained network is not deleted for
    # it (refused, before any fold trains); moved away, the fold trains again on the new images
    for sub in ("images", "masks"):
        next(iter(sorted((data / sub).glob("*.png")))).unlink()
    with pytest.raises(UserError, match="fold-1 holds a trained network, but it was trained on "
                       "other images"):  # fmt: skip
        run()
    assert (fold / "run" / "model.pt").is_file()
    shutil.move(fold, tmp_path / "fold-1-old")
    r5 = run()
    ids = sorted(p.stem for p in (data / "masks").glob("*.png"))
    plan = kfold_ids(ids, 2, seed=0)[0]
    assert r5["folds"][0]["tests"]["test"]["ids"] == plan
    assert r5["folds"][0]["train_ids"] == sorted(set(ids) - set(plan))


def test_the_run_record_says_mixed_precisions_fold_by_fold() -> None:
    """Folds trained at different precisions or trunk scales (reused ones keep theirs): the run
    record lists them instead of claiming one."""
    from sam2elnet.pipeline.crossval_report import render_markdown
    from sam2elnet.pipeline.crossval_reuse import summarise_folds

    folds = [
        {"fold": "fold-1", "precision_resolved": "32", "trunk_scale": 2},
        {"fold": "fold-2", "precision_resolved": "bf16", "trunk_scale": 1},
        {"fold": "fold-3"},
    ]
    assert summarise_folds(folds[:1], "precision_resolved") == "32"
    assert summarise_folds([folds[0], folds[0]], "precision_resolved") == "32"
    assert summarise_folds(folds, "precision_resolved") == (
        "mixed: fold-1 32, fold-2 bf16, fold-3 not recorded"
    )
    assert summarise_folds([], "precision_resolved") == "not recorded"
    assert summarise_folds(folds[:1], "trunk_scale") == 2  # one scale: the number
    mixed = summarise_folds(folds, "trunk_scale")
    assert mixed == "mixed: fold-1 2, fold-2 1, fold-3 not recorded"
    r = {"keys": [], "mode": "kfold", "folds_total": 3, "folds_done": 0, "data": "d",
         "n_images": 9, "domain": "other", "domain_reason": "-", "folds": [], "summary": {},
         "train": {"trunk_scale": 2}, "seed": 0, "seconds_this_run": 1.0}  # fmt: skip
    for scale, said in ((2, "trunk at half resolution (2)"), (mixed, f"trunk {mixed}")):
        md = render_markdown({**r, "trunk_scale": scale})
        assert f"- Trunk of the folds' networks: {said} (--trunk-scale 2; a reused " in md
    # the verb agrees with the count of folds run (it said "Only 1 of 3 folds were run")
    for done, said in ((1, "**Only 1 of 3 folds was run**"), (2, "**Only 2 of 3 folds were run**")):
        assert said in render_markdown({**r, "folds_done": done, "trunk_scale": 2})


def test_cv_states_the_half_resolution_trunk_of_auto_folds(roads: Path, tmp_path: Path) -> None:
    """--domain other without SAM2 weights: auto resolves to the half-resolution trunk; cv.json,
    each fold, cv.md and cv_config.json say so (the resolved value, not "auto")."""
    out = tmp_path / "cv"
    r = run_cv(_cfg(roads, out, folds=2, max_folds=1, domain="other"))
    assert r["trunk_scale"] == 2 and r["folds"][0]["trunk_scale"] == 2
    md = (out / "cv.md").read_text()
    assert (
        "- Trunk of the folds' networks: trunk at half resolution (2) (--trunk-scale auto; " in md
    )
    assert json.loads((out / "cv_config.json").read_text())["resolved"]["trunk_scale"] == 2
    assert run_cv(_cfg(roads, out, folds=2, max_folds=1, domain="other"))["trunk_scale"] == 2


def test_another_road_buffer_scores_the_finished_folds_again(
    roads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--road-buffer changes how the test predictions are scored, not the networks: a re-run
    into the same OUT with another buffer scores the finished fold's stored predictions again
    (one line; nothing trained or predicted), exactly as ``elnet evaluate --road-buffer`` scores
    them; cv.json, cv.md, cv_config.json and the reports carry the new buffer, and cv.md says
    the validation rows were logged with the old one. It used to be refused."""
    import cv2

    import sam2elnet.engine.infer as infer
    import sam2elnet.engine.train as train_mod
    from sam2elnet.cli import main

    out = tmp_path / "cv"
    fold = out / "folds" / "fold-1"
    pred = fold / "pred-test"
    lines: list[str] = []

    def run(buffer: float, report: bool = True) -> dict[str, Any]:
        lines.clear()
        cfg = _cfg(roads, out, folds=2, max_folds=1, road_buffer=buffer, report=report)
        return run_cv(cfg, echo=lines.append)

    run(1.0)
    # stored predictions whose centre lines lie 3 px off the true ones: buffer 1 misses them,
    # buffer 5 matches them (the tiny network's own labels may score alike at both)
    labels = sorted(pred.glob("labels/*.png"))
    assert labels
    for p in labels:
        truth = cv2.imread(str(fold / "test" / "masks" / p.name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(p), np.roll(truth, 3, axis=0))
    stamps = {p: p.stat().st_mtime_ns for p in [*labels, fold / "run" / "model.pt"]}
    page = pred / "report.html"
    page_stamp = page.stat().st_mtime_ns

    def evaluate(buffer: float) -> dict[str, Any]:
        js = tmp_path / f"e{buffer:g}.json"
        argv = ["evaluate", "--pred", str(pred), "--truth", str(fold / "test" / "masks"),
                "--roads", "--no-progress", "--road-buffer", f"{buffer:g}", "--json", str(js)]  # fmt: skip
        assert main(argv) == 0
        return json.loads(js.read_text())["aggregate"]

    want1, want5 = evaluate(1.0), evaluate(5.0)
    assert want1["road_correctness"] < 0.5 < 0.9 < want5["road_correctness"]

    def refuse(*a: Any, **kw: Any) -> Any:
        raise AssertionError("trained or predicted again")

    with monkeypatch.context() as m:
        m.setattr(train_mod, "train", refuse)
        m.setattr(infer, "annotate_folder", refuse)
        r5 = run(5.0)
        assert (
            "fold-1: done before; its test predictions scored again with road buffer 5 px "
            "(were 1 px), its network and predictions reused"
        ) in lines, lines
        assert not any("done before, reusing" in x for x in lines)
        t5 = r5["folds"][0]["tests"]["test"]
        for k in ROAD_KEYS:
            assert t5[k] == pytest.approx(want5[k]), k
        assert t5["iou"] == pytest.approx(want5["iou"])
        assert r5["road_buffer"] == 5.0 and r5["val_road_buffer"] == 1.0
        assert r5["folds"][0]["road_buffer"] == 5.0
        assert r5["folds"][0]["val_road_buffer"] == 1.0
        assert json.loads((out / "cv.json").read_text())["road_buffer"] == 5.0
        assert json.loads((out / "cv_config.json").read_text())["road_buffer"] == 5.0
        ev = json.loads((pred / "evaluation.json").read_text())
        assert ev["options"]["road_buffer_px"] == 5.0
        md = (out / "cv.md").read_text()
        assert "- Road measures of the test scores: centre lines matched within 5 px" in md
        assert "during the folds' training (`run/metrics.csv`, the fold reports) used 1 px" in md
        assert page.stat().st_mtime_ns != page_stamp  # drawn again with the new scores
        assert f"{t5['road_correctness']:.3f}" in page.read_text(encoding="utf-8")

        # the same buffer again: reused as it is; back to 1 px: scored again, as evaluate does
        run(5.0)
        assert any(x.startswith("fold-1: done before, reusing") for x in lines), lines
        r1 = run(1.0)
        assert any("scored again with road buffer 1 px (were 5 px)" in x for x in lines), lines
        t1 = r1["folds"][0]["tests"]["test"]
        for k in ROAD_KEYS:
            assert t1[k] == pytest.approx(want1[k]), k
        assert "used 1 px" not in (out / "cv.md").read_text()  # validation and test agree
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # an unfinished fold continues its training with the buffer its validation rows started
    # with (train --resume refuses another); its test scores use this run's
    (fold / "result.json").unlink()
    (fold / "trained.json").unlink()
    r = run(5.0)
    assert (
        "fold-1: its training continues with the road buffer it started with (1 px) for its "
        "validation measures; its test scores use 5 px"
    ) in lines, lines
    assert (r["folds"][0]["val_road_buffer"], r["folds"][0]["road_buffer"]) == (1.0, 5.0)

    # scored again without --report: OUT/report.html (5 px numbers) would contradict cv.md
    assert (out / "report.html").is_file()
    run(1.0, report=False)
    assert (
        f"removed {out / 'report.html'}: the test predictions were scored again and it showed "
        "the earlier numbers; --report writes it again"
    ) in lines, lines
    assert not (out / "report.html").exists()


def test_a_fold_whose_test_images_are_all_constant_is_scored_and_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fold-1's test images are all one grey: every label is unusable whatever the filter. The
    annotate rule "nothing usable produced" (exit 2) aborted the whole cv, naming the fold's
    internal folder with annotate's advice, on every resume too. Now the fold is scored as it
    is (its labels exist): one warning naming the fold, ``unusable`` in its scores and the
    report, and a resumed cv finishes as well."""
    import cv2

    data = make_road_dataset(tmp_path / "data", n=8, size=48)
    ids = sorted(p.stem for p in (data / "images").glob("*.png"))
    test_ids = kfold_ids(ids, 2, 0)[0]
    for i in test_ids:
        cv2.imwrite(str(data / "images" / f"{i}.png"), np.full((48, 48, 3), 128, np.uint8))
    out = tmp_path / "cv"
    cfg = _cfg(data, out, folds=2, max_folds=1, report=True)
    with caplog.at_level("WARNING", "sam2elnet.pipeline.crossval_fold"):
        r = run_cv(cfg)
    said = [m for m in caplog.messages if "nothing usable" in m]
    assert said == [
        f"cv fold-1, test images: nothing usable: all {len(test_ids)} labels were rejected as "
        f"unusable whatever the filter ({len(test_ids)} x constant image); scored as they are "
        f"(see {out / 'folds' / 'fold-1' / 'pred-test' / 'quality.csv'})"
    ], caplog.messages
    t = r["folds"][0]["tests"]["test"]
    assert t["n_images"] == len(test_ids) and t["iou"] is not None
    assert t["unusable"].startswith(f"all {len(test_ids)} labels were rejected as unusable")
    saved = json.loads((out / "folds" / "fold-1" / "result.json").read_text("utf-8"))
    assert saved["tests"]["test"]["unusable"] == t["unusable"]
    report = next(out.glob("*.md")).read_text("utf-8")
    assert "**Nothing usable** (" in report and f"fold-1 test: {t['unusable']}." in report
    (out / "folds" / "fold-1" / "result.json").unlink()  # an interrupted fold: annotate again
    assert run_cv(cfg)["folds"][0]["tests"]["test"]["unusable"] == t["unusable"]


def test_fold_runs_one_fold_and_copied_folds_are_summarised_together(
    roads: Path, tmp_path: Path
) -> None:
    """``--fold`` trains only the folds named (one per machine, each into its own OUT); their
    ``folds/<name>`` folders copied into one OUT are reused by a run without ``--fold``, which
    trains nothing and summarises all of them."""
    import shutil

    one, two, merged = tmp_path / "one", tmp_path / "two", tmp_path / "merged"
    r1 = run_cv(_cfg(roads, one, folds=2, only_folds=["2"]))
    assert [f["fold"] for f in r1["folds"]] == ["fold-2"]
    assert sorted(p.name for p in (one / "folds").iterdir()) == ["fold-2"]
    assert (r1["folds_done"], r1["folds_total"], r1["folds_chosen_by"]) == (1, 2, "--fold")
    assert "**Only 1 of 2 folds was run** (fold-2; --fold)." in (one / "cv.md").read_text()
    r2 = run_cv(_cfg(roads, two, folds=2, only_folds=["FOLD-1"]))
    assert [f["fold"] for f in r2["folds"]] == ["fold-1"]
    for src in (two / "folds" / "fold-1", one / "folds" / "fold-2"):
        shutil.copytree(src, merged / "folds" / src.name)
    shutil.rmtree(one)  # the folds came from other machines: their --out folders are not here
    shutil.rmtree(two)
    lines: list[str] = []
    r = run_cv(_cfg(roads, merged, folds=2, report=True), echo=lines.append)
    assert [ln for ln in lines if "done before, reusing" in ln] and not [
        ln for ln in lines if ln.startswith("epoch ")
    ]
    assert [f["fold"] for f in r["folds"]] == ["fold-1", "fold-2"]
    assert (r["folds_done"], r["folds_chosen_by"]) == (2, None)
    ious = {f["fold"]: f["tests"]["test"]["iou"] for f in r["folds"]}
    assert ious == {"fold-1": r2["folds"][0]["tests"]["test"]["iou"],
                    "fold-2": r1["folds"][0]["tests"]["test"]["iou"]}  # fmt: skip
    assert "Only" not in (merged / "cv.md").read_text()
    # the copied folds' own files name the folder they were trained in (left as they were):
    # cv.json / cv.md say where, and the training report this run wrote shows the images here
    made = {"fold-1": str(two / "folds" / "fold-1"), "fold-2": str(one / "folds" / "fold-2")}
    assert r["folds_made_in"] == made
    assert (
        f"- 2 folds trained in another folder and copied in: fold-1 in `{made['fold-1']}`, "
        f"fold-2 in `{made['fold-2']}`. The paths inside their files"
    ) in (merged / "cv.md").read_text()
    page = (merged / "folds" / "fold-1" / "run" / "report.html").read_text()
    assert "is gone" not in page and str(merged / "folds" / "fold-1" / "train-data") in page
    # the epochs each fold trained (--epochs auto would be resolved per fold): in cv.json / cv.md
    assert r["epochs"] == 1 and [f["epochs"] for f in r["folds"]] == [1, 1]
    md = (merged / "cv.md").read_text()
    assert "- Epochs of the folds' training: 1 (--epochs 1)." in md
    assert r["folds_reused"] == ["fold-1", "fold-2"]
    assert (
        " s (fold-1, fold-2 reused as they were: trained and scored by an earlier run or copied in)."
        in md
    )
    # a summary run with other options: the copied trained fold is refused before fold-1 (not
    # copied here) trains, and nothing of it is deleted
    other = tmp_path / "other"
    shutil.copytree(merged / "folds" / "fold-2", other / "folds" / "fold-2")
    with pytest.raises(
        UserError, match=r"fold-2 holds a trained network, .*--epochs 2 \(saved: 1\)"
    ):
        run_cv(_cfg(roads, other, folds=2, train={**TRAIN, "epochs": 2}))
    assert sorted(p.name for p in (other / "folds").iterdir()) == ["fold-2"]
    assert (other / "folds" / "fold-2" / "run" / "model.pt").is_file()


def test_fold_names_are_checked_before_anything_is_written(
    roads: Path, tmp_path: Path, capsys
) -> None:
    from sam2elnet.cli import main

    out = tmp_path / "cv"
    with pytest.raises(
        UserError, match=r"--fold 3: no such fold; this run's folds are fold-1, fold-2"
    ):
        run_cv(_cfg(roads, out, folds=2, only_folds=["3"]))
    assert not (out / "cv_config.json").exists() and not (out / "folds").exists()
    with pytest.raises(UserError, match="give --fold or --max-folds, not both"):
        run_cv(_cfg(roads, out, folds=2, only_folds=["1"], max_folds=1))
    args = ["cv", "--data", str(roads), "--out", str(out), "--folds", "2", "--fold", "A-to-B"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --fold A-to-B: no such fold; this run's folds are fold-1, fold-2"]
