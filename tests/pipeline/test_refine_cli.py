"""``elnet refine`` (classical baselines over a folder) and ``elnet degrade`` on the SOS layout
with ``--ids``: the command chain that measures enhancement (docs/evaluation.md)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.data.masks import read_mask
from sam2elnet.pipeline.refine import refine

S = 48


def _scene(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A dark slick (value 40) on bright sea (200) and its true mask."""
    truth = np.zeros((S, S), bool)
    truth[10 + k : 34, 12 : 36 - k] = True
    img = np.where(truth, 40, 200).astype(np.uint8)
    return img, truth


@pytest.fixture
def sos(tmp_path: Path) -> Path:
    """SOS training layout: train/palsar/<id>_sat.jpg next to <id>_mask.png (lossless PNG images
    here so the test is exact; the names are what matters)."""
    d = tmp_path / "train" / "palsar"
    d.mkdir(parents=True)
    for k, i in enumerate(("10001", "10002", "10003")):
        img, truth = _scene(k)
        Image.fromarray(img).save(d / f"{i}_sat.png")
        Image.fromarray(truth.astype(np.uint8) * 255).save(d / f"{i}_mask.png")
    return d


def test_degrade_sos_layout_ids(sos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": ["10001"], "val": [], "held_out": ["10002", "10003"]}))
    out = tmp_path / "coarse"
    argv = [
        "degrade", "--masks", str(sos), "--out", str(out), "--profile", "freehand",
        "--ids", str(splits), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    # only the held-out masks, never the images next to them
    assert sorted(p.name for p in out.glob("*.png")) == ["10002_mask.png", "10003_mask.png"]
    rows = list(csv.DictReader((out / "coarse_iou.csv").open()))
    assert [r["file"] for r in rows] == [
        "10002_mask.png",
        "10003_mask.png",
    ]
    # a text list works too; an id list naming nothing here is one error line
    (tmp_path / "ids.txt").write_text("# hold-out\n10001_mask.png\n")
    assert main([*argv[:4], str(tmp_path / "c2"), "--ids", str(tmp_path / "ids.txt")]) == 0
    assert [p.name for p in (tmp_path / "c2").glob("*.png")] == ["10001_mask.png"]
    (tmp_path / "none.txt").write_text("99999\n")
    capsys.readouterr()
    rc = main([*argv[:4], str(tmp_path / "c3"), "--ids", str(tmp_path / "none.txt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "the only listed id names no mask" in err
    assert not (tmp_path / "c3").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": ["1"]}))
    rc = main([*argv[:4], str(tmp_path / "c4"), "--ids", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and "held_out" in err and err.count("\n") == 1


def test_refine_cli_matches_api_and_resumes(
    sos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    for i in ("10001", "10002"):
        t = read_mask(sos / f"{i}_mask.png")
        c = np.zeros_like(t)
        c[6:38, 8:40] = True  # a box around the slick: the refiners should shrink it
        Image.fromarray(c.astype(np.uint8) * 255).save(coarse / f"{i}_mask.png")
    out = tmp_path / "guided"
    argv = [
        "refine", "--method", "guided", "--images", str(sos), "--coarse", str(coarse),
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    # 10003 has no coarse label: an error naming it, unless --skip-missing
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "10003_sat.png" in err and "--skip-missing" in err
    assert not out.exists()
    assert main([*argv, "--skip-missing"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["10001_sat.png", "10002_sat.png"]
    # same result as the API on the normalised image (SAR: fixed 0..255 -> 0..1)
    img = np.asarray(Image.open(sos / "10001_sat.png"), np.float32)[None] / 255.0
    want = refine("guided", img, read_mask(coarse / "10001_mask.png"))
    got = read_mask(out / "10001_sat.png")
    assert np.array_equal(got, want)
    rows = list(csv.DictReader((out / "refine.csv").open()))
    assert [r["label"] for r in rows] == ["10001_sat.png", "10002_sat.png"]
    assert int(rows[0]["removed_px"]) == int((read_mask(coarse / "10001_mask.png") & ~want).sum())
    # resume: nothing redone, the table kept
    capsys.readouterr()
    assert main([*argv, "--skip-missing", "--resume"]) == 0
    assert "refined 0 labels" in capsys.readouterr().out
    # the refined folder is a baseline for evaluate
    js = tmp_path / "e.json"
    ev = ["evaluate", "--pred", str(out), "--truth", str(sos), "--baseline", str(coarse)]
    assert main([*ev, "--json", str(js)]) == 0, capsys.readouterr().err
    c = json.loads(js.read_text())["comparison"]
    assert c["n"] == 2 and c["iou"] > c["baseline_iou"]


def test_refine_bad_inputs(sos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["refine", "--images", str(sos), "--out", str(tmp_path / "o")]
    for argv, needle in (
        ([*base, "--method", "magic", "--coarse", str(sos)], "unknown refinement method"),
        ([*base, "--method", "guided", "--coarse", str(tmp_path / "nope")], "nope"),
        ([*base, "--method", "guided", "--coarse", str(sos), "--modality", "x"], "modality"),
    ):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error:") and needle in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_refine_modality_decided_like_the_other_commands(
    sos: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """``--modality`` auto (the default; sar before): the SOS layout the images belong to or the
    dataset's dataset.json decides, else the images; grey images copied out of their layout are
    read as optical with the warning naming --modality sar; a given modality as given."""
    from helpers_logs import logs_warning

    from sam2elnet.pipeline.refine import refine_folder

    coarse = tmp_path / "coarse"
    coarse.mkdir()
    for i in ("10001", "10002", "10003"):
        c = np.zeros((S, S), np.uint8)
        c[6:38, 8:40] = 255
        Image.fromarray(c).save(coarse / f"{i}_mask.png")
    # the SOS layout: sar, said in one line (exact SAR scaling: the test above)
    argv = ["refine", "--method", "morphological", "--coarse", str(coarse), "--no-progress"]
    assert main([*argv, "--images", str(sos), "--out", str(tmp_path / "o1")]) == 0
    out = capsys.readouterr().out
    assert f"modality: sar (SOS layout: {sos}; --modality sar|optical" in out  # a dataset itself
    # the same grey images in a plain folder: nothing tells; optical assumed, with the warning
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sos.glob("*_sat.png"):
        shutil.copy(f, flat / f.name)
    with logs_warning(caplog, r"optical assumed .*--modality sar"):
        res = refine_folder(flat, coarse, tmp_path / "o2", "morphological", progress=False)
    assert (res.modality.modality, res.modality.source) == ("optical", "undecided")
    res = refine_folder(flat, coarse, tmp_path / "o3", "guided", modality="sar", progress=False)
    assert res.modality.line() == "modality: sar (given: --modality sar)"
    img = np.asarray(Image.open(flat / "10001_sat.png"), np.float32)[None] / 255.0
    want = refine("guided", img, read_mask(coarse / "10001_mask.png"))
    assert np.array_equal(read_mask(tmp_path / "o3" / "10001_sat.png"), want)
    # a generic dataset whose dataset.json states the modality
    root = tmp_path / "generic"
    (root / "masks").mkdir(parents=True)
    shutil.copytree(flat, root / "images")
    for f in sos.glob("*_mask.png"):
        shutil.copy(f, root / "masks" / f.name.replace("_mask", "_sat"))
    (root / "dataset.json").write_text(json.dumps({"modality": "sar"}))
    res = refine_folder(root / "images", coarse, tmp_path / "o4", "guided", progress=False)
    assert (res.modality.modality, res.modality.source) == ("sar", "dataset.json")
    assert np.array_equal(read_mask(tmp_path / "o4" / "10001_sat.png"), want)


def test_refine_skips_a_corrupt_image_and_counts_nodata_out(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """One corrupt image stopped the whole job (the normalisation fit read it: 'error: c.png:
    cannot decode image'); now it is skipped and listed, the others refined. refine.csv's counts
    leave the nodata pixels out (a coarse label over a nodata strip read as 'removed')."""
    from helpers_data import write_tif

    imgs, coarse = tmp_path / "imgs", tmp_path / "coarse"
    img, truth = _scene(0)
    data = np.repeat(img[None].astype(np.float32), 3, axis=0)
    data[:, :, :8] = -9999  # a nodata strip, 8 of 48 columns
    write_tif(imgs / "a.tif", data, nodata=-9999)
    c = np.zeros((S, S), np.uint8)
    c[:, :20] = 255  # over the strip and the slick
    coarse.mkdir()
    Image.fromarray(c).save(coarse / "a.png")
    (imgs / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.fromarray(c).save(coarse / "b.png")
    out = tmp_path / "o"
    argv = ["refine", "--method", "morphological", "--images", str(imgs), "--coarse",
            str(coarse), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "1 of 2 skipped" in capsys.readouterr().out
    skipped = list(csv.DictReader((out / "skipped.csv").open()))
    assert [(r["image"], r["reason"][:19]) for r in skipped] == [
        (str(imgs / "b.png"), "cannot decode image")
    ]
    (row,) = csv.DictReader((out / "refine.csv").open())
    refined = read_mask(out / "a.tif")
    valid = np.ones((S, S), bool)
    valid[:, :8] = False
    was = c > 0
    assert int(row["removed_px"]) == int((was & ~refined & valid).sum())
    assert int(row["added_px"]) == int((refined & ~was & valid).sum())
    changed = int(row["added_px"]) + int(row["removed_px"])
    assert float(row["changed_frac"]) == pytest.approx(changed / valid.sum(), abs=1e-6)


def test_refine_skip_missing_names_and_lists(
    sos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--skip-missing names the images without a coarse label in one note and lists them in
    skipped.csv, as enhance does (they were dropped without a word)."""
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    shutil.copy(sos / "10001_mask.png", coarse / "10001_mask.png")
    out = tmp_path / "r"
    argv = [
        "refine", "--method", "morphological", "--images", str(sos), "--coarse", str(coarse),
        "--out", str(out), "--no-progress", "--skip-missing",
    ]  # fmt: skip
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert (
        f"note: 2 of 3 images have no coarse label in {coarse} and were skipped "
        "(--skip-missing): 10002_sat.png, 10003_sat.png"
    ) in cap.err
    assert f"2 of 3 skipped, see {out / 'skipped.csv'}" in cap.out
    rows = list(csv.DictReader((out / "skipped.csv").open()))
    assert [(Path(r["image"]).name, r["reason"]) for r in rows] == [
        ("10002_sat.png", f"no coarse label in {coarse}"),
        ("10003_sat.png", f"no coarse label in {coarse}"),
    ]
    assert sorted(p.name for p in out.glob("*.png")) == ["10001_sat.png"]
