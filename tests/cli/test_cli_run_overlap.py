"""``elnet cv`` / ``elnet experiment``: a run folder that overlaps one of the dataset's folders,
in either direction, is refused before anything is read, trained or written.

Inside a split folder (``train/``, ``test/``, an SOS sensor folder) or an images / masks folder
(new or not, also through a symlink); the dataset, or the ``--weights`` file, anywhere inside a
sub-folder the run writes (``folds/``, a stage folder). Each refusal is one ``error:`` line naming
``--out`` and the folder, exit 2, nothing written (engine.folder_inputs.check_run_out,
utils.paths.check_out_overlap). A run folder in the dataset folder outside those folders, or a
dataset in the run folder outside its written sub-folders, passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_data import make_generic, make_sos
from helpers_logs import refused_untouched

from sam2elnet.engine.folder_inputs import check_run_out
from sam2elnet.pipeline.crossval_config import CV_PARTS
from sam2elnet.pipeline.experiment_config import RUN_PARTS

os.environ.setdefault("SAM2ELNET_THREADS", "1")

SPLIT = "a split folder of the dataset read with --data"
IMAGES = "the folder of the dataset's images read with --data"
MASKS = "the folder of the dataset's masks read with --data"


@pytest.fixture
def splits(tmp_path: Path) -> Path:
    """Generic layout with split folders: d/train/{images,masks}, d/test/{images,masks}."""
    root = tmp_path / "d"
    make_generic(root / "train", n=4)
    make_generic(root / "test", n=2)
    return root


def _inside(out: Path, desc: str, folder: Path, command: str) -> str:
    return (
        f"error: --out {out}: is inside {desc} ({folder}); {command} would write its outputs "
        "among the inputs. Choose a --out folder outside it"
    )


def _run(capsys: pytest.CaptureFixture[str], command: str, data: Path, out: Path, root: Path,
         *extra: str) -> str:  # fmt: skip
    """``elnet COMMAND --data DATA --out OUT``: refused (exit 2, one error line, no file written
    under ``root``, ``out`` not created when it was new); returns the error line."""
    new = not out.exists()
    argv = [command, "--data", str(data), "--out", str(out), "--no-progress", *extra]
    err = refused_untouched(capsys, argv, root)
    assert not new or not out.exists()
    return err


@pytest.mark.parametrize("command", ["cv", "experiment"])
@pytest.mark.parametrize(
    ("rel", "desc", "folder"),
    [("train/run", SPLIT, "train"), ("test/run", SPLIT, "test"),
     ("train/images/run", IMAGES, "train/images"), ("test/masks/run/deeper", MASKS, "test/masks")],
)  # fmt: skip
def test_run_folder_inside_a_split_or_image_folder_is_refused(
    splits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, rel: str,
    desc: str, folder: str,
) -> None:  # fmt: skip
    """A new run folder inside ``train/`` / ``test/`` or their images / masks folders."""
    out = splits / rel
    err = _run(capsys, command, splits, out, tmp_path)
    assert err == _inside(out, desc, splits / folder, command)


@pytest.mark.parametrize("command", ["cv", "experiment"])
def test_run_folder_equal_to_a_split_folder_is_refused(
    splits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = splits / "train"
    err = _run(capsys, command, splits, out, tmp_path)
    assert err == _inside(out, SPLIT, out, command).replace("is inside ", "is ")


def test_run_folder_inside_an_sos_sensor_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_sos(tmp_path / "sos")
    out = data / "test" / "sentinel" / "sat" / "cv"
    err = _run(capsys, "cv", data, out, tmp_path)
    assert err == _inside(out, IMAGES, data / "test" / "sentinel" / "sat", "cv")
    out = data / "train" / "palsar" / "cv"  # images and masks in one folder
    err = _run(capsys, "cv", data, out, tmp_path)
    assert err == _inside(out, IMAGES, data / "train" / "palsar", "cv")


def test_run_folder_through_a_symlink_into_a_split_folder_is_refused(
    splits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "runs"
    link.symlink_to(splits / "train", target_is_directory=True)
    out = link / "exp"
    err = _run(capsys, "experiment", splits, out, tmp_path)
    assert err == _inside(out, SPLIT, splits / "train", "experiment")


@pytest.mark.parametrize(
    ("command", "sub", "writes"),
    [("cv", "folds/0/train", "its folds (image subsets, models, predictions)"),
     ("experiment", "labelled/copy", "the labelled subset"),
     ("experiment", "stages/x", "its stage records")],
)  # fmt: skip
def test_data_inside_a_written_sub_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, sub: str, writes: str
) -> None:
    """``--data RUN/folds/0/train --out RUN``: a re-run replaces or clears RUN/folds."""
    run = tmp_path / "run"
    data = make_generic(run / sub, n=4)
    part = run / sub.split("/")[0]
    err = _run(capsys, command, data, run, tmp_path)
    assert err == (
        f"error: --out {run}: {command} writes {writes} into {part}, which holds the dataset "
        f"read with --data ({data}); they would replace or mix with the inputs. Choose another "
        "--out folder"
    )


def test_weights_deep_in_a_written_sub_folder_is_refused(
    splits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    weights = run / "folds" / "0" / "sam2.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"a checkpoint")
    err = _run(capsys, "cv", splits, run, tmp_path, "--weights", str(weights))
    assert err == (
        f"error: --out {run}: cv writes its folds (image subsets, models, predictions) into "
        f"{run / 'folds'}, which holds the --weights file ({weights}); they would replace or mix "
        "with the inputs. Choose another --out folder"
    )


def test_run_and_data_side_by_side_or_nested_outside_the_read_folders_pass(
    splits: Path, tmp_path: Path
) -> None:
    """``data/runs`` (the dataset folder holds no images itself), ``RUN/data`` (not a written
    sub-folder), a folder next to the dataset: nothing refused, nothing created."""
    for parts in (CV_PARTS, RUN_PARTS):
        for out in (splits / "runs", tmp_path / "next", splits / "runs" / "train"):
            check_run_out(out, "x", splits, parts)
            assert not out.exists()
    run = tmp_path / "run"
    data = make_generic(run / "mydata", n=2)
    check_run_out(run, "cv", data, CV_PARTS)
    check_run_out(run, "experiment", data, RUN_PARTS)


def test_a_new_run_folder_is_checked_without_listing_the_dataset(
    splits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new --out holds no part an input file could be in, yet check_run_out listed every image
    and mask of --data (discover) to find the dataset's folders: now it finds them with a few
    stat calls (data.layout_places.read_folders) and still refuses a new --out inside them."""
    from sam2elnet.errors import UserError

    listed: list[Path] = []
    real_listdir, real_scandir = os.listdir, os.scandir

    def listdir(p: str | Path = ".") -> list[str]:
        listed.append(Path(p))
        return real_listdir(p)

    def scandir(p: str | Path | int = ".") -> object:
        if not isinstance(p, int):  # a file descriptor: shutil.rmtree (tmp_path's cleanup)
            listed.append(Path(p))
        return real_scandir(p)

    # patched only inside the block: pytest's own clean-up of tmp_path (shutil.rmtree, which
    # calls os.scandir with a file descriptor) runs after the test with the real functions
    with monkeypatch.context() as m:
        m.setattr(os, "listdir", listdir)
        m.setattr(os, "scandir", scandir)
        for parts in (CV_PARTS, RUN_PARTS):
            check_run_out(tmp_path / "new", "x", splits, parts)
            with pytest.raises(UserError, match=f"is inside {IMAGES}"):
                check_run_out(splits / "train" / "images" / "run", "x", splits, parts)
            with pytest.raises(UserError, match=f"is inside {SPLIT}"):
                check_run_out(splits / "test" / "run", "x", splits, parts)
        assert not [p for p in listed if p == splits or splits in p.parents]
        # an existing --out still lists the dataset, to name the input file one of its parts holds
        (tmp_path / "old").mkdir()
        check_run_out(tmp_path / "old", "x", splits, RUN_PARTS)
    assert splits / "train" / "images" in listed


def test_the_folders_a_layout_reads_are_found_without_listing_them(tmp_path: Path) -> None:
    """read_folders names what discover reads, SOS sensor folders and sat/gt included."""
    from sam2elnet.data.layout_places import read_folders

    sos = make_sos(tmp_path / "sos")
    got = {(role, f.relative_to(sos).as_posix()) for role, f in read_folders(sos)}
    want = {("images", "train/palsar"), ("images", "train/sentinel")}
    want |= {("images", f"test/{s}/sat") for s in ("palsar", "sentinel")}
    want |= {("masks", f"test/{s}/gt") for s in ("palsar", "sentinel")}
    assert got == want
    generic = make_generic(tmp_path / "g", n=2)
    (generic / "coarse").mkdir()
    assert read_folders(generic) == [
        ("images", generic / "images"), ("masks", generic / "masks"),
        ("coarse labels", generic / "coarse"),
    ]  # fmt: skip
    assert (
        read_folders(tmp_path / "nowhere") == [] and read_folders(tmp_path / "g" / "images") == []
    )
