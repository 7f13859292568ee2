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


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> Path:
    """``proj/images/{a,b}.png``, coarse labels ``proj/coarse/{a,b}.png``, ``proj/m.pt`` (an
    untrained micro model) and ``proj/auto``: ``elnet COMMAND --model m.pt --images images
    --out auto`` run in ``proj``; the working folder is then ``tmp_path/other``."""
    from helpers_data import blob_mask, write_mask_png

    from sam2elnet.cli import main

    proj = tmp_path / "proj"
    for i, n in enumerate("ab"):
        write_png(proj / "images" / f"{n}.png", grey_rgb(32, i + 1))
        write_mask_png(proj / "coarse" / f"{n}.png", blob_mask(32, i))
    micro_model_file(proj / "m.pt", bands=3)
    monkeypatch.chdir(proj)
    argv = [*command, "--model", "m.pt", "--images", "images", "--out", "auto", "--no-progress"]
    assert main(argv) == 0
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    return proj


def _column(run: Path, key: str) -> list[str]:
    with (run / "quality.csv").open(newline="") as fh:
        return [r[key] for r in csv.DictReader(fh)]


@pytest.fixture()
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``elnet annotate`` run in ``proj`` (:func:`_project`)."""
    return _project(tmp_path, monkeypatch, ["annotate"])


def _images(run: Path) -> list[str]:
    return _column(run, "image")


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


@pytest.fixture()
def enhanced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``elnet enhance --labels coarse`` run in ``proj`` (:func:`_project`)."""
    return _project(tmp_path, monkeypatch, ["enhance", "--labels", "coarse"])


def _coarse(run: Path) -> list[str]:
    return _column(run, "coarse")


def _enhance_resume(capsys, proj: Path, at: str = "") -> dict:
    """``elnet enhance --resume`` of ``proj``'s run, its paths given relative to the working
    folder, whose subfolder ``at`` (``""``: the working folder itself) is ``proj``."""
    rc, stdout, err = run_main(capsys, "enhance", "--model", f"{at}m.pt", "--images",
                               f"{at}images", "--labels", f"{at}coarse", "--out", f"{at}auto",
                               "--resume", "--no-progress")  # fmt: skip
    assert rc == 0, err
    return json.loads((proj / "auto" / "summary.json").read_text())


def test_enhance_records_absolute_coarse_paths_a_reader_elsewhere_finds(enhanced) -> None:
    """Enhance's ``coarse`` column, as its ``image`` column, is absolute: a reader in another
    working folder finds the coarse labels. Before it held ``coarse/a.png`` (relative to the
    folder enhance ran in)."""
    from sam2elnet.data.runfolder import read_quality_table

    want = [str(enhanced / "coarse" / n) for n in ("a.png", "b.png")]
    assert _coarse(enhanced / "auto") == want
    recs = read_quality_table(enhanced / "auto" / "quality.csv")
    assert [r["coarse_path"] for r in recs] == want


def test_resume_of_an_older_relative_coarse_record_makes_it_absolute(enhanced, capsys, monkeypatch):
    monkeypatch.chdir(enhanced)
    q = enhanced / "auto" / "quality.csv"
    q.write_text(q.read_text().replace(f"{enhanced}/", ""))  # an older run's rows: relative
    assert _coarse(enhanced / "auto") == ["coarse/a.png", "coarse/b.png"]
    summary = _enhance_resume(capsys, enhanced)
    assert (summary["n_resumed"], summary["n_images"]) == (2, 2)
    assert _coarse(enhanced / "auto") == [str(enhanced / "coarse" / n) for n in ("a.png", "b.png")]


@pytest.mark.parametrize(
    ("older", "at"),
    [(False, ""), (True, ""), (True, "moved/")],
    ids=["absolute", "older-relative", "older-relative-from-above"],
)
def test_resume_after_the_project_moved_names_the_coarse_labels_where_they_are(
    enhanced, capsys, monkeypatch, tmp_path, older, at
):
    """Images, coarse labels and run folder moved together, then ``--resume`` from the new place
    or the folder above it (``older``: a record relative to the folder the run was made in):
    the resumed rows name the coarse labels where they are now, not where they were."""
    if older:
        q = enhanced / "auto" / "quality.csv"
        q.write_text(q.read_text().replace(f"{enhanced}/", ""))
    moved = tmp_path / "moved"
    enhanced.rename(moved)
    monkeypatch.chdir(moved.parent if at else moved)
    summary = _enhance_resume(capsys, moved, at)
    assert (summary["n_resumed"], summary["n_images"]) == (2, 2)
    assert _coarse(moved / "auto") == [str(moved / "coarse" / n) for n in ("a.png", "b.png")]
