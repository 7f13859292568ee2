"""`elnet import ... --with-labels RUN/labels`: the next training set without hand copying.

After a budget review the training folder is the reviewed masks over the kept auto-labels
(docs/review.md, "Reviewing a budget of labels"); before, the user built it with `cp`, and the
import's `next:` line named the reviewed masks only. The import now writes `--out/train-set`
(images/ + masks/: images hard-linked or copied, masks copied), says what went in, and its `next:` line is the train
command for that folder. Also: the default quality.csv of a single label file (one rule,
data.runfolder.label_quality_csv) and the review selection in the export's summary.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_logs import one_error_line, run_main
from review_helpers import make_run

from sam2elnet.data.splits import select_split
from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.train_set import TRAIN_SET_RECORD, build_train_set

# kept (>= 0.5): d, f; rejected: a, b, c, e
SCORES = {"a": 0.3, "b": 0.1, "c": 0.3, "d": 0.8, "e": 0.05, "f": 0.55}


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path, SCORES)


def _fg(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1) == 255


def _reviewed_gpkg(capsys, run: Path, tmp_path: Path) -> Path:
    """5 weakest sent to QGIS (all but d); the reviewer moves a's and f's polygons 1 px east."""
    from shapely import affinity

    gp = tmp_path / "qgis" / "weak.gpkg"
    rc, _, err = run_main(capsys, "export", "--labels", run, "--out", gp, "--review-count", "5",
                          "--no-progress")  # fmt: skip
    assert rc == 0, err
    g = gpd.read_file(gp, layer="labels")
    sel = g["source"].isin(["a.tif", "f.tif"])
    g.loc[sel, "geometry"] = g.loc[sel, "geometry"].apply(lambda p: affinity.translate(p, 10, 0))
    g.to_file(gp, layer="labels", driver="GPKG")
    return gp


def _import(capsys, gp: Path, tmp_path: Path, *opts: object) -> tuple[int, str, str]:
    return run_main(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                    "--out", tmp_path / "reviewed", "--no-progress", *opts)  # fmt: skip


def _moved(lab: np.ndarray) -> np.ndarray:
    out = np.zeros_like(lab)
    out[:, 1:] = lab[:, :-1]
    return out


def _listing(folder: Path) -> dict[str, list[str]]:
    return {d: sorted(f.name for f in (folder / d).iterdir()) for d in ("images", "masks")}


def test_import_builds_the_next_training_set(run, tmp_path, capsys):
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    rc, out, err = _import(capsys, gp, tmp_path, "--reviewed-only", "--with-labels",
                           run / "labels")  # fmt: skip
    assert rc == 0, err
    train = tmp_path / "reviewed" / "train-set"
    lines = out.strip().splitlines()
    assert lines[-2] == (
        f"train set {train}: 2 reviewed masks (1 replacing their kept auto-label), 1 auto-labels "
        "kept, 3 rejected labels nobody reviewed left out (images hard-linked, masks copied)"
    ), out
    assert lines[-1] == (
        f"next: elnet train --data {train} --out RUN --init-model {tmp_path / 'model.pt'}"
    ), out
    # exactly: a and f reviewed (f over its kept label), d the kept auto-label; b, c, e left out
    assert _listing(train) == {"images": ["a.tif", "d.tif", "f.tif"],
                               "masks": ["a.tif", "d.tif", "f.tif"]}  # fmt: skip
    rec = json.loads((train / TRAIN_SET_RECORD).read_text())
    assert rec["masks"] == {"a.tif": "reviewed", "d.tif": "auto-label", "f.tif": "reviewed"}
    assert (_fg(train / "masks" / "f.tif") == _moved(_fg(run / "labels" / "f.tif"))).all()
    assert (_fg(train / "masks" / "a.tif") == _moved(_fg(run / "rejected" / "a.tif"))).all()
    assert (_fg(train / "masks" / "d.tif") == _fg(run / "labels" / "d.tif")).all()
    # images: hard links of the sources (same file system here); masks: copies, so a mask
    # edited in place in the training folder changes neither the auto-label nor the review
    assert os.path.samefile(train / "images" / "d.tif", tmp_path / "images" / "d.tif")
    for mask, source in [("d.tif", run / "labels" / "d.tif"),
                         ("f.tif", tmp_path / "reviewed" / "f.tif")]:  # fmt: skip
        assert not os.path.samefile(train / "masks" / mask, source)
        was = source.read_bytes()
        with rasterio.open(train / "masks" / mask, "r+") as d:  # an edit in place
            d.write(np.zeros((1, d.height, d.width), np.uint8))
        assert source.read_bytes() == was and _fg(source).any()
        assert not _fg(train / "masks" / mask).any()
    assert sorted(f.name for f in (run / "labels").iterdir()) == ["d.tif", "f.tif"]
    # what elnet train reads (engine.train_data.prepare_data's lookup): three pairs, no stray file
    index = select_split(train, None).index
    assert {s.id: (s.image.name, s.mask.name) for s in index.samples} == {
        k: (f"{k}.tif", f"{k}.tif") for k in "adf"
    } and not index.unmatched


def test_importing_again_updates_the_training_set(run, tmp_path, capsys):
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    train = tmp_path / "reviewed" / "train-set"
    args = ("--with-labels", run)  # the run folder: its labels/
    assert _import(capsys, gp, tmp_path, "--reviewed-only", *args)[0] == 0
    first = _listing(train)
    rc, out, err = _import(capsys, gp, tmp_path, "--reviewed-only", *args)  # the same again
    assert rc == 0 and _listing(train) == first, err
    # every sent label imported (no --reviewed-only): b, c, e join as reviewed, none left out
    rc, out, err = _import(capsys, gp, tmp_path, *args)
    assert rc == 0, err
    assert "5 reviewed masks (1 replacing their kept auto-label), 1 auto-labels kept, " \
           "0 rejected labels nobody reviewed left out" in out, out  # fmt: skip
    assert _listing(train)["masks"] == ["a.tif", "b.tif", "c.tif", "d.tif", "e.tif", "f.tif"]
    rec = json.loads((train / TRAIN_SET_RECORD).read_text())["masks"]
    assert [k for k, v in sorted(rec.items()) if v == "auto-label"] == ["d.tif"]
    # nothing left beside it (no temporary or old folders)
    assert sorted(p.name for p in (tmp_path / "reviewed").iterdir() if p.is_dir()) == ["train-set"]


def test_the_training_set_folder_has_the_mode_of_any_new_folder(run, tmp_path, capsys):
    """The set is renamed from a temporary folder: it was made by tempfile.mkdtemp (mode 0700),
    so the training folder was unreadable to everyone but its owner (a team's trainer, a
    service account); it takes the umask as the import's --out and the set's sub-folders do."""
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    train = tmp_path / "reviewed" / "train-set"
    old = os.umask(0o022)
    try:
        for _ in range(2):  # the first build and a rebuild (a re-import)
            rc, _, err = _import(capsys, gp, tmp_path, "--with-labels", run)
            assert rc == 0, err
            modes = {p.name: p.stat().st_mode & 0o777 for p in (train, train / "masks")}
            assert modes == {"train-set": 0o755, "masks": 0o755}
    finally:
        os.umask(old)


def test_a_named_train_set_and_bad_inputs(run, tmp_path, capsys):
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    masks = tmp_path / "reviewed"
    train = tmp_path / "train1"
    rc, out, err = _import(capsys, gp, tmp_path, "--reviewed-only", "--with-labels",
                           run / "labels", "--train-set", train)  # fmt: skip
    assert rc == 0 and f"--data {train} " in out.splitlines()[-1], err
    assert _listing(train)["masks"] == ["a.tif", "d.tif", "f.tif"]
    shutil.rmtree(masks)
    shutil.rmtree(train)

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    plain = tmp_path / "plain"  # kept labels without a run: one has no image anywhere
    shutil.copytree(run / "labels", plain)
    shutil.copy(plain / "d.tif", plain / "zz.tif")
    twins = tmp_path / "twins"
    shutil.copytree(run / "labels", twins)
    shutil.copy(twins / "d.tif", twins / "d_mask.tif")
    for opts, words in [
        (("--with-labels", run / "labels" / "d.tif"), "--with-labels is a file"),
        (("--with-labels", tmp_path / "nope"), "--with-labels does not exist"),
        (("--with-labels", tmp_path / "images"), "--with-labels holds images, not labels"),
        (("--with-labels", mine), "--with-labels holds no labels"),
        (("--with-labels", plain), "1 mask pairs with no image (zz.tif)"),
        (("--with-labels", twins), "two labels of one image name 'd': d.tif and d_mask.tif"),
        (("--with-labels", run / "labels", "--train-set", mine), "was not built by elnet import"),
        (("--with-labels", run / "labels", "--train-set", tmp_path), "holds"),
        (("--train-set", train), "give --with-labels"),
    ]:
        rc, _, err = _import(capsys, gp, tmp_path, *opts)
        assert words in one_error_line(rc, err), (opts, err)
        assert not masks.exists() and not train.exists(), opts  # checked before the import
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_reviewed_mask_without_an_image_leaves_the_old_set(run, tmp_path, capsys):
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    assert _import(capsys, gp, tmp_path, "--reviewed-only")[0] == 0
    masks, train = tmp_path / "reviewed", tmp_path / "t"
    res = build_train_set(masks, run, train)  # images from the run's quality.csv
    assert (res.n_reviewed, res.n_replacing, res.n_auto, res.n_left_out) == (2, 1, 1, 3)
    before = _listing(train)
    # a reviewed mask of an image the run does not know, and no --images
    shutil.copy(masks / "a.tif", masks / "new.tif")
    rec = json.loads((masks / ".elnet-import.json").read_text())
    rec["masks"].append("new.tif")
    (masks / ".elnet-import.json").write_text(json.dumps(rec))
    with pytest.raises(UserError, match=r"1 mask pairs with no image \(new.tif\).*not written"):
        build_train_set(masks, run, train)
    assert _listing(train) == before
    images = tmp_path / "more"
    images.mkdir()
    shutil.copy(tmp_path / "images" / "a.tif", images / "new.tif")
    res = build_train_set(masks, run, train, images=images)
    assert res.n_reviewed == 3 and "new.tif" in _listing(train)["images"]


def test_images_search_sub_folders_and_image_files_only(run, tmp_path, capsys):
    """A mask the run does not know pairs with the image of its key in a sub-folder of
    --images (data.naming.list_images, recursive); a file of that stem that is no image
    (new.xml, a world file) pairs with nothing."""
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    assert _import(capsys, gp, tmp_path, "--reviewed-only")[0] == 0
    masks, train = tmp_path / "reviewed", tmp_path / "t"
    shutil.copy(masks / "a.tif", masks / "new.tif")
    rec = json.loads((masks / ".elnet-import.json").read_text())
    rec["masks"].append("new.tif")
    (masks / ".elnet-import.json").write_text(json.dumps(rec))
    images = tmp_path / "more"
    (images / "sub" / "deeper").mkdir(parents=True)
    (images / "new.xml").write_text("<xml/>")
    (images / "sub" / "new.tfw").write_text("1\n0\n0\n-1\n0\n0\n")
    with pytest.raises(UserError, match=r"1 mask pairs with no image \(new.tif\)"):
        build_train_set(masks, run, train, images=images)
    assert not train.exists()
    shutil.copy(tmp_path / "images" / "a.tif", images / "sub" / "deeper" / "new.tif")
    res = build_train_set(masks, run, train, images=images)
    assert res.n_reviewed == 3 and "new.tif" in _listing(train)["images"]
    record = json.loads((train / TRAIN_SET_RECORD).read_text())
    assert record["images"]["new.tif"] == str((images / "sub" / "deeper" / "new.tif").resolve())


def test_single_label_file_takes_its_runs_quality(run, tmp_path):
    """A label file's export (polygons, COCO) reads the run's quality.csv, as its review
    selection does; before, only a folder's export did (quality NaN / absent)."""
    lab = run / "labels" / "d.tif"
    res = export_labels(lab, tmp_path / "one.gpkg", progress=False)
    assert gpd.read_file(res.out, layer="labels")["quality"].tolist() == pytest.approx(
        [0.8] * res.n_features
    )
    res = export_labels(lab, tmp_path / "one.json", progress=False)
    assert [i["predicted_quality"] for i in json.loads(res.out.read_text())["images"]] == [0.8]
    res = export_labels(lab, tmp_path / "sel.gpkg", review_count=1, progress=False)
    assert res.selection is not None and "1 of 1 labels" in res.selection


def test_the_export_summary_names_the_selection_once(run, tmp_path, capsys):
    res = export_labels(run, tmp_path / "w.gpkg", review_count=2, progress=False)
    assert res.summary().endswith(
        "; review selection: 2 of 6 labels (--review-count 2, lowest predicted IoU first), "
        "predicted IoU 0.050-0.100 sent"
    ), res.summary()
    assert (
        "review selection" not in export_labels(run, tmp_path / "a.gpkg", progress=False).summary()
    )
    for out, fmt in ((tmp_path / "c.gpkg", "gpkg"), (tmp_path / "t.json", "label-studio")):
        rc, stdout, err = run_main(capsys, "export", "--labels", run, "--out", out, "--format",
                                   fmt, "--review-count", "2", "--no-progress")  # fmt: skip
        assert rc == 0 and stdout.count("review selection: 2 of 6 labels") == 1, stdout


def _ls_task(tmp_path: Path, source: Path | None) -> Path:
    """A Label Studio export of one reviewed task of image new.tif, which the run does not know
    (``source``: its data.source; None: none, the annotation gives the size only)."""
    pts = [[25.0, 25.0], [75.0, 25.0], [75.0, 75.0], [25.0, 75.0]]
    region = {"type": "polygonlabels", "original_width": 48, "original_height": 40,
              "value": {"points": pts, "polygonlabels": ["oil spill"]}}  # fmt: skip
    data = {"image": "/data/local-files/?d=new.tif", "name": "new"}
    if source is not None:
        data["source"] = str(source)
    tasks = [{"id": 1, "data": data, "annotations": [{"id": 1, "result": [region]}]}]
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps(tasks))
    return ls


def test_a_reviewed_mask_without_an_image_stops_the_import_before_it_writes(run, tmp_path, capsys):
    """A Label Studio task of an image the run does not know, found nowhere (no data.source,
    no --images): the import stops before --out is written, not after (its masks were left
    there)."""
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tmp_path / "images" / "a.tif", other / "new.tif")
    ls = _ls_task(tmp_path, None)
    masks = tmp_path / "reviewed"
    rc, _, err = run_main(capsys, "import", ls, "--from", "label-studio", "--out", masks,
                          "--with-labels", run / "labels", "--no-progress")  # fmt: skip
    line = one_error_line(rc, err)
    assert "1 mask pairs with no image (new.png)" in line and "nothing written" in line, line
    assert not masks.exists()
    # with the image's folder as --images the same import builds the set
    rc, out, err = run_main(capsys, "import", ls, "--from", "label-studio", "--out", masks,
                            "--with-labels", run / "labels", "--images", other, "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert _listing(masks / "train-set")["images"] == ["d.tif", "f.tif", "new.tif"], out


def test_a_reviewed_mask_goes_in_with_the_image_its_import_read(run, tmp_path, capsys):
    """The training set pairs a reviewed mask with the image the import made it for (its size
    and georeference), not another one of its name: the task's data.source (no --images, not
    in the run) or the vector import's --images (a copy of the run's images elsewhere)."""
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tmp_path / "images" / "a.tif", other / "new.tif")
    masks = tmp_path / "reviewed"
    rc, out, err = run_main(capsys, "import", _ls_task(tmp_path, other / "new.tif"), "--from",
                            "label-studio", "--out", masks, "--with-labels", run / "labels",
                            "--no-progress")  # fmt: skip
    assert rc == 0, err
    rec = json.loads((masks / "train-set" / TRAIN_SET_RECORD).read_text())
    assert rec["images"]["new.tif"] == str((other / "new.tif").resolve()), rec
    # vector: --images a copy of the run's images; the reviewed a and f come from the copy,
    # the kept auto-label d from the run (quality.csv)
    gp = _reviewed_gpkg(capsys, run, tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "images", copy)
    rc, out, err = run_main(capsys, "import", gp, "--from", "qgis", "--images", copy, "--out",
                            masks, "--reviewed-only", "--with-labels", run / "labels",
                            "--no-progress")  # fmt: skip
    assert rc == 0, err
    rec = json.loads((masks / "train-set" / TRAIN_SET_RECORD).read_text())["images"]
    assert rec == {"a.tif": str((copy / "a.tif").resolve()),
                   "d.tif": str((tmp_path / "images" / "d.tif").resolve()),
                   "f.tif": str((copy / "f.tif").resolve())}  # fmt: skip


def test_import_labels_is_the_import_and_the_training_set_in_one_call(run, tmp_path, capsys):
    """The library's elnet import (export.review_import.import_labels): the same training set
    as the command, the same checks before anything is written, --layer for vector only."""
    from sam2elnet.export.review_import import import_labels
    from sam2elnet.option_checks import check_options
    from sam2elnet.options import ImportOptions

    gp = _reviewed_gpkg(capsys, run, tmp_path)
    masks = tmp_path / "reviewed"
    res = import_labels("QGIS", gp, masks, images=tmp_path / "images", reviewed_only=True,
                        with_labels=run / "labels", progress=False)  # fmt: skip
    assert sorted(p.name for p in res.written) == ["a.tif", "f.tif"]
    assert res.images == {n: tmp_path / "images" / n for n in ("a.tif", "f.tif")}
    ts = res.train_set
    assert (ts.folder, ts.n_reviewed, ts.n_replacing, ts.n_auto, ts.n_left_out) == (
        masks / "train-set",
        2,
        1,
        1,
        3,
    )
    assert _listing(ts.folder)["masks"] == ["a.tif", "d.tif", "f.tif"]
    for kw, words in [
        ({"source": "coco", "layer": "labels"}, "--layer applies to --from vector"),
        ({"source": "qgis", "train_set": tmp_path / "t"}, "give --with-labels"),
        ({"source": "nope"}, "unknown --from 'nope'; use label-studio, coco, cvat, vector"),
    ]:
        with pytest.raises(UserError, match=words):
            import_labels(export=gp, out=tmp_path / "m2", images=tmp_path / "images", **kw)
        assert not (tmp_path / "m2").exists() and not (tmp_path / "t").exists()
    with pytest.raises(UserError, match="^--layer applies to --from vector"):
        check_options(ImportOptions, source="cvat", layer="labels")
    assert check_options(ImportOptions, source="vector", layer="labels").layer == "labels"
    assert check_options(ImportOptions, layer="labels").layer == "labels"  # source not known


def test_not_reviewed_note_says_what_the_train_set_does_with_the_image(run, tmp_path, capsys):
    """Label Studio tasks of d (kept) and f (kept) left unreviewed, a reviewed: with
    --with-labels the note says the training set keeps their auto-labels (the `train set:`
    line counts them); before, it said `elnet train` leaves their images out, which the next
    line contradicted. Without --with-labels it still says so, in the singular for one task."""
    tasks = tmp_path / "ls" / "tasks.json"
    export_labels(run, tasks, "label-studio", progress=False)
    data = json.loads(tasks.read_text())
    pts = [[25.0, 25.0], [75.0, 25.0], [75.0, 75.0], [25.0, 75.0]]
    region = {"type": "polygonlabels", "from_name": "polygon", "to_name": "image",
              "original_width": 48, "original_height": 40,
              "value": {"points": pts, "polygonlabels": ["oil spill"]}}  # fmt: skip
    for i, t in enumerate(data):
        t["id"] = i + 1
        t["annotations"] = [{"id": 1, "result": [region]}] if t["data"]["name"] == "a" else []
    ls = tmp_path / "ls" / "export.json"
    ls.write_text(json.dumps([t for t in data if t["data"]["name"] in ("a", "d", "f")]))
    rc, out, err = run_main(capsys, "import", ls, "--from", "label-studio", "--out",
                            tmp_path / "reviewed", "--with-labels", run / "labels",
                            "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "2 auto-labels kept" in out, out
    note = next(ln for ln in err.splitlines() if "not reviewed yet" in ln)
    assert "skipped 2 tasks, not reviewed yet (no annotation): f, d" in note, note
    assert "leaves their images out" not in note, note
    assert "the train set keeps their kept auto-labels" in note, note
    # one task, no --with-labels: the image is left out of training, said in the singular
    ls.write_text(json.dumps([t for t in data if t["data"]["name"] in ("a", "d")]))
    rc, out, err = run_main(capsys, "import", ls, "--from", "label-studio", "--out",
                            tmp_path / "reviewed2", "--no-progress")  # fmt: skip
    assert rc == 0, err
    note = next(ln for ln in err.splitlines() if "not reviewed yet" in ln)
    assert "(no mask: `elnet train` leaves its image out; review it, export again" in note, note
