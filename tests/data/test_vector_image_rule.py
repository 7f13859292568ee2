"""Which features of one vector file for several georeferenced images land on which image: the
one rule (:func:`sam2elnet.data.vector_names.feature_images`) in every reader. A feature with a
``source`` goes to the image it names only (an image not in the run: to none); one without a
``source`` whose ``label`` is the stem of one of the run's images goes to that image only; any
other (no name, a class name in ``label``) goes by map position.

Before, ``enhance`` / ``scene`` / ``evaluate`` placed a shared file on georeferenced images by
map position only (a polygon tagged ``b.tif`` that overlaps ``a.tif`` landed on both), and
``import --from vector`` skipped a feature whose ``label`` held a class name.

Fixture: two 32 x 32 px GeoTIFFs, 10 m pixels, EPSG:32633 (:func:`helpers_data.write_tif`):
``a.tif`` at easting 500000, ``b.tif`` at 500160 (columns 16..31 of ``a`` are columns 0..15 of
``b``). Features, in the layout of :data:`FEATURES`, each in the overlap or reaching it.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_data import write_tif
from shapely.geometry import box

from sam2elnet.cli import main

X0, Y0, CRS = 500_000.0, 4_000_000.0, "EPSG:32633"


def _box(c0: int, c1: int, r0: int, r1: int) -> object:
    """Columns c0..c1-1, rows r0..r1-1 of a.tif."""
    return box(X0 + 10 * c0, Y0 - 10 * r1, X0 + 10 * c1, Y0 - 10 * r0)


#: (source, label, geometry): tagged a; tagged b (also over a); untagged; a class name;
#: tagged c.tif, an image not in the run (on a, and over the overlap: lands nowhere); labelled
#: with b's stem, no source (over the overlap: b only)
FEATURES = [
    ("a.tif", None, _box(18, 22, 2, 6)),
    ("b.tif", None, _box(24, 28, 10, 14)),
    (None, None, _box(20, 24, 20, 24)),
    (None, "oil", _box(30, 34, 28, 30)),
    ("c.tif", None, _box(6, 10, 24, 28)),
    ("c.tif", "c_mask.tif", _box(12, 20, 12, 16)),
    (None, "b", _box(16, 18, 8, 10)),
]


def _want(name: str) -> np.ndarray:
    """The pixels each image takes by the rule (b's columns are a's minus 16)."""
    m = np.zeros((32, 32), bool)
    if name == "a":
        m[2:6, 18:22] = m[20:24, 20:24] = m[28:30, 30:32] = True
    else:
        m[10:14, 8:12] = m[20:24, 4:8] = m[28:30, 14:18] = m[8:10, 0:2] = True
    return m


@pytest.fixture
def tiles(tmp_path: Path) -> tuple[Path, Path]:
    """``images/`` with a.tif and b.tif, and ``coarse.gpkg`` of :data:`FEATURES`."""
    rng = np.random.default_rng(0)
    for name, x0 in (("a", X0), ("b", X0 + 160)):
        img = rng.integers(20, 230, (3, 32, 32)).astype(np.uint8)
        write_tif(tmp_path / "images" / f"{name}.tif", img, x0=x0)
    src, lab, geoms = zip(*FEATURES, strict=True)
    gpkg = tmp_path / "coarse.gpkg"
    gdf = gpd.GeoDataFrame({"source": list(src), "label": list(lab)}, geometry=list(geoms), crs=CRS)
    gdf.to_file(gpkg, layer="labels")
    return tmp_path / "images", gpkg


def test_the_readers_place_a_shared_file_by_the_one_rule(tiles: tuple[Path, Path]) -> None:
    """Whole-image reader, window reader and evaluate's reader: the same pixels per image."""

    images, gpkg = tiles
    _assert_readers_place(images, gpkg, _want)


def _assert_readers_place(images: Path, gpkg: Path, want_of) -> None:  # noqa: ANN001
    """The whole-image reader, the window reader and evaluate's reader of ``gpkg`` as one file
    shared by ``images/{a,b}.tif`` each give ``want_of(stem)`` on both images."""
    from sam2elnet.data.tiling import Window
    from sam2elnet.data.vector import rasterize_vector, read_vector
    from sam2elnet.data.vector_shared import SharedVector
    from sam2elnet.engine.eval_vector import VectorTruth
    from sam2elnet.engine.scene_coarse import CoarseSource

    files = [images / "a.tif", images / "b.tif"]
    sv = SharedVector(gpkg, read_vector(gpkg)).serving(files)
    vt = VectorTruth.shared(gpkg)
    vt.images = frozenset({"a", "b"})
    for f in files:
        want = want_of(f.stem)
        assert np.array_equal(rasterize_vector(sv, f, frame=sv.frame, shared=True), want), f.name
        with rasterio.open(f) as ds:
            cs = CoarseSource(sv, ds)
            assert np.array_equal(cs.read(Window(0, 0, 32, 32)) > 0, want), f.name
        assert np.array_equal(vt.on_grid(gpkg, f), want), f.name


def test_import_enhance_and_evaluate_agree_on_the_pixels(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers_data import micro_model_file

    images, gpkg = tiles
    masks = tmp_path / "masks"
    base = ["--images", str(images), "--no-progress"]
    assert main(["import", str(gpkg), "--from", "vector", "--out", str(masks), *base]) == 0
    # the two features naming c.tif (not in --images) are said to land nowhere, by both
    lost = f"2 features name no image in {images} (their source / label: c): skipped"
    assert f"note: {lost}" in capsys.readouterr().err
    for name in ("a", "b"):
        with rasterio.open(masks / f"{name}.tif") as ds:
            assert np.array_equal(ds.read(1) == 255, _want(name)), name

    model = micro_model_file(tmp_path / "m.pt", bands=3)
    out = tmp_path / "enh"
    rc = main(["enhance", "--model", str(model), "--labels", str(gpkg), "--out", str(out), *base])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"note: {gpkg}: {lost}" in err  # was silent
    for name in ("a", "b"):  # change map, red band: 255 kept, 220 removed: the coarse pixels
        with rasterio.open(out / "changes" / f"{name}.tif") as ds:
            assert np.array_equal(np.isin(ds.read(1), (220, 255)), _want(name)), name

    preds = tmp_path / "preds"  # all-object predictions: TP = the truth pixels of each
    for name, x0 in (("a", X0), ("b", X0 + 160)):
        write_tif(preds / f"{name}.tif", np.full((1, 32, 32), 255, np.uint8), x0=x0)
    js = tmp_path / "ev.json"
    rc = main(["evaluate", "--pred", str(preds), "--truth", str(gpkg), "--json", str(js),
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"warning: {gpkg}: {lost.replace(str(images), str(preds))}" in err  # was silent
    rows = {Path(r["pred"]).stem: r for r in json.loads(js.read_text())["images"]}
    assert {k: rows[k]["tp"] for k in ("a", "b")} == {"a": 36, "b": 44}


def test_the_report_cards_of_an_evaluation_read_back_place_by_the_rule(
    tiles: tuple[Path, Path], tmp_path: Path
) -> None:
    """An evaluation whose truth layer is no longer held (a result read back for a report):
    its cards place the shared truth file as the evaluation scored it, by the rule (before:
    by map position only, so a.tif's card drew b.tif's polygon over the overlap)."""
    from sam2elnet.engine.eval_readback import vector_truths
    from sam2elnet.engine.evaluate import evaluate_folders

    _, gpkg = tiles
    preds = tmp_path / "preds"
    for name, x0 in (("a", X0), ("b", X0 + 160)):
        write_tif(preds / f"{name}.tif", np.full((1, 32, 32), 255, np.uint8), x0=x0)
    res = evaluate_folders(preds, gpkg, progress=False)
    assert {Path(r.pred_path).stem: r.confusion.tp for r in res.images} == {"a": 36, "b": 44}
    res.layer = None  # read back: only the rows' paths
    files = vector_truths(res)
    for name in ("a", "b"):
        assert np.array_equal(files.on_grid(gpkg, preds / f"{name}.tif"), _want(name)), name


def _export_masks(tiles: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """``elnet export`` of a 6 x 6 px box per tile (a: rows 2..7, columns 20..25, in the
    overlap; b: rows 12..17, columns 2..7, which are a's columns 18..23) -> (layer, mask of a)."""
    images, _ = tiles
    want_a = np.zeros((32, 32), bool)
    want_a[2:8, 20:26] = True
    for name, x0, (r, c) in (("a", X0, (2, 20)), ("b", X0 + 160, (12, 2))):
        m = np.zeros((1, 32, 32), np.uint8)
        m[0, r : r + 6, c : c + 6] = 255
        write_tif(tmp_path / "labels" / f"{name}.tif", m, x0=x0)
    gpkg = tmp_path / "rev.gpkg"
    rc = main(["export", "--labels", str(tmp_path / "labels"), "--images", str(images),
               "--out", str(gpkg), "--no-progress"])  # fmt: skip
    assert rc == 0
    return gpkg, want_a


def test_import_of_some_tiles_keeps_the_others_polygons_off_them(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``import --images`` of a only, from a layer of overlapping tiles a and b: a's mask holds
    a's polygons, not b's copy over the overlap (a reviewer's deletion on a stays deleted), and
    with ``--reviewed-only`` the untouched a is not taken for reviewed (before: b's polygon,
    placed by map position, made a's mask differ from the exported one)."""
    images, _ = tiles
    gpkg, want_a = _export_masks(tiles, tmp_path)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.tif").write_bytes((images / "a.tif").read_bytes())
    out = tmp_path / "m"
    assert main(["import", str(gpkg), "--from", "vector", "--images", str(sub), "--out",
                 str(out), "--all-images", "--no-progress"]) == 0  # fmt: skip
    with rasterio.open(out / "a.tif") as ds:
        assert np.array_equal(ds.read(1) == 255, want_a)
    assert "1 feature names no image in" in capsys.readouterr().err
    rc = main(["import", str(gpkg), "--from", "vector", "--images", str(sub), "--out",
               str(tmp_path / "r"), "--reviewed-only", "--no-progress"])  # fmt: skip
    assert rc == 2 and "every image comes back as exported" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_layer_names_images_of_the_export_record_not_only_of_images(
    tiles: tuple[Path, Path], tmp_path: Path
) -> None:
    """A feature without ``source`` whose ``label`` is b (an image of the export's record, not
    in ``--images``) is b's: not placed on a by map position. Without the record it would be a
    class name."""
    import geopandas as gpd

    from sam2elnet.export.vector_import import import_vector

    images, _ = tiles
    gpkg, want_a = _export_masks(tiles, tmp_path)
    gdf = gpd.read_file(gpkg, layer="labels")
    gdf.loc[gdf["source"] == "b.tif", "source"] = None  # label names b only
    gdf.to_file(gpkg, layer="labels", mode="w")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.tif").write_bytes((images / "a.tif").read_bytes())
    res = import_vector(gpkg, tmp_path / "m", images=sub, all_images=True, progress=False)
    with rasterio.open(res.written[0]) as ds:
        assert np.array_equal(ds.read(1) == 255, want_a)


def _enhance_tiles(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, str]:
    """``elnet enhance`` of the tiles folder with the shared layer (an untrained 3-band model):
    exit 0; returns (its --out, its stderr)."""
    from helpers_data import micro_model_file

    images, gpkg = tiles
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    out = tmp_path / "enh"
    rc = main(["enhance", "--model", str(model), "--images", str(images), "--labels", str(gpkg),
               "--out", str(out), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    return out, err


def test_enhance_skips_plain_images_it_cannot_place_a_map_layer_on_and_the_report_agrees(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """A plain PNG in a folder of georeferenced tiles with a layer in map coordinates: the
    tiles are enhanced and the PNG is skipped into skipped.csv with the reason (before: exit 2
    for the whole folder). summary.json records the images the file served, and a report of
    one card (a only) draws exactly the coarse label enhance used (before: the report's items
    were taken for the run's images, so b's labelled polygon was drawn on a by map position)."""
    import csv

    from helpers_data import grey_rgb, write_png

    import sam2elnet.pipeline.report as report_mod
    from sam2elnet.pipeline.report_vector import draw_vector_label, share_vector_labels

    images, gpkg = tiles
    write_png(images / "p.png", grey_rgb(32, 1))
    out, err = _enhance_tiles(tiles, tmp_path, capsys)
    for name in ("a", "b"):
        with rasterio.open(out / "changes" / f"{name}.tif") as ds:
            assert np.array_equal(np.isin(ds.read(1), (220, 255)), _want(name)), name
    with (out / "skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["image"]).name for r in rows] == ["p.png"], rows
    assert "its features are in map coordinates (EPSG:32633)" in rows[0]["reason"], rows
    assert rows[0]["reason"].endswith(
        f"; or georeference the images, or give one coarse label per image: `elnet import "
        f"--from vector {gpkg} --images FOLDER --out MASKS` writes them, then give --labels MASKS"
    ), rows
    summary = json.loads((out / "summary.json").read_text())
    assert summary["coarse_images"] == {str(gpkg): ["a", "b", "p"]}
    got: list = []
    monkeypatch.setattr(  # the cards' items as the page shares them (render_report)
        report_mod,
        "write_report",
        lambda path, items, **kw: got.extend(
            share_vector_labels(items, kw["coarse_layer"], kw["coarse_images"])
        ),
    )
    report_mod.write_run_report(out)
    one = share_vector_labels(
        [it for it in got if it.name.startswith("a")], None, summary["coarse_images"]
    )
    assert len(one) == 1
    assert np.array_equal(draw_vector_label(one[0].input_label, one[0].image), _want("a"))
    for it in got:
        assert np.array_equal(
            draw_vector_label(it.input_label, it.image), _want(Path(it.image).stem)
        )


def test_scene_skips_a_plain_scene_it_cannot_place_a_map_layer_on(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scene --labels FILE`` with georeferenced scenes and one plain: the plain scene is
    skipped into skipped.csv with the reason, the others are predicted (before: exit 2)."""
    import csv

    from helpers_data import micro_model_file

    images, gpkg = tiles
    write_tif(images / "p.tif", np.full((3, 32, 32), 90, np.uint8), georef=False)
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    out = tmp_path / "sc"
    rc = main(["scene", "--model", str(model), "--image", str(images), "--labels", str(gpkg),
               "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif", "b.tif"]
    with (out / "skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["scene"] for r in rows] == ["p.tif"], rows
    assert rows[0]["reason"].startswith(
        f"has no georeference (CRS + transform, or GCPs), and {gpkg} is one label file for "
        "several scenes: its features are in map coordinates (EPSG:32633)"
    ), rows  # scene's words (was: 'for several images'), and its options in the fix
    assert rows[0]["reason"].endswith(
        "; or georeference the scenes, or give --labels a folder of one label per scene"
    ), rows


def test_many_plain_images_skipped_for_one_reason_are_one_summary_warning(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Six plain PNGs among the georeferenced tiles, one layer in map coordinates: a
    ``skipping`` warning for the first three, then one warning counting and naming the other
    three with the skip list's path (was: six long warnings, one per image); all six listed."""
    import csv

    from helpers_data import grey_rgb, write_png

    from sam2elnet.utils.batch import WARN_EACH

    images, _ = tiles
    for k in range(6):
        write_png(images / f"p{k}.png", grey_rgb(32, k))
    out, err = _enhance_tiles(tiles, tmp_path, capsys)
    skipping = [ln for ln in err.splitlines() if ln.startswith("warning: skipping")]
    assert WARN_EACH == 3 and len(skipping) == 4, err
    for k in range(3):
        assert skipping[k].startswith(
            f"warning: skipping {images / f'p{k}.png'}: has no georeference"
        ), skipping[k]
    assert skipping[3].startswith(
        "warning: skipping 3 more images for the reason given above (has no georeference"
    ), skipping[3]
    assert skipping[3].endswith(f"): p3.png, p4.png, p5.png; all listed in {out / 'skipped.csv'}")
    with (out / "skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["image"]).name for r in rows] == [f"p{k}.png" for k in range(6)]


def test_evaluate_skips_a_plain_prediction_with_its_own_fix(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate --truth FILE`` with a georeferenced prediction and a plain one: the plain one
    is skipped with evaluate's fix (was: enhance's `elnet import ... then give --labels MASKS`,
    options evaluate does not have)."""
    import csv

    from helpers_data import write_png

    _, gpkg = tiles
    pred = tmp_path / "pred"
    write_tif(pred / "a.tif", (_want("a")[None] * 255).astype(np.uint8))
    write_png(pred / "p.png", np.zeros((32, 32), np.uint8))
    table = tmp_path / "ev.csv"
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(gpkg), "--csv", str(table),
               "--json", str(tmp_path / "ev.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    with (tmp_path / "ev_evaluate_skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["file"]).name for r in rows] == ["p.png"], rows
    assert rows[0]["reason"].startswith(  # was: 'one label file for several images'
        f"has no georeference (CRS + transform, or GCPs), and {gpkg} is one ground-truth file "
        "for several predictions: "
    ), rows
    assert rows[0]["reason"].endswith(
        "; or georeference the predictions, or give a --truth folder of one polygon file per "
        "prediction, named like it, in pixel coordinates"
    ), rows


@pytest.mark.parametrize("named", [True, False], ids=["source-field", "no-name-field"])
def test_a_layer_without_crs_over_georeferenced_images_is_read_alike_by_import_and_readers(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], named: bool
) -> None:
    """The layer of :data:`FEATURES` saved without a CRS (its coordinates those of the images'
    EPSG:32633): ``import --from vector`` reads it in the images' CRS with the readers'
    warning, once, and puts the same pixels on each image as ``enhance`` / ``scene`` /
    ``evaluate`` (before, import refused it: "the layer has no CRS ... pixel coordinates of the
    2 images share one frame", and the readers dropped its unnamed features when it had a
    ``source`` field)."""

    images, with_crs = tiles
    gdf = gpd.read_file(with_crs)
    gpkg = tmp_path / "nocrs.gpkg"
    if named:
        gdf = gdf.set_crs(None, allow_override=True)
    else:  # a layer drawn fresh in QGIS: no name attributes, the unnamed features only
        keep = gdf["source"].isna() & gdf["label"].isna()
        gdf = gpd.GeoDataFrame(geometry=list(gdf.geometry[keep]), crs=None)
    gdf.to_file(gpkg, layer="labels")
    masks = tmp_path / "masks"
    rc = main(["import", str(gpkg), "--from", "vector", "--images", str(images),
               "--out", str(masks), "--all-images", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    warn = f"{gpkg}: labels have no CRS; assuming they are already in the image CRS (EPSG:32633)"
    assert err.count(warn) == 1, err

    def want_of(stem: str) -> np.ndarray:
        want = _want(stem)
        if not named:  # the untagged box only: a's rows 20..23, columns 20..23
            want = np.zeros_like(want)
            want[20:24, 20:24] = stem == "a"
            want[20:24, 4:8] = stem == "b"
        return want

    for name in ("a.tif", "b.tif"):
        with rasterio.open(masks / name) as ds:
            assert np.array_equal(ds.read(1) == 255, want_of(name[:-4])), name
    _assert_readers_place(images, gpkg, want_of)
