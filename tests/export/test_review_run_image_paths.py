"""The run's record of its images (``quality.csv``'s ``image`` column), read by `elnet export` /
`elnet import` from another working folder than the one `elnet annotate` ran in.

A user ran ``elnet annotate --images imgs --out auto`` in the project folder and ``elnet export
--labels ../proj/auto`` elsewhere: the run had recorded ``imgs/x.png`` (relative to the folder
annotate ran in) and the export stopped with ``no source image found for the label``. The run
now records absolute paths (as ``summary.json`` records its model), and a record written before
is read relative to the folder above the run where the path exists.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers_data import grey_rgb, micro_model_file, write_png
from helpers_logs import run_main


@pytest.fixture()
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``proj/images/{a,b}.png``, ``proj/m.pt`` (an untrained micro model) and ``proj/auto``:
    ``elnet annotate --images images --out auto`` run in ``proj``; the working folder is then
    ``tmp_path/other``."""
    proj = tmp_path / "proj"
    for i, n in enumerate("ab"):
        write_png(proj / "images" / f"{n}.png", grey_rgb(32, i + 1))
    micro_model_file(proj / "m.pt", bands=3)
    monkeypatch.chdir(proj)
    from sam2elnet.cli import main

    assert main(["annotate", "--model", "m.pt", "--images", "images", "--out", "auto",
                 "--no-progress"]) == 0  # fmt: skip
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    return proj


def _images(run: Path) -> list[str]:
    with (run / "quality.csv").open(newline="") as fh:
        return [r["image"] for r in csv.DictReader(fh)]


def _export_sources(capsys, out: str) -> list[str]:
    rc, _, err = run_main(capsys, "export", "--labels", "../proj/auto", "--out", out,
                          "--format", "label-studio", "--no-progress")  # fmt: skip
    assert rc == 0, err  # before: error: ... no source image found for the label; give --images
    return [t["data"]["source"] for t in json.loads(Path(out).read_text())]


def test_the_run_records_absolute_image_paths_an_export_elsewhere_finds(proj, capsys):
    want = [str(proj / "images" / "a.png"), str(proj / "images" / "b.png")]
    assert _images(proj / "auto") == want  # before: ["images/a.png", "images/b.png"]
    assert sorted(_export_sources(capsys, "ls/tasks.json")) == want


def test_an_older_record_relative_to_the_annotate_folder_is_still_read(proj, capsys):
    q = proj / "auto" / "quality.csv"
    rows = list(csv.DictReader(q.open(newline="")))
    for r in rows:  # as annotate wrote it before: relative to the folder it ran in
        r["image"] = f"images/{Path(r['image']).name}"
    with q.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    want = [str(proj / "images" / "a.png"), str(proj / "images" / "b.png")]
    assert sorted(_export_sources(capsys, "ls/tasks.json")) == want


def test_resume_still_matches_relative_and_absolute_rows(proj, capsys, monkeypatch):
    monkeypatch.chdir(proj)
    q = proj / "auto" / "quality.csv"
    text = q.read_text()
    q.write_text(text.replace(f"{proj / 'images'}/", "images/"))  # an older run's rows
    for _ in range(2):  # the older record, then the one the resumed run wrote (absolute)
        rc, stdout, err = run_main(capsys, "annotate", "--model", "m.pt", "--images", "images",
                                   "--out", "auto", "--resume", "--no-progress")  # fmt: skip
        assert rc == 0, err
        summary = json.loads((proj / "auto" / "summary.json").read_text())
        assert summary["n_resumed"] == 2 and summary["n_images"] == 2, stdout + err
    assert _images(proj / "auto") == [str(proj / "images" / n) for n in ("a.png", "b.png")]


def test_resume_after_the_project_moved_keeps_its_rows(proj, capsys, monkeypatch, tmp_path):
    """The project (images and run folder together) moved, then ``--resume`` from its new place:
    the rows name the old absolute paths. Before, nothing matched: every image was redone and
    quality.csv listed each label twice (the new row, and the old one kept as an earlier run's).
    Now a row whose image is gone is the row of the image here with its name and label name."""
    moved = tmp_path / "moved"
    proj.rename(moved)
    monkeypatch.chdir(moved)
    rc, stdout, err = run_main(capsys, "annotate", "--model", "m.pt", "--images", "images",
                               "--out", "auto", "--resume", "--no-progress")  # fmt: skip
    assert rc == 0, err
    summary = json.loads((moved / "auto" / "summary.json").read_text())
    assert (summary["n_resumed"], summary["n_images"]) == (2, 2), stdout + err
    assert _images(moved / "auto") == [str(moved / "images" / n) for n in ("a.png", "b.png")]


def test_resume_with_other_images_of_the_same_names_predicts_them(proj, capsys, monkeypatch):
    """The rows' images are gone and ``--images`` names another folder beside the run holding
    files of the same names (``batch2/a.png`` after ``batch1/a.png``): other images, predicted,
    not taken for the old ones moved."""
    monkeypatch.chdir(proj)
    (proj / "images").rename(proj / "batch2")
    rc, stdout, err = run_main(capsys, "annotate", "--model", "m.pt", "--images", "batch2",
                               "--out", "auto", "--resume", "--no-progress")  # fmt: skip
    assert rc == 0, err
    summary = json.loads((proj / "auto" / "summary.json").read_text())
    assert summary["n_images"] - summary["n_resumed"] == 2, stdout + err  # both predicted
    assert set(_images(proj / "auto")) >= {str(proj / "batch2" / n) for n in ("a.png", "b.png")}


def test_an_old_relative_name_is_looked_up_a_few_folders_up_only(tmp_path) -> None:
    """An older quality table's relative image path is looked up in the folders just above the
    run (where it was made), not all the way up to /: an unrelated x.png far above is not it."""
    from sam2elnet.data.runfolder import NEAR_LEVELS, _resolve_near

    base = tmp_path.joinpath(*[f"d{i}" for i in range(NEAR_LEVELS + 2)])
    base.mkdir(parents=True)
    (tmp_path / "x.png").write_bytes(b"far")  # NEAR_LEVELS + 2 folders above base
    assert _resolve_near("x.png", base) == "x.png"  # not found: as written
    near = base.parents[1] / "y.png"
    near.write_bytes(b"near")
    assert _resolve_near("y.png", base) == str(near)
