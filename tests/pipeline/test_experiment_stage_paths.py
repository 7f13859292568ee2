"""A stage's summary keeps the strings that are not files under --out: image paths of a --data
given relative to the working folder (docs/results.md runs 'elnet experiment --data
../shared/data/sos-dev --out runs/...') and notes with a '/'. Found in review of ec3eac9: the
split stage returned 'runs/exp/../shared/data/...' for every image (the run could not read its
own data) and a note 'kept 10/21' came back as 'runs/exp/kept 10/21'."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2elnet.pipeline.experiment_stages import Stages, stage_summary


def test_stage_summary_keeps_data_paths_and_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jpg").write_bytes(b"")
    out = Path("runs") / "exp"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "1.png").write_bytes(b"")
    summary = {
        "images": {"x": "data/x.jpg", "up": "../elsewhere/y.jpg"},
        "note": "kept 10/21 labels",
        "label": str(out / "labels" / "1.png"),
    }
    got = Stages(out, resume=False).run("split", lambda: dict(summary))
    assert got == summary  # the same strings, the label too: out / labels/1.png
    assert Path(got["images"]["x"]).is_file() and Path(got["label"]).is_file()
    moved = tmp_path / "moved"
    (tmp_path / "runs" / "exp").rename(moved)  # the run folder moved: its own files follow it
    again = stage_summary(moved, "split")
    assert again["label"] == str(moved / "labels" / "1.png")
    assert again["images"] == summary["images"] and again["note"] == summary["note"]


def test_a_stage_that_ran_returns_its_paths_without_looking_at_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage that ran returns each path inside --out as out / path whether or not the file is
    there yet, and a path outside it as given: it was read back from disk, so a file inside
    --out not written yet came back relative to OUT ('later.png', no such file from the working
    folder) and a --data path 'data/x.jpg' came back as 'runs/exp/data/x.jpg' when OUT holds a
    file of that name."""
    monkeypatch.chdir(tmp_path)
    out = Path("runs") / "exp"
    (out / "data").mkdir(parents=True)
    (out / "data" / "x.jpg").write_bytes(b"")  # not the data's x.jpg: OUT's own
    summary = {"later": str(out / "later.png"), "image": "data/x.jpg"}
    assert Stages(out, resume=False).run("split", lambda: dict(summary)) == summary


def test_a_url_in_a_summary_is_no_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--out the working folder itself (absolute): a URL (a weights source) stays a URL, in the
    stored marker and in what the stage returns (it came back as OUT/https:/x.org/a.pt)."""
    monkeypatch.chdir(tmp_path)
    summary = {"weights": "https://x.org/a.pt"}
    assert Stages(tmp_path, resume=False).run("split", lambda: dict(summary)) == summary
    assert stage_summary(tmp_path, "split") == summary


NOTES = {"note": "1/3 of the images", "speed": "km/h", "crs": "EPSG:4326 / UTM zone 33N"}


def test_notes_with_a_slash_stay_notes_when_out_is_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out the working folder: a note with a '/' is no path under --out (a stage that ran
    returned OUT/1/3 of the images, OUT/km/h, ...); a file of the run still comes back as
    out / path, in what the stage returns and read back from its marker."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "1.png").write_bytes(b"")
    later = str(tmp_path / "labels" / "2.png")  # inside --out, not written yet
    summary = {**NOTES, "label": "labels/1.png", "later": later}
    want = {**NOTES, "label": str(tmp_path / "labels" / "1.png"), "later": later}
    assert Stages(tmp_path, resume=False).run("split", lambda: dict(summary)) == want
    Path(later).write_bytes(b"")  # written by then: a resumed run reads it back
    assert stage_summary(tmp_path, "split") == want


def test_notes_with_a_slash_stay_notes_when_out_is_above_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out a folder above the working folder: the marker stores the notes as they are (they
    were stored as 'sub/km/h', and came back so on resume)."""
    import json

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert Stages(tmp_path, resume=False).run("split", lambda: dict(NOTES)) == NOTES
    stored = json.loads((tmp_path / "stages" / "split.json").read_text())["summary"]
    assert stored == NOTES
    assert stage_summary(tmp_path, "split") == NOTES
