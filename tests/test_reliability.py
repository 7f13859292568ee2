"""Reliability cases that need more than one command line (docs/reliability.md): a full disk,
a kill between the two saves of a training epoch, two jobs into one output folder, a batch with
some bad files, and ``--resume`` after empty outputs and stale temporary files."""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers_data import make_dataset, small_cfg

from sam2elnet.cli import main
from sam2elnet.errors import DiskFullError

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _images(run: dict[str, Path], dst: Path, n: int = 3) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted((run["data"] / "images").glob("*.png"))[:n]:
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


# ----------------------------------------------------------------------------- disk full
def _try_tmpfs(path: Path, size: str) -> bool:
    """Mount a small tmpfs at ``path`` (root only; False where mounting is not allowed)."""
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return res.returncode == 0


@contextlib.contextmanager
def full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> Iterator[tuple[Path, Path]]:
    """A folder on a file system with (almost) no space left, and a filler file whose removal
    frees it: a real 1 MiB tmpfs ("tmpfs", root only), or a mocked full disk ("mocked"):
    ``cv2.imwrite`` then 'succeeds' with 0 bytes and every write raises ENOSPC, as on a full
    disk."""
    mnt = tmp_path / "small"
    filler = mnt / "filler.bin"
    if mode == "tmpfs":
        if not _try_tmpfs(mnt, "1m"):
            pytest.skip("cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN)")
        try:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill it up
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
            os.close(fd)
            yield mnt, filler
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        return
    import errno

    import cv2

    mnt.mkdir(parents=True, exist_ok=True)
    filler.write_bytes(b"\0")
    real_imwrite, real_open = cv2.imwrite, os.open

    def is_full() -> bool:
        return filler.exists()

    def imwrite(name: str, *a, **kw):  # noqa: ANN002, ANN003, ANN202
        if is_full() and str(name).startswith(str(mnt)):
            Path(name).write_bytes(b"")
            return True
        return real_imwrite(name, *a, **kw)

    def fake_open(name, flags, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        if is_full() and str(name).startswith(str(mnt)) and flags & os.O_WRONLY:
            raise OSError(errno.ENOSPC, "No space left on device", str(name))
        return real_open(name, flags, *a, **kw)

    from PIL import Image

    real_save = Image.Image.save

    def pil_save(self, fp, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202  (label PNGs)
        if is_full() and str(fp).startswith(str(mnt)):
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        return real_save(self, fp, *a, **kw)

    monkeypatch.setattr(cv2, "imwrite", imwrite)
    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(Image.Image, "save", pil_save)
    monkeypatch.setattr(
        "sam2elnet.utils.atomic.free_bytes", lambda folder: 0 if is_full() else 1 << 30
    )
    yield mnt, filler


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != "filler.bin"]


@pytest.mark.parametrize("mode", ["tmpfs", "mocked"])
def test_disk_full_is_reported_and_resume_recovers(
    mode: str,
    run: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sam2elnet.data.raster import write_mask

    imgs = _images(run, tmp_path / "imgs")
    with full_disk(tmp_path, monkeypatch, mode) as (mnt, filler):
        # a single write: DiskFullError, nothing under the final name, no temporary file
        with pytest.raises(DiskFullError, match="disk full"):
            write_mask(mnt / "m.png", np.ones((64, 64), bool))
        assert not (mnt / "m.png").exists()
        assert [p.name for p in mnt.iterdir()] == ["filler.bin"]
        # a whole job: exit 2, one "disk full" error line, no 0-byte label under a final name
        out = mnt / "auto"
        rc = main(["annotate", "--model", str(run["model"]), "--images", str(imgs),
                   "--out", str(out), "--no-progress"])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 2
        assert [ln for ln in err.splitlines() if "error:" in ln] == [err.splitlines()[-1]]
        assert "disk full" in err and "--resume" in err
        assert all(p.stat().st_size > 0 for p in _files(mnt)), _files(mnt)
        # space freed: --resume finishes the job, every label is a readable, non-empty file
        filler.unlink()
        rc = main(["annotate", "--model", str(run["model"]), "--images", str(imgs),
                   "--out", str(out), "--resume", "--no-progress"])  # fmt: skip
        assert rc == 0, capsys.readouterr().err
        labels = sorted((out / "labels").glob("*.png")) + sorted((out / "rejected").glob("*.png"))
        assert len(labels) == 3 and all(p.stat().st_size > 0 for p in labels)
        rows = list(csv.DictReader((out / "quality.csv").open()))
        assert len(rows) == 3
        assert not [p for p in _files(out) if ".tmp" in p.name]


def test_resume_redoes_empty_labels_and_removes_stale_temps(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = _images(run, tmp_path / "imgs")
    out = tmp_path / "auto"
    args = ["annotate", "--model", str(run["model"]), "--images", str(imgs), "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    label = sorted((out / "labels").glob("*.png"))[0]
    label.write_bytes(b"")  # what a full disk used to leave under the final name
    stale = out / "labels" / ".s00.k1l2m3.tmp.png"
    stale.write_bytes(b"half")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    captured = capsys.readouterr()
    assert label.stat().st_size > 0 and not stale.exists()
    assert "redone" in captured.err and "Traceback" not in captured.err


# ----------------------------------------------------------------------------- training saves
def test_kill_between_saves_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every state a kill can leave is resumable: last.pt without model.pt continues (model.pt
    written from the best weights last.pt keeps; it is written once, after the last epoch),
    model.pt without last.pt and a damaged last.pt restart; each says which."""
    import sam2elnet.engine.train as tr
    from sam2elnet.model import load_model

    data = make_dataset(tmp_path / "d", n=6)
    run = tmp_path / "run"
    import sam2elnet.model as model_pkg

    real_save = model_pkg.save_model
    calls = {"n": 0}

    def killed_save(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        raise KeyboardInterrupt  # the kill arrives while model.pt is being written

    monkeypatch.setattr(model_pkg, "save_model", killed_save)
    with pytest.raises(KeyboardInterrupt):
        tr.train(small_cfg(data, run, epochs=2, fit_quality=False))
    monkeypatch.setattr(model_pkg, "save_model", real_save)
    assert calls["n"] == 1
    assert (run / "last.pt").is_file() and not (run / "model.pt").exists()
    assert not (run / ".elnet.lock").exists()  # the lock went with the process
    # no --resume: refused with a hint; --resume: continues at epoch 2
    from sam2elnet.errors import UserError

    with pytest.raises(UserError, match="--resume"):
        tr.train(small_cfg(data, run, epochs=2, fit_quality=False))
    res = tr.train(small_cfg(data, run, epochs=2, fit_quality=False, resume=True))
    assert res.resumed == "all 2 epochs were done; only the steps after training ran"
    assert [int(h["epoch"]) for h in res.history] == [1, 2]
    load_model(run / "model.pt")  # a complete model file
    # model.pt without last.pt (a kill between the saves of the old order): restart, say so
    (run / "last.pt").unlink()
    res = tr.train(small_cfg(data, run, epochs=1, fit_quality=False, resume=True))
    assert res.resumed.startswith("restarted: no resume state")
    assert (run / "last.pt").is_file()
    # damaged last.pt: restart, say why
    (run / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    res = tr.train(small_cfg(data, run, epochs=1, fit_quality=False, resume=True))
    assert res.resumed.startswith("restarted: the resume state is unusable")


def test_train_cli_says_how_it_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "d", n=6)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--size", "micro",
            "--epochs", "1", "--batch-size", "2", "--image-size", "32", "--weights", "none",
            "--precision", "32", "--no-progress", "--no-quality"]  # fmt: skip
    assert main(args) == 0
    (tmp_path / "r" / "last.pt").unlink()
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "--resume: restarted: no resume state (last.pt)" in out


# ----------------------------------------------------------------------------- two jobs
def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process holding the output-folder lock on ``out`` (returns once it holds it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sam2elnet.utils.lock import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
         str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_second_job_into_the_same_folder_is_refused(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = _images(run, tmp_path / "imgs", n=2)
    out = tmp_path / "auto"
    holder = _hold_lock(out)
    try:
        rc = main(["annotate", "--model", str(run["model"]), "--images", str(imgs),
                   "--out", str(out), "--no-progress"])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 2
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
        assert f"PID {holder.pid}" in err and "in use" in err
        assert not (out / "labels").exists() and not (out / "quality.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock went with it, the folder is free again
    time.sleep(0.1)
    assert main(["annotate", "--model", str(run["model"]), "--images", str(imgs),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip


def test_synth_into_a_folder_in_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synth"
    holder = _hold_lock(out)
    try:
        rc = main(["synth", "--count", "2", "--size", "32", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and f"PID {holder.pid}" in err
        assert not (out / "images").exists()
    finally:
        holder.kill()
        holder.wait()


def test_lock_is_reentrant_and_exclusive_between_processes(tmp_path: Path) -> None:
    from sam2elnet.errors import LockedError
    from sam2elnet.utils.lock import output_lock

    with output_lock(tmp_path / "o"), output_lock(tmp_path / "o"):
        assert (tmp_path / "o" / ".elnet.lock").read_text().startswith(str(os.getpid()))
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys; from sam2elnet.utils.lock import output_lock\n"
             "try:\n    output_lock(sys.argv[1]).__enter__()\nexcept Exception as e:\n"
             "    print(type(e).__name__, e)", str(tmp_path / "o")],
            capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True,
        )  # fmt: skip
        assert probe.stdout.startswith("LockedError") and f"PID {os.getpid()}" in probe.stdout
    assert not (tmp_path / "o").exists()  # created by the lock, left empty: removed
    assert LockedError.exit_code == 2


# ----------------------------------------------------------------------------- batch policy
def test_partial_batch_exits_0_with_a_skip_line(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = _images(run, tmp_path / "imgs", n=2)
    (imgs / "zz_broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "auto"
    rc = main(["annotate", "--model", str(run["model"]), "--images", str(imgs), "--out", str(out),
               "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.out.strip().splitlines()[-1] == f"1 of 3 skipped, see {out / 'skipped.csv'}"
    assert "warning: skipping " in captured.err and "zz_broken.png" in captured.err
    assert ".py:" not in captured.err and "warnings.warn" not in captured.err
    rows = list(csv.DictReader((out / "skipped.csv").open()))
    assert [Path(r["image"]).name for r in rows] == ["zz_broken.png"]


def test_degrade_and_export_skip_bad_files(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    for p in sorted((run["data"] / "masks").glob("*.png"))[:2]:
        (masks / p.name).write_bytes(p.read_bytes())
    good = (masks / sorted(p.name for p in masks.iterdir())[0]).read_bytes()
    (masks / "zz_cut.png").write_bytes(good[: len(good) // 2])
    assert main(["degrade", "--masks", str(masks), "--out", str(tmp_path / "c"),
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"1 of 3 skipped, see {tmp_path / 'c' / 'skipped.csv'}"
    assert sorted(p.name for p in (tmp_path / "c").glob("*.png")) == sorted(
        p.name for p in masks.glob("s*.png")
    )
    assert main(["export", "--labels", str(masks), "--out", str(tmp_path / "l.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("1 of 3 skipped, see ")
    assert (tmp_path / "l_gpkg_skipped.csv").is_file()


def test_outputs_describe_what_is_on_disk(run: dict[str, Path], tmp_path: Path) -> None:
    """Re-running with another filter into the same folder moves labels instead of leaving a
    copy in both labels/ and rejected/; quality.csv lists exactly the label files on disk."""
    from sam2elnet.engine.infer import annotate_folder

    imgs = _images(run, tmp_path / "imgs", n=3)
    out = tmp_path / "auto"
    annotate_folder(run["model"], imgs, out, min_quality=0.0, progress=False)
    assert len(list((out / "labels").glob("*.png"))) == 3
    annotate_folder(run["model"], imgs, out, min_quality=1.0, progress=False)
    kept = {p.name for p in (out / "labels").glob("*.png")}
    rejected = {p.name for p in (out / "rejected").glob("*.png")}
    assert not kept & rejected and len(kept | rejected) == 3
    rows = list(csv.DictReader((out / "quality.csv").open()))
    assert sorted(r["label"] for r in rows) == sorted(
        str(p.relative_to(out)) for p in (out / "labels").glob("*.png")
    ) + sorted(str(p.relative_to(out)) for p in (out / "rejected").glob("*.png"))


def test_api_applies_the_cli_ranges(run: dict[str, Path], tmp_path: Path) -> None:
    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.errors import UserError

    imgs = _images(run, tmp_path / "imgs", n=1)
    for kw, text in (
        ({"tta": 99}, "0 <= x <= 7"),
        ({"overlap": 2000}, "smaller than --tile"),
        ({"precision": "fp16"}, "bf16 | 32"),
    ):
        with pytest.raises(UserError, match=text):
            annotate_folder(run["model"], imgs, tmp_path / "o", progress=False, **kw)
    assert not (tmp_path / "o").exists()
