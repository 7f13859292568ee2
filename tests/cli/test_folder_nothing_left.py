"""``elnet enhance --skip-missing`` (``elnet refine --skip-missing`` the same) and annotate /
enhance runs that produce nothing (docs/training.md, docs/evaluation.md, docs/reliability.md).

Was: the images without a coarse label were dropped silently under ``--skip-missing`` (no count,
no note, not in ``skipped.csv``; a corrupt image without a label too), every image without one
was ``no image has a matching label`` with no skip list; and a run that produced nothing into an
``--out`` that existed left a header-only ``quality.csv`` and a ``model_id.json`` beside
``skipped.csv`` (an earlier run's ``quality.csv`` replaced by the empty one, its
``model_id.json`` by this run's)."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_logs import error_after_warnings

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")

BROKEN = b"\x89PNG\r\n\x1a\n broken"
DECODE = "cannot decode image (corrupt, truncated or not an image); re-export it or remove it"


def _rows(path: Path) -> list[tuple[str, str]]:
    """(image name, reason) of each row of a skip list, in order."""
    with path.open(newline="") as fh:
        return [(Path(r["image"]).name, r["reason"]) for r in csv.DictReader(fh)]


def _inputs(run: dict[str, Path], root: Path, labelled: list[str]) -> tuple[Path, Path]:
    """Images s00, s01, s02 of the shared run and a corrupt c.png; coarse labels (the true
    masks; s00's for another name) for the names in ``labelled`` only."""
    imgs, labels = root / "imgs", root / "coarse"
    imgs.mkdir()
    labels.mkdir()
    for name in ("s00.png", "s01.png", "s02.png"):
        (imgs / name).write_bytes((run["data"] / "images" / name).read_bytes())
    (imgs / "c.png").write_bytes(BROKEN)
    for name in labelled:
        src = run["data"] / "masks" / (name if name.startswith("s") else "s00.png")
        (labels / name).write_bytes(src.read_bytes())
    return imgs, labels


def _files(out: Path) -> dict[Path, bytes]:
    """Every file under ``out`` (not the lock file) and its bytes."""
    return {
        p.relative_to(out): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _enhance(run: dict[str, Path], imgs: Path, labels: Path, out: Path, *more: str) -> int:
    return main(["enhance", "--model", str(run["model"]), "--images", str(imgs), "--labels",
                 str(labels), "--out", str(out), "--no-progress", *more])  # fmt: skip


def _no_label_is_nothing_produced(
    job: Callable[..., int],
    imgs: Path,
    labels: Path,
    root: Path,
    capsys: pytest.CaptureFixture[str],
) -> tuple[Path, str]:
    """``job(imgs, labels, out, "--skip-missing")`` (enhance or refine) where no image has a
    coarse label: exit 2, the nothing-produced line counting all 4 images, the list in the
    user's existing ``root/out``, and no ``root/fresh`` folder left by a second run there.
    Returns ``(out, the reason given for each image)``."""
    out = root / "out"
    out.mkdir()
    rc = job(imgs, labels, out, "--skip-missing")
    why = f"no coarse label in {labels}"
    assert error_after_warnings(rc, capsys.readouterr().err) == (
        f"error: {imgs}: nothing produced: all 4 images could not be used (4 x {why}); fix or "
        f"remove the files and re-run (listed with the reasons in {out / 'skipped.csv'})"
    )
    assert sorted(p.name for p in out.iterdir()) == ["skipped.csv"]
    assert [n for n, _ in _rows(out / "skipped.csv")] == ["c.png", "s00.png", "s01.png", "s02.png"]
    fresh = root / "fresh"
    assert job(imgs, labels, fresh, "--skip-missing") == 2
    capsys.readouterr()
    assert not fresh.exists()
    return out, why


def test_skip_missing_names_the_images_and_lists_them(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two of four images have no label (one of them corrupt): one note counting and naming
    them, no warning each, a row each in skipped.csv, counted in the closing skip line."""
    imgs, labels = _inputs(run, tmp_path, ["s00.png", "s01.png"])
    out = tmp_path / "out"
    assert _enhance(run, imgs, labels, out, "--skip-missing") == 0
    cap = capsys.readouterr()
    notes = [ln for ln in cap.err.splitlines() if ln.startswith("note:")]
    assert notes == [
        f"note: 2 of 4 images have no coarse label in {labels} and were skipped "
        "(--skip-missing): c.png, s02.png"
    ]
    assert "skipping" not in cap.err
    why = f"no coarse label in {labels}"
    assert _rows(out / "skipped.csv") == [("c.png", why), ("s02.png", why)]
    assert f"2 of 4 skipped, see {out / 'skipped.csv'}" in cap.out.splitlines()
    with (out / "quality.csv").open(newline="") as fh:
        assert [Path(r["image"]).name for r in csv.DictReader(fh)] == ["s00.png", "s01.png"]


def test_every_image_without_a_label_is_nothing_produced(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--skip-missing and no image has a label: the nothing-produced rule (exit 2, the list in
    a user's folder, nothing left of a folder the run would have made), before the model loads."""
    imgs, labels = _inputs(run, tmp_path, ["zz.png"])
    _no_label_is_nothing_produced(lambda *a: _enhance(run, *a), imgs, labels, tmp_path, capsys)


def test_nothing_produced_leaves_only_the_skip_list_in_a_users_folder(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every image skipped inside the job (one corrupt with its label, one without): the user's
    empty --out holds skipped.csv only (no header-only quality.csv, no model_id.json)."""
    imgs, labels = _inputs(run, tmp_path, ["c.png"])
    for name in ("s00.png", "s01.png", "s02.png"):
        (imgs / name).unlink()
    (imgs / "d.png").write_bytes(BROKEN)
    out = tmp_path / "out"
    out.mkdir()
    rc = _enhance(run, imgs, labels, out, "--skip-missing")
    line = error_after_warnings(rc, capsys.readouterr().err)
    assert line.startswith(f"error: {imgs}: nothing produced: all 2 images could not be used")
    assert sorted(p.name for p in out.iterdir()) == ["skipped.csv"]
    assert _rows(out / "skipped.csv") == [
        ("d.png", f"no coarse label in {labels}"),
        ("c.png", DECODE),
    ]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(BROKEN)
    (bad / "y.png").write_bytes(BROKEN)
    ann = tmp_path / "ann"
    ann.mkdir()
    argv = ["annotate", "--model", str(run["model"]), "--images", str(bad), "--out", str(ann)]
    assert main([*argv, "--no-progress"]) == 2
    capsys.readouterr()
    assert sorted(p.name for p in ann.iterdir()) == ["skipped.csv"]
    assert _rows(ann / "skipped.csv") == [("x.png", DECODE), ("y.png", DECODE)]


@pytest.mark.parametrize("resume", [False, True])
def test_nothing_produced_keeps_an_earlier_runs_record(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], resume: bool
) -> None:
    """A run that produced nothing into an earlier run's folder (a new run or --resume): the
    earlier labels, quality.csv, summary.json and model_id.json stay byte for byte; only
    skipped.csv is this run's."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "s00.png").write_bytes((run["data"] / "images" / "s00.png").read_bytes())
    out = tmp_path / "out"
    argv = ["annotate", "--model", str(run["model"]), "--out", str(out), "--no-progress"]
    assert main([*argv, "--images", str(good)]) == 0
    record = _files(out)
    assert {"quality.csv", "summary.json", "model_id.json"} <= {str(p) for p in record}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(BROKEN)
    (bad / "y.png").write_bytes(BROKEN)
    assert main([*argv, "--images", str(bad), *(["--resume"] if resume else [])]) == 2
    capsys.readouterr()
    after = _files(out)
    assert _rows(out / "skipped.csv") == [("x.png", DECODE), ("y.png", DECODE)]
    del after[Path("skipped.csv")]
    assert after == record


def _refine(imgs: Path, labels: Path, out: Path, *more: str) -> int:
    return main(["refine", "--method", "morphological", "--images", str(imgs), "--coarse",
                 str(labels), "--out", str(out), "--modality", "optical", "--no-progress",
                 *more])  # fmt: skip


def test_refine_skip_missing_names_the_images_as_enhance_does(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """refine --skip-missing: the same note, skipped.csv rows and closing count as enhance
    (was: the two images dropped silently, no skipped.csv)."""
    imgs, labels = _inputs(run, tmp_path, ["s00.png", "s01.png"])
    out = tmp_path / "out"
    assert _refine(imgs, labels, out, "--skip-missing") == 0
    cap = capsys.readouterr()
    assert [ln for ln in cap.err.splitlines() if ln.startswith("note:")] == [
        f"note: 2 of 4 images have no coarse label in {labels} and were skipped "
        "(--skip-missing): c.png, s02.png"
    ]
    assert "skipping" not in cap.err
    why = f"no coarse label in {labels}"
    assert _rows(out / "skipped.csv") == [("c.png", why), ("s02.png", why)]
    assert cap.out.splitlines()[-1] == f"2 of 4 skipped, see {out / 'skipped.csv'}"
    assert sorted(p.name for p in out.glob("*.png")) == ["s00.png", "s01.png"]


def test_refine_nothing_produced_without_labels(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """refine --skip-missing and no image has a label, or the one with a label is corrupt: the
    nothing-produced line of enhance, counting every image, the list in a user's folder, no
    folder made (was: 'no image has a matching coarse label', no list; 'the only image')."""
    imgs, labels = _inputs(run, tmp_path, ["zz.png"])
    out, why = _no_label_is_nothing_produced(_refine, imgs, labels, tmp_path, capsys)
    (labels / "c.png").write_bytes((run["data"] / "masks" / "s00.png").read_bytes())
    (out / "skipped.csv").unlink()
    rc = _refine(imgs, labels, out, "--skip-missing")
    line = error_after_warnings(rc, capsys.readouterr().err)
    assert line.startswith(f"error: {imgs}: nothing produced: all 4 images could not be used")
    assert _rows(out / "skipped.csv") == [
        ("s00.png", why),
        ("s01.png", why),
        ("s02.png", why),
        ("c.png", DECODE),
    ]


def test_a_run_that_produces_nothing_locks_its_out_before_writing_the_list(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another job holds --out: enhance (no image has a coarse label) and refine (none has one;
    none can be read) stop with the folder-in-use error and leave that job's skipped.csv as it
    was. Was: they wrote their own skip list over it before taking the lock."""
    import fcntl

    imgs, labels = _inputs(run, tmp_path, ["zz.png"])
    bad, bad_coarse = tmp_path / "bad", tmp_path / "bad_coarse"
    bad.mkdir()
    bad_coarse.mkdir()
    (bad / "x.png").write_bytes(BROKEN)
    (bad_coarse / "x.png").write_bytes((run["data"] / "masks" / "s00.png").read_bytes())
    out = tmp_path / "busy"
    out.mkdir()
    theirs = b"image,reason\nother.png,the running job's own\n"
    (out / "skipped.csv").write_bytes(theirs)
    refine = ["refine", "--method", "morphological", "--out", str(out), "--no-progress"]
    fd = os.open(out / ".elnet.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the other job
        for job in (
            lambda: _enhance(run, imgs, labels, out, "--skip-missing"),
            lambda: main(
                [*refine, "--images", str(imgs), "--coarse", str(labels), "--skip-missing"]
            ),
            lambda: main([*refine, "--images", str(bad), "--coarse", str(bad_coarse)]),
        ):
            line = error_after_warnings(job(), capsys.readouterr().err)
            assert line.startswith(f"error: {out}: output folder is in use by another "), line
            assert (out / "skipped.csv").read_bytes() == theirs
    finally:
        os.close(fd)
    # the lock released: the user's folder gets the refine's list
    assert main([*refine, "--images", str(bad), "--coarse", str(bad_coarse)]) == 2
    capsys.readouterr()
    assert _rows(out / "skipped.csv") == [("x.png", DECODE)]
