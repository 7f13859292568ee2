"""A batch that produced nothing and the ``--out`` folder: one the user made (even an empty one)
stays and holds the skip list, which the error line names; one the run made is removed.

Was: degrade, refine and train decided "the run made this folder" from what it held (only the
job's lock file), so a user's empty ``--out`` was deleted (degrade) or kept without the list,
and the error line did not name one. The decision is now ``not out.exists()`` before the lock
(utils.lock.lock_created)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_png
from helpers_logs import error_after_warnings

from sam2elnet.cli import main

BROKEN = b"\x89PNG\r\n\x1a\n broken"
DECODE = "cannot decode image (corrupt, truncated or not an image); re-export it or remove it"


def _listed(path: Path) -> list[tuple[str, str]]:
    """(file name, reason) of each row of a skip list."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [(Path(next(iter(r.values()))).name, r["reason"]) for r in rows]


def _check_out(argv: list[str], out: Path, want: str, rows: list[tuple[str, str]], capsys) -> None:
    """The run into a user's empty ``out`` and into a fresh folder beside it: exit 2 both times,
    the exact error line (``want``, then the list's path when it was written), the skip list
    (``rows``: file name, reason) in the user's folder only, nothing left of the fresh one."""
    out.mkdir()
    listed = out / "skipped.csv"
    rc = main([*argv, "--out", str(out)])
    assert error_after_warnings(rc, capsys.readouterr().err) == (
        f"{want} (listed with the reasons in {listed})"
    )
    assert sorted(p.name for p in out.iterdir()) == ["skipped.csv"]
    assert sorted(_listed(listed)) == rows
    fresh = out.with_name(out.name + "_fresh")
    rc = main([*argv, "--out", str(fresh)])
    assert error_after_warnings(rc, capsys.readouterr().err) == want
    assert not fresh.exists()


def test_degrade_keeps_a_users_empty_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("a.png", "b.png"):
        (masks / name).write_bytes(BROKEN)
    want = (
        f"error: {masks}: nothing produced: all 2 masks could not be used (2 x {DECODE}); "
        "fix or remove the files and re-run"
    )
    argv = ["degrade", "--masks", str(masks), "--no-progress"]
    _check_out(argv, tmp_path / "deg", want, [("a.png", DECODE), ("b.png", DECODE)], capsys)


def test_refine_keeps_a_users_empty_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Readable images, every coarse label broken: each image is skipped inside the job."""
    imgs, coarse = tmp_path / "imgs", tmp_path / "coarse"
    rng = np.random.default_rng(0)
    coarse.mkdir()
    for name in ("a.png", "b.png"):
        write_png(imgs / name, rng.integers(0, 255, (32, 32), dtype=np.uint8))
        (coarse / name).write_bytes(BROKEN)
    want = (
        f"error: {imgs}: nothing produced: all 2 images could not be used (2 x {DECODE}); "
        "fix or remove the files and re-run"
    )
    argv = ["refine", "--method", "morphological", "--images", str(imgs), "--coarse",
            str(coarse), "--no-progress"]  # fmt: skip
    rows = [(n, f"{coarse / n}: {DECODE}") for n in ("a.png", "b.png")]  # the label named
    _check_out(argv, tmp_path / "ref", want, rows, capsys)


def test_train_keeps_a_users_empty_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Every image of the training set unreadable: nothing trained, before any weight is read."""
    from helpers_data import make_dataset

    data = make_dataset(tmp_path / "d", n=3, size=32)
    for k in range(3):
        (data / "images" / f"s{k:02d}.png").write_bytes(BROKEN)
    want = (
        f"error: {data}: nothing produced: all 3 images could not be used (3 x {DECODE}); "
        "fix or remove the files and re-run"
    )
    argv = ["train", "--data", str(data), "--size", "micro", "--image-size", "32",
            "--epochs", "1", "--no-progress"]  # fmt: skip
    _check_out(argv, tmp_path / "run", want, [(f"s{k:02d}.png", DECODE) for k in range(3)], capsys)


def test_lock_created_is_decided_before_the_lock_not_by_the_contents(tmp_path: Path) -> None:
    """A folder the lock made: True while held (re-entered too), False after; a user's empty
    folder, which holds only the lock file while held, is never the run's own."""
    from sam2elnet.utils.lock import lock_created, output_lock

    made, users = tmp_path / "made", tmp_path / "users"
    users.mkdir()
    with output_lock(made), output_lock(users):
        assert [p.name for p in users.iterdir()] == [".elnet.lock"]
        assert lock_created(made) and not lock_created(users)
        with output_lock(made):
            assert lock_created(made)
        assert lock_created(made)
    assert not lock_created(made) and not lock_created(users) and users.is_dir()
