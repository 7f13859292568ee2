"""Reviewing a budget of labels: `elnet export --review-count N` / `--max-quality Q`.

A user with many auto-labels and time to review a few sends the least trusted ones (lowest
predicted IoU in the run's quality.csv, ties by file name) in any format; the review record
lists exactly what was sent, so `elnet import` after the review tells edited from unchanged,
and the next training set is the reviewed masks over the kept auto-labels (docs/review.md,
"Reviewing a budget of labels").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_logs import one_error_line, run_main
from review_helpers import make_run

from sam2elnet.data.layouts import discover
from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels

# rejected (< 0.5): e, b, a, c; kept: f, d. a and c tie at 0.3 (a goes first: file name)
SCORES = {"a": 0.3, "b": 0.1, "c": 0.3, "d": 0.8, "e": 0.05, "f": 0.55}


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path, SCORES)


def _export(capsys, run: Path, out: Path, *opts: object) -> tuple[int, str, str]:
    return run_main(capsys, "export", "--labels", run, "--out", out, "--no-progress", *opts)


def _stems(paths) -> list[str]:
    return sorted(Path(p).stem for p in paths)


def _record(path: Path) -> list[str]:
    return _stems(e["label"] for e in json.loads(path.read_text())["images"])


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("weak.gpkg", "weak_review.json"),
        ("weak.geojson", "weak_geojson_review.json"),
        ("weak.shp", "weak_shp_review.json"),
    ],
)
def test_polygon_layers_send_the_n_least_trusted(run, tmp_path, capsys, name, record):
    out = tmp_path / "qgis" / name
    rc, stdout, err = _export(capsys, run, out, "--review-count", "3")
    assert rc == 0, err
    lines = [x for x in stdout.splitlines() if "review selection" in x]
    assert len(lines) == 1 and lines[0].endswith(
        "; review selection: 3 of 6 labels (--review-count 3, lowest predicted IoU first), "
        "predicted IoU 0.050-0.300 sent"
    ), stdout  # once: the summary line's last clause
    layer = gpd.read_file(out, **({"layer": "labels"} if out.suffix == ".gpkg" else {}))
    assert _stems(layer["source"].unique()) == ["a", "b", "e"]  # c loses the tie
    assert _record(out.with_name(record)) == ["a", "b", "e"]  # what went out, exactly


def test_coco_and_label_studio_send_the_selection(run, tmp_path, capsys):
    coco = tmp_path / "cvat" / "weak.json"
    rc, stdout, err = _export(capsys, run, coco, "--max-quality", "0.3")  # below 0.3: e, b
    assert rc == 0, err
    assert "review selection: 2 of 6 labels (--max-quality 0.3, " in stdout, stdout
    assert "predicted IoU 0.050-0.100 sent" in stdout
    doc = json.loads(coco.read_text())
    assert _stems(i["file_name"] for i in doc["images"]) == ["b", "e"]
    assert _record(tmp_path / "cvat" / "weak_coco_review.json") == ["b", "e"]

    tasks = tmp_path / "ls" / "tasks.json"
    rc, stdout, err = _export(
        capsys, run, tasks, "--format", "label-studio", "--max-quality", "0.6",
        "--review-count", "4",
    )  # fmt: skip
    assert rc == 0, err
    assert "review selection: 4 of 6 labels (--review-count 4, --max-quality 0.6, " in stdout
    assert "predicted IoU 0.050-0.300 sent" in stdout
    names = [t["data"]["name"] for t in json.loads(tasks.read_text())]
    assert names == ["e", "b", "a", "c"]  # worst first, ties by name
    assert _stems((tmp_path / "ls" / "tasks-images").iterdir()) == ["a", "b", "c", "e"]


def test_the_api_takes_the_options_and_counts_unscored_labels(run, tmp_path):
    shutil.copy(run / "labels" / "d.tif", run / "labels" / "z.tif")  # no row in quality.csv
    res = export_labels(run, tmp_path / "w.gpkg", review_count=1, progress=False)
    assert res.selection is not None and "1 of 7 labels" in res.selection
    assert "1 labels without a predicted IoU were not considered" in res.selection
    # one label sent: its predicted IoU once, not a range "0.050-0.050"
    assert "lowest predicted IoU first), predicted IoU 0.050 sent; " in res.selection
    assert res.n_labels == 1
    assert _record(tmp_path / "w_review.json") == ["e"]
    res = export_labels(run, tmp_path / "all.gpkg", progress=False)
    assert res.selection is None and res.n_labels == 7
    with pytest.raises(UserError, match="--max-quality"):
        export_labels(run, tmp_path / "x.gpkg", max_quality=1.5, progress=False)
    assert not (tmp_path / "x.gpkg").exists()


def test_bad_values_and_labels_without_scores_are_one_error_line(run, tmp_path, capsys):
    out = tmp_path / "o" / "weak.gpkg"
    for opts, words in [
        (("--review-count", "0"), "--review-count"),
        (("--max-quality", "1.5"), "--max-quality"),
        (("--max-quality", "-0.1"), "--max-quality"),
        (("--max-quality", "0.01"), "no label has a predicted IoU below --max-quality 0.01"),
    ]:
        rc, _, err = _export(capsys, run, out, *opts)
        assert words in one_error_line(rc, err), err
    # a plain folder of labels: nothing scores them
    plain = tmp_path / "plain"
    shutil.copytree(run / "rejected", plain)
    for fmt in ("gpkg", "coco", "label-studio"):
        dest = tmp_path / "o" / ("t.json" if fmt != "gpkg" else "t.gpkg")
        rc, _, err = _export(capsys, plain, dest, "--format", fmt, "--review-count", "2")
        line = one_error_line(rc, err)
        assert "no quality.csv scores these labels" in line, line
        assert "annotate/enhance run folder" in line and "--quality-csv" in line, line
    # --quality-csv gives the scores
    rc, stdout, err = _export(capsys, plain, tmp_path / "o" / "p.gpkg", "--review-count", "2",
                              "--quality-csv", run / "quality.csv")  # fmt: skip
    assert rc == 0 and "2 of 4 labels" in stdout, err
    assert not any((tmp_path / "o").glob("weak*")) and not any((tmp_path / "o").glob("t*"))


def _fg(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1) == 255


def _edit(gp: Path, moved: list[str]) -> None:
    """The reviewer moves the polygons of ``moved`` (image names) 1 px (10 m) east."""
    from shapely import affinity

    g = gpd.read_file(gp, layer="labels")
    sel = g["source"].isin(moved)
    g.loc[sel, "geometry"] = g.loc[sel, "geometry"].apply(lambda p: affinity.translate(p, 10, 0))
    g.to_file(gp, layer="labels", driver="GPKG")


def test_partial_review_imports_and_builds_the_next_training_set(run, tmp_path, capsys):
    gp = tmp_path / "qgis" / "weak.gpkg"
    rc, stdout, err = _export(capsys, run, gp, "--review-count", "5")  # all but d (0.8)
    assert rc == 0 and "5 of 6 labels" in stdout, err
    _edit(gp, ["a.tif", "f.tif"])  # f is a kept label, a a rejected one
    images, masks = tmp_path / "images", tmp_path / "reviewed" / "masks"

    rc, _, err = run_main(capsys, "import", gp, "--from", "qgis", "--images", images,
                          "--out", masks, "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert _stems(masks.glob("*.tif")) == ["a", "b", "c", "e", "f"]  # what was sent, not d
    assert "3 of 5 masks are the exported labels unchanged (b.tif, c.tif, e.tif)" in err, err

    rc, _, err = run_main(capsys, "import", gp, "--from", "qgis", "--images", images,
                          "--out", masks, "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert _stems(masks.glob("*.tif")) == ["a", "f"]  # the edited ones only

    # docs/review.md: the next training set = the kept auto-labels + the reviewed masks
    train = tmp_path / "train1"
    shutil.copytree(images, train / "images")  # cp -r images train1/images
    shutil.copytree(run / "labels", train / "masks")  # cp RUN/labels/* train1/masks/
    shutil.copytree(masks, train / "masks", dirs_exist_ok=True)  # cp -a masks/. train1/masks/
    pairs = {s.id: s.mask for s in discover(train).samples}
    assert sorted(pairs) == ["a", "d", "f"]  # b, c, e: rejected and not reviewed, left out
    lab = _fg(run / "labels" / "f.tif")
    moved = np.zeros_like(lab)
    moved[:, 1:] = lab[:, :-1]
    assert (_fg(pairs["f"]) == moved).all()  # the correction replaced the kept auto-label
    assert (_fg(pairs["d"]) == _fg(run / "labels" / "d.tif")).all()


@pytest.mark.parametrize(
    ("name", "opts", "record", "listed"),
    [
        ("weak.gpkg", (), "weak_review.json", "weak_gpkg_skipped.csv"),
        ("weak.geojson", (), "weak_geojson_review.json", "weak_geojson_skipped.csv"),
        ("weak.shp", (), "weak_shp_review.json", "weak_shp_skipped.csv"),
        ("weak.json", (), "weak_coco_review.json", "weak_coco_skipped.csv"),
        ("tasks.json", ("--format", "label-studio"), None, "tasks_label-studio_skipped.csv"),
    ],
)
def test_a_chosen_label_skipped_as_unreadable_is_not_counted_as_sent(
    run, tmp_path, capsys, name, opts, record, listed
):
    (run / "rejected" / "e.tif").write_bytes(b"not a raster")  # the least trusted: chosen first
    out = tmp_path / "o" / name
    rc, stdout, err = _export(capsys, run, out, "--review-count", "3", *opts)
    assert rc == 0, err
    assert "skipping" in err and "e.tif" in err, err
    # before: "3 of 6 labels ..., predicted IoU 0.050-0.300 sent" with only b and a written
    summary = [x for x in stdout.splitlines() if "review selection" in x]
    assert len(summary) == 1 and summary[0].endswith(
        "; review selection: 2 of 6 labels (--review-count 3, lowest predicted IoU first), "
        "predicted IoU 0.100-0.300 sent; 1 chosen label skipped, not sent"
    ), stdout
    assert f"1 of 3 skipped, see {out.with_name(listed)}" in stdout, stdout
    if record is not None:
        assert _record(out.with_name(record)) == ["a", "b"]  # what went out, exactly
    else:
        names = [t["data"]["name"] for t in json.loads(out.read_text())]
        assert names == ["b", "a"]


def test_every_chosen_label_skipped_sends_none_and_names_no_range() -> None:
    """When the export skipped every chosen label, nothing went out: no IoU range is 'sent'."""
    from pathlib import Path

    from sam2elnet.export.review_pick import ReviewPick

    a, b = Path("a.tif"), Path("b.tif")
    pick = ReviewPick([a, b], 6, 0.05, 0.3, "--review-count 2", scores={a: 0.05, b: 0.3})
    line = pick.sent([{"label": str(a)}, {"label": str(b)}]).line()
    assert line == (
        "review selection: 0 of 6 labels (--review-count 2, lowest predicted IoU first), none "
        "sent; 2 chosen labels skipped, not sent"
    )
