"""`elnet import ... --with-labels`: what the training set may not be built from or over.

A reviewer found: `--train-set` equal to or above a new `--out` deleted the import's masks (the
check skipped a folder that did not exist yet) while the output said they were written;
`--with-labels RUN/rejected` put the labels the quality filter rejected into the set as "kept
auto-labels", and a run that kept none pointed there; a build removed every temporary folder
beside its training folder, also another import's in progress (docs/review.md, "The next
training set").
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from helpers_logs import one_error_line, run_main
from review_helpers import make_run

from sam2elnet.export.train_set import TRAIN_SET_RECORD

# kept (>= 0.5): d, f; rejected: a, b, c, e
SCORES = {"a": 0.3, "b": 0.1, "c": 0.3, "d": 0.8, "e": 0.05, "f": 0.55}


def _gpkg(capsys, run: Path, tmp_path: Path, count: int) -> Path:
    gp = tmp_path / "qgis" / "weak.gpkg"
    rc, _, err = run_main(capsys, "export", "--labels", run, "--out", gp, "--review-count",
                          count, "--no-progress")  # fmt: skip
    assert rc == 0, err
    return gp


def _import(capsys, gp: Path, tmp_path: Path, out: Path, *opts: object):
    return run_main(capsys, "import", gp, "--from", "vector", "--images", tmp_path / "images",
                    "--out", out, "--no-progress", *opts)  # fmt: skip


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("out_rel, train_rel", [("imp11", "imp11"), ("imp7/rev", "imp7")])
def test_a_train_set_over_a_new_out_is_refused(tmp_path, capsys, out_rel, train_rel):
    run = make_run(tmp_path, SCORES)
    gp = _gpkg(capsys, run, tmp_path, 2)
    out, train = tmp_path / out_rel, tmp_path / train_rel
    rc, _, err = _import(capsys, gp, tmp_path, out, "--with-labels", run / "labels",
                         "--train-set", train)  # fmt: skip
    line = one_error_line(rc, err)
    assert f"{train}: the training folder is or holds {out}:" in line, line
    assert not train.exists()  # nothing written (was: "2 masks written", then removed)
    # the same import with the default --train-set (inside --out) keeps both
    rc, stdout, err = _import(capsys, gp, tmp_path, out, "--with-labels", run / "labels")
    assert rc == 0, err
    assert f"{out}: 2 masks written" in stdout, stdout
    assert _names(out) == [".elnet-import.json", "b.tif", "e.tif", "train-set"]
    assert _names(out / "train-set" / "masks") == ["b.tif", "d.tif", "e.tif", "f.tif"]


def test_rejected_labels_are_refused_as_training_data(tmp_path, capsys):
    run = make_run(tmp_path, SCORES)
    gp = _gpkg(capsys, run, tmp_path, 2)
    out = tmp_path / "reviewed"
    rc, _, err = _import(capsys, gp, tmp_path, out, "--with-labels", run / "rejected")
    line = one_error_line(rc, err)
    assert "labels the quality filter rejected: they are what review is for" in line, line
    assert not out.exists()
    # a rejected label copied among the kept ones: its run's quality.csv says kept=False
    shutil.copy(run / "rejected" / "a.tif", run / "labels" / "a.tif")
    rc, _, err = _import(capsys, gp, tmp_path, out, "--with-labels", run)
    line = one_error_line(rc, err)
    assert f"(1 of 3 labels have kept=False in {run / 'quality.csv'}: a.tif)" in line, line
    assert not out.exists()


@pytest.mark.parametrize("sub", ["", "labels"])
def test_a_run_that_kept_no_label_gives_the_reviewed_masks_only(tmp_path, capsys, sub):
    run = make_run(tmp_path, {"a": 0.3, "b": 0.1, "c": 0.2})  # every label rejected
    assert not (run / "labels").exists()
    gp = _gpkg(capsys, run, tmp_path, 2)
    out = tmp_path / "reviewed"
    rc, stdout, err = _import(capsys, gp, tmp_path, out, "--with-labels", run / sub)
    assert rc == 0 and "rejected" not in err, err  # no hint towards RUN/rejected
    train = out / "train-set"
    lines = stdout.strip().splitlines()
    assert lines[-3:-1] == [
        f"train set {train}: 2 reviewed masks (0 replacing their kept auto-label), 0 auto-labels "
        "kept, 1 rejected labels nobody reviewed left out (images hard-linked, masks copied)",
        "train set: the run kept no auto-label (the quality filter rejected every one): the set "
        "is the reviewed masks only",
    ], stdout
    assert _names(train / "masks") == ["b.tif", "c.tif"] == _names(train / "images")  # weakest
    rec = json.loads((train / TRAIN_SET_RECORD).read_text())
    assert rec["masks"] == {"b.tif": "reviewed", "c.tif": "reviewed"}


def test_a_build_leaves_another_builds_temporary_folder(tmp_path, capsys):
    run = make_run(tmp_path, SCORES)
    gp = _gpkg(capsys, run, tmp_path, 2)
    train = tmp_path / "sets" / "t1"
    busy = tmp_path / "sets" / ".elnet-train-set-busy"  # an import building beside it now
    stale = tmp_path / "sets" / ".elnet-train-set-stale"  # a killed build's, two hours ago
    for d in (busy, stale):
        (d / "images").mkdir(parents=True)
    old = time.time() - 7200
    for d in (stale / "images", stale):
        os.utime(d, (old, old))
    rc, _, err = _import(capsys, gp, tmp_path, tmp_path / "rev", "--with-labels", run,
                         "--train-set", train)  # fmt: skip
    assert rc == 0, err
    assert _names(tmp_path / "sets") == [".elnet-train-set-busy", "t1"]
    assert _names(busy) == ["images"]
