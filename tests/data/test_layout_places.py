"""Which folders an SOS sensor folder is read from (data.layout_places.sensor_place), one rule
whether the sensor folder is the dataset root (``sos/test/palsar``) or under ``test/``, and the
one list of layout names (``--layout`` of ``elnet stats`` / ``elnet train``, ``TrainConfig``)."""

from __future__ import annotations

import json
import os
import shutil
import typing
from pathlib import Path

import pytest
from helpers_data import make_chn6, make_sos
from pydantic import ValidationError

from sam2elnet.cli import main
from sam2elnet.config import TrainConfig
from sam2elnet.data.layout_places import Place, detect_layout, places, read_folders, sensor_place
from sam2elnet.data.layouts import discover
from sam2elnet.errors import DataError
from sam2elnet.option_values import LAYOUTS
from sam2elnet.options import StatsOptions


def _no_sat(root: Path) -> Path:
    """``root``'s test/palsar with its sat/ images moved up beside gt/ (sat/ gone): the folder
    one rule read as a training folder (images beside labels) and the other as sat/ + gt/."""
    folder = root / "test" / "palsar"
    for f in (folder / "sat").iterdir():
        shutil.move(f, folder / f.name)
    (folder / "sat").rmdir()
    return folder


def test_sensor_place_one_rule_for_both_kinds_of_folder(tmp_path):
    root = make_sos(tmp_path / "sos", n=2)
    train, test = root / "train" / "palsar", root / "test" / "palsar"
    assert sensor_place("train", "palsar", train) == Place(
        "train", "palsar", train, train, mixed=True
    )
    assert sensor_place("test", "palsar", test) == Place(
        "test", "palsar", test / "sat", test / "gt"
    )
    folder = _no_sat(root)
    want = Place("test", "palsar", folder / "sat", folder / "gt")
    # under the dataset root and as the root itself: the same place (was: mixed for the root)
    assert [p for p in places(root, "sos") if p.images.parent == folder] == [want]
    assert places(folder, "sos") == [want]


@pytest.mark.parametrize("as_root", [False, True])
def test_gt_without_sat_is_one_error_naming_sat(tmp_path, as_root):
    """Before: under the dataset root the gt/ masks were 'unmatched' (a warning) and the images
    beside gt/ not read at all; as the root, gt/ was ignored and the images read as a training
    folder. Now both say the sat/ folder is missing."""
    root = make_sos(tmp_path / "sos", n=2)
    folder = _no_sat(root)
    with pytest.raises(DataError) as err:
        discover(folder if as_root else root)
    assert str(err.value) == (
        f"{folder}: has gt/ but no sat/ folder; put the <id>_sat images in sat/ beside gt/ "
        "(SOS test layout), or beside their <id>_mask labels with no gt/ folder (SOS training "
        "layout)"
    )
    # another sensor, or the training split alone, still reads
    assert len(discover(root, sensors="sentinel").samples) == 3
    assert len(discover(root, split="train").samples) == 4


def test_gt_alone_names_sat_not_no_layout(tmp_path):
    """A sensor folder holding gt/ and nothing else was 'no recognisable dataset layout'."""
    folder = _no_sat(make_sos(tmp_path / "sos", n=2))
    for f in folder.glob("*_sat.jpg"):
        f.unlink()
    with pytest.raises(DataError, match=r"has gt/ but no sat/ folder"):
        discover(folder)


SKIP_AS_ROOT = pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a folder without permissions (chmod does not stop it)"
)


def _chmod_000(root: Path, request: pytest.FixtureRequest) -> Path:
    """``root``'s test/ split folder made unreadable (chmod 000; given back its permissions
    when the test ends, so that pytest can remove it)."""
    folder = root / "test"
    folder.chmod(0)
    request.addfinalizer(lambda: folder.chmod(0o755))
    return folder


def _split_folder_text(folder: Path) -> str:
    return (
        f"{folder}: cannot list this split folder (permission denied); let your user read it "
        f"(chmod -R u+rX {folder}) or move it out of {folder.parent}"
    )


@pytest.mark.parametrize(
    "broken", ["gt_without_sat", pytest.param("split_folder_chmod", marks=SKIP_AS_ROOT)]
)
def test_stats_reports_the_splits_read_and_names_a_broken_one(tmp_path, capsys, request, broken):
    """``elnet stats`` read every split and stopped on a broken test split (test/palsar with
    gt/ but no sat/: one error line; a test/ folder without permissions: the same, from layout
    detection). Now it reports the train split, with one warning naming the broken folder and
    what to do, and exits 0; --split test, or no split that can be read, is one error line.
    A broken test/palsar beside a readable test/sentinel left out test/sentinel too; it is
    reported now (:func:`test_a_readable_sensor_folder_beside_an_unreadable_one_is_kept`)."""
    root = make_sos(tmp_path / "sos", n=2)
    rows = ["  split=train  sensor=palsar    pairs=2", "  split=train  sensor=sentinel  pairs=2"]
    if broken == "gt_without_sat":
        folder = _no_sat(root)
        why = (
            f"{folder}: has gt/ but no sat/ folder; put the <id>_sat images in sat/ beside gt/ "
            "(SOS test layout), or beside their <id>_mask labels with no gt/ folder (SOS "
            "training layout)"
        )
        said = (
            "warning: elnet stats leaves out a sensor folder of the test split that cannot be "
            f"read (its other sensor folders are used): {why}"
        )
        rows.insert(0, "  split=test   sensor=sentinel  pairs=1")
    else:
        folder = _chmod_000(root, request)
        why = _split_folder_text(folder)
        said = (
            "warning: elnet stats uses only the train split; left out another that cannot be "
            f"read: {why}"
        )
    assert main(["stats", "--data", str(root), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert warnings == [said]
    assert out.splitlines()[0] == f"layout: sos  modality: sar  pairs: {len(rows) + 2}"
    assert [ln for ln in out.splitlines() if ln.startswith("  split=")] == rows
    assert main(["stats", "--data", str(root), "--split", "test", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {why}"
    if broken == "split_folder_chmod":  # nothing readable: the first split's error
        (root / "train").chmod(0)
        request.addfinalizer(lambda: (root / "train").chmod(0o755))
        assert main(["stats", "--data", str(root), "--no-progress"]) == 2
        assert capsys.readouterr().err.strip() == f"error: {_split_folder_text(root / 'train')}"
    else:  # nothing readable: train/ gone, and test/sentinel, which is read now
        shutil.rmtree(root / "train")
        shutil.rmtree(root / "test" / "sentinel")
        assert main(["stats", "--data", str(root), "--no-progress"]) == 2
        assert capsys.readouterr().err.strip() == f"error: {why}"


def _unreadable_sat(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``root``'s test/palsar/sat/ made unreadable (listing it raises, as without permission:
    the tests may run as root, which chmod does not stop)."""
    from sam2elnet.data import layouts

    folder = root / "test" / "palsar" / "sat"
    listing = layouts.image_files

    def image_files(where: Path, **kw: object) -> list[Path]:
        if where == folder:
            raise PermissionError(13, "Permission denied", str(folder))
        return listing(where, **kw)

    monkeypatch.setattr(layouts, "image_files", image_files)
    return folder


@pytest.mark.parametrize(
    "broken",
    ["gt_without_sat", "unreadable", pytest.param("split_folder_chmod", marks=SKIP_AS_ROOT)],
)
def test_a_broken_test_sensor_folder_stops_only_the_commands_that_use_it(
    tmp_path, capsys, monkeypatch, request, broken
):
    """``elnet train`` reads only the train split but stopped on a broken test/palsar folder
    (select_split read every split first); now it trains, with one warning naming the folder.
    Commands that use the test split still stop with one line naming it. A test/ folder
    without permissions stopped every command, train included (layout detection looked into
    it); now it is left out the same way."""
    root = make_sos(tmp_path / "sos", n=2, size=40)
    pred = tmp_path / "pred"
    shutil.copytree(root / "test" / "sentinel" / "gt", pred)
    if broken == "gt_without_sat":
        folder = _no_sat(root)
        why = f"{folder}: has gt/ but no sat/ folder; put the <id>_sat images in sat/"
    elif broken == "unreadable":
        folder = _unreadable_sat(root, monkeypatch)
        why = f"{folder}: permission denied"
    else:  # test/ itself without permissions: layout detection stopped every command on it
        why = _split_folder_text(_chmod_000(root, request))
    run = tmp_path / "run"
    argv = ["train", "--data", str(root), "--out", str(run), "--weights", "none",
            "--size", "micro", "--epochs", "1", "--image-size", "32", "--batch-size", "2",
            "--no-progress", "--no-quality"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    (warning,) = [ln for ln in err.splitlines() if "cannot be read" in ln]
    assert warning.startswith(
        f"warning: training uses only the train split; left out another that cannot be read: {why}"
    )
    # test/sentinel still reads: counted (before: the whole test split was left out)
    found = "train (4)" if broken == "split_folder_chmod" else "train (4), test (1)"
    assert f"splits found: {found}; using: train (4 labelled pairs)" in out
    saved = json.loads((run / "splits.json").read_text())
    assert len(saved["train"] + saved["val"]) == 4 and saved["dataset_splits"] == ["train"]
    for argv in (
        ["train", "--data", str(root), "--out", str(tmp_path / "r2"), "--weights", "none",
         "--split", "test"],
        ["evaluate", "--pred", str(pred), "--truth", str(root), "--split", "test"],
    ):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {why}") and "\n" not in err, argv


def _unreadable_sensor(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``root``'s test/palsar/ made unreadable as chmod 000 makes it for a user other than
    root: its sat/ and gt/ look absent, and listing it raises."""
    from sam2elnet.data import layout_places, layouts

    folder = root / "test" / "palsar"
    listing, is_sensor = layouts.image_files, layout_places._split_sensor

    def image_files(where: Path, **kw: object) -> list[Path]:
        if where == folder:
            raise PermissionError(13, "Permission denied", str(folder))
        return listing(where, **kw)

    monkeypatch.setattr(layouts, "image_files", image_files)
    monkeypatch.setattr(layout_places, "_split_sensor", lambda f: f != folder and is_sensor(f))
    return folder


@pytest.mark.parametrize("how", ["monkeypatched", pytest.param("chmod", marks=SKIP_AS_ROOT)])
def test_a_readable_sensor_folder_beside_an_unreadable_one_is_kept(
    tmp_path, capsys, monkeypatch, request, how
):
    """SOS test/palsar unreadable (chmod 000), test/sentinel fine: ``elnet stats`` left out the
    whole test split, test/sentinel too, and its warning said to 'choose a folder you can write
    to'. Now test/sentinel is reported and one warning names test/palsar and how to read it."""
    root = make_sos(tmp_path / "sos", n=3)
    if how == "chmod":
        folder = root / "test" / "palsar"
        folder.chmod(0)
        request.addfinalizer(lambda: folder.chmod(0o755))
    else:
        folder = _unreadable_sensor(root, monkeypatch)
    assert main(["stats", "--data", str(root), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert warnings == [
        "warning: elnet stats leaves out a sensor folder of the test split that cannot be read "
        f"(its other sensor folders are used): {folder}: permission denied; let your user read "
        f"it (chmod -R u+rX {folder}) or move it out of {root}"
    ]
    assert [ln for ln in out.splitlines() if ln.startswith("  split=")] == [
        "  split=test   sensor=sentinel  pairs=2",
        "  split=train  sensor=palsar    pairs=3",
        "  split=train  sensor=sentinel  pairs=3",
    ]
    # a command that uses the test split still stops on it (one line naming the folder)
    assert main(["stats", "--data", str(root), "--split", "test", "--no-progress"]) == 2
    assert str(folder) in capsys.readouterr().err


@pytest.mark.parametrize("name", ["palsar", "sentinel"])
def test_a_chn6_folder_named_for_a_sensor_is_chn6(tmp_path, name):
    """A CHN6-CUG folder (``images/`` + ``gt/``) whose root is named ``palsar`` or ``sentinel``
    was read as one SOS sensor folder, and stopped with 'has gt/ but no sat/ folder'; so did a
    dataset root holding it. The structure decides now: no SOS folder holds ``images/``."""
    chn6 = make_chn6(tmp_path / "roads", n=2)
    one = tmp_path / "one" / name
    shutil.copytree(chn6 / "train", one)
    index = discover(one)
    assert (index.layout, index.modality) == ("chn6", "optical")
    assert [(s.image.parent, s.mask.parent) for s in index.samples] == [
        (one / "images", one / "gt")
    ] * 2
    assert read_folders(one) == [("images", one / "images"), ("masks", one / "gt")]
    # the train/ + val/ layout under such a root, and a root holding the folder
    splits = tmp_path / "splits" / name
    shutil.copytree(chn6, splits)
    assert discover(splits).layout == "chn6"
    assert detect_layout(tmp_path / "one") is None


def test_a_real_sos_sensor_folder_is_still_sos(tmp_path):
    root = make_sos(tmp_path / "sos", n=2)
    for folder in (root / "test" / "palsar", root / "train" / "sentinel"):
        index = discover(folder)
        assert (index.layout, index.modality) == ("sos", "sar")
        assert {(s.split, s.sensor) for s in index.samples} == {(folder.parent.name, folder.name)}
    assert detect_layout(root) == "sos" and detect_layout(root / "test") == "sos"


def _literal(annotation: object) -> tuple[str, ...]:
    return typing.get_args(annotation)


def test_one_list_of_layout_names():
    assert LAYOUTS == ("auto", "sos", "chn6", "generic", "flat")
    assert _literal(StatsOptions.model_fields["layout"].annotation) == LAYOUTS
    assert _literal(TrainConfig.model_fields["layout"].annotation) == LAYOUTS


def test_train_config_refuses_an_unknown_layout(tmp_path):
    with pytest.raises(ValidationError, match="layout"):
        TrainConfig(data=tmp_path, out=tmp_path / "run", layout="sosx")
    assert TrainConfig(data=tmp_path, out=tmp_path / "run", layout="flat").layout == "flat"


@pytest.mark.parametrize("command", ["train", "stats"])
def test_unknown_layout_is_one_error_line_before_the_data_is_read(tmp_path, capsys, command):
    """``elnet train --layout sosx`` was discover()'s error ('unknown layout 'sosx'; choose one
    of ...', no flag named) after the weights and --out checks, and ``TrainConfig`` took any
    string; now the config refuses it and the error names --layout, as stats' does."""
    root = make_sos(tmp_path / "sos", n=2)
    argv = [command, "--data", str(root), "--layout", "sosx", "--no-progress"]
    argv += ["--out", str(tmp_path / "run")] if command == "train" else []
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: invalid value for --layout: 'sosx' (choose auto | sos | chn6 | generic | flat)"
    )
    assert not (tmp_path / "run").exists()
