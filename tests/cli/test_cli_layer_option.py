"""``elnet enhance --layer`` and ``elnet evaluate --truth-layer``: the layer read from a
GeoPackage with several (old and new roads). The named layer is the one read (the result equals
that of a file holding only that layer, and differs from the default layer's); a name the file
lacks is one ``error:`` line naming the file and listing its layers, exit 2, nothing written.

Tiny GeoTIFFs: 32 x 32 px, 10 m pixels, EPSG:32633 (:func:`helpers_data.write_tif`). Layer
``old`` covers columns 0..9, layer ``new`` columns 20..29 (rows 0..31).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import micro_model_file, read_raster, write_tif
from shapely.geometry import box

from sam2elnet.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")

X0, Y0, CRS = 500_000.0, 4_000_000.0, "EPSG:32633"
OLD = box(X0, Y0 - 320, X0 + 100, Y0)  # columns 0..9
NEW = box(X0 + 200, Y0 - 320, X0 + 300, Y0)  # columns 20..29


def _two_layers(tmp_path: Path) -> tuple[Path, Path]:
    """``two.gpkg`` (layers old, new, in that order) and ``one.gpkg`` (new only)."""
    two, one = tmp_path / "two.gpkg", tmp_path / "one.gpkg"
    gpd.GeoDataFrame({"kind": ["road"]}, geometry=[OLD], crs=CRS).to_file(two, layer="old")
    gpd.GeoDataFrame({"kind": ["road"]}, geometry=[NEW], crs=CRS).to_file(two, layer="new")
    gpd.GeoDataFrame({"kind": ["road"]}, geometry=[NEW], crs=CRS).to_file(one, layer="new")
    return two, one


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def _one_error(err: str) -> str:
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and not any(ln.startswith("Traceback") for ln in lines), err
    return errors[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return micro_model_file(tmp_path_factory.mktemp("layer_model") / "m.pt", bands=3)


def test_enhance_reads_the_layer_named_with_layer(tmp_path, model, capsys) -> None:
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):  # one file for two images
        write_tif(images / f"{name}.tif", rng.integers(20, 230, (3, 32, 32)).astype(np.uint8))
    two, one = _two_layers(tmp_path)
    run = ["enhance", "--model", model, "--images", images, "--no-progress"]
    for out, labels, extra in (("two", two, ["--layer", "new"]), ("one", one, []),
                               ("dflt", two, [])):  # fmt: skip
        rc, err = _cli(capsys, *run, "--labels", labels, "--out", tmp_path / out, *extra)
        assert rc == 0, err
        if out == "two":  # a named layer: no several-layers warning
            assert "2 layers" not in err, err
        if out == "dflt":
            assert "2 layers (old, new): reading the first, 'old'" in err, err
            assert "elnet import / enhance / scene --layer NAME" in err, err
    for name in ("a", "b"):  # labels and change maps: those of the one-layer file
        for sub in ("labels", "changes"):
            got = read_raster(tmp_path / "two" / sub / f"{name}.tif")
            assert np.array_equal(got, read_raster(tmp_path / "one" / sub / f"{name}.tif")), sub
        # the coarse label went into the change map: the default layer's differs
        changes = [read_raster(tmp_path / d / "changes" / f"{name}.tif") for d in ("two", "dflt")]
        assert not np.array_equal(*changes)
    # one image and the file (named once: read with the layer too)
    rc, err = _cli(capsys, "enhance", "--model", model, "--images", images / "a.tif", "--labels",
                   two, "--out", tmp_path / "single", "--layer", "new", "--no-progress")  # fmt: skip
    assert rc == 0 and "2 layers" not in err, err
    got = read_raster(tmp_path / "single" / "changes" / "a.tif")
    assert np.array_equal(got, read_raster(tmp_path / "one" / "changes" / "a.tif"))

    out = tmp_path / "missing"
    rc, err = _cli(capsys, *run, "--labels", two, "--out", out, "--layer", "roads")
    assert rc == 2
    line = _one_error(err)
    assert str(two) in line and "no layer 'roads'" in line and "old, new" in line, line
    assert "--layer" in line and not out.exists()


def test_enhance_layer_with_raster_labels_is_one_error(tmp_path, model, capsys) -> None:
    images, coarse = tmp_path / "images", tmp_path / "coarse"
    write_tif(
        images / "a.tif", np.random.default_rng(0).integers(20, 230, (3, 32, 32)).astype(np.uint8)
    )
    write_tif(coarse / "a.tif", np.zeros((1, 32, 32), np.uint8))
    out = tmp_path / "out"
    rc, err = _cli(capsys, "enhance", "--model", model, "--images", images, "--labels", coarse,
                   "--out", out, "--layer", "new", "--no-progress")  # fmt: skip
    assert rc == 2
    line = _one_error(err)  # names the --labels folder, not its first file
    assert line.startswith(f"error: {coarse}: --layer 'new' applies to vector coarse labels"), line
    assert not out.exists()


def _pred(path: Path) -> Path:
    """Object in columns 16..31 (512 px): against layer new (columns 20..29, 320 px) TP 320,
    FP 192, FN 0, TN 512; against layer old (columns 0..9) TP 0."""
    a = np.zeros((1, 32, 32), np.uint8)
    a[:, :, 16:] = 255
    return write_tif(path, a)


@pytest.mark.parametrize("folder", [True, False])
def test_evaluate_reads_the_truth_layer(tmp_path, capsys, folder: bool) -> None:
    """A prediction folder against one truth file (shared), and one prediction against it."""
    pred = _pred(tmp_path / "preds" / "a.tif")
    pred_arg = pred.parent if folder else pred
    two, one = _two_layers(tmp_path)
    res = {}
    for name, truth, extra in (("two", two, ["--truth-layer", "new"]), ("one", one, []),
                               ("dflt", two, [])):  # fmt: skip
        out = tmp_path / f"{name}.json"
        rc, err = _cli(capsys, "evaluate", "--pred", pred_arg, "--truth", truth, "--json", out,
                       "--no-progress", *extra)  # fmt: skip
        assert rc == 0, err
        res[name] = json.loads(out.read_text())["images"][0]
        if name == "two":
            assert "2 layers" not in err, err
    keys = ("tp", "fp", "fn", "tn")
    assert [res["two"][k] for k in keys] == [res["one"][k] for k in keys] == [320, 192, 0, 512]
    assert res["dflt"]["tp"] == 0  # the default layer, old, misses the prediction

    out = tmp_path / "missing.json"
    rc, err = _cli(capsys, "evaluate", "--pred", pred_arg, "--truth", two, "--json", out,
                   "--truth-layer", "roads", "--no-progress")  # fmt: skip
    assert rc == 2
    line = _one_error(err)
    assert str(two) in line and "no layer 'roads'" in line and "old, new" in line, line
    assert "--truth-layer" in line and not out.exists()


def test_evaluate_truth_layer_lists_the_file_layers_once(tmp_path, capsys, monkeypatch) -> None:
    """Was: --truth-layer checked that the file has the layer twice (VectorTruth.truth_layer,
    then read_vector), each listing the file's layers. Now once, by read_vector, whose message
    names --truth-layer."""
    import pyogrio

    pred = _pred(tmp_path / "preds" / "a.tif")
    two, _ = _two_layers(tmp_path)
    listed: list[Path] = []
    real = pyogrio.list_layers
    monkeypatch.setattr(
        pyogrio, "list_layers", lambda p, *a, **k: listed.append(Path(p)) or real(p, *a, **k)
    )
    rc, err = _cli(capsys, "evaluate", "--pred", pred.parent, "--truth", two, "--json",
                   tmp_path / "e.json", "--truth-layer", "new", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert listed.count(two) == 1, listed


def test_evaluate_truth_layer_off_the_predictions_describes_that_layer(tmp_path, capsys) -> None:
    """A named layer that covers no prediction: the error gives that layer's CRS and extent
    (was: the default layer's, with the several-layers warning for a layer nobody read)."""
    pred = _pred(tmp_path / "preds" / "a.tif")
    two, _ = _two_layers(tmp_path)
    far = box(X0 + 50_000, Y0 - 320, X0 + 50_100, Y0)  # 50 km east: no prediction there
    gpd.GeoDataFrame({"source": ["a.tif"]}, geometry=[far], crs=CRS).to_file(two, layer="far")
    rc, err = _cli(capsys, "evaluate", "--pred", pred.parent, "--truth", two,
                   "--truth-layer", "far", "--no-progress")  # fmt: skip
    assert rc == 2 and "3 layers" not in err, err
    line = _one_error(err)
    assert "none of its polygons covers a pixel" in line and "550000" in line, line


def test_evaluate_truth_layer_with_a_truth_folder_is_one_error(tmp_path, capsys) -> None:
    pred = _pred(tmp_path / "preds" / "a.tif")
    truth = tmp_path / "truth"
    write_tif(truth / "a.tif", np.zeros((1, 32, 32), np.uint8))
    rc, err = _cli(capsys, "evaluate", "--pred", pred.parent, "--truth", truth,
                   "--truth-layer", "new", "--no-progress")  # fmt: skip
    assert rc == 2
    assert "--truth-layer 'new' names a layer of one --truth polygon file" in _one_error(err)


# ------------------------------------ one image's own file (no georeference), read for its layer


def _pixel_two_layers(path: Path) -> Path:
    """A one-image GeoPackage in pixel coordinates (x = column, y = -row, as QGIS draws a PNG),
    layers old (columns 0..9) and new (rows 4..11, columns 20..27); no source attribute: one
    image's own file, whose coordinates place it."""
    import warnings

    with warnings.catch_warnings():  # pyogrio: "'crs' was not provided"
        warnings.simplefilter("ignore", UserWarning)
        for layer, geom in (("old", box(0, -32, 10, 0)), ("new", box(20, -12, 28, -4))):
            gpd.GeoDataFrame({"kind": ["x"]}, geometry=[geom]).to_file(path, layer=layer)
    return path


def _new_box() -> np.ndarray:
    want = np.zeros((32, 32), bool)
    want[4:12, 20:28] = True
    return want


def test_enhance_layer_places_per_image_files_by_their_pixel_coordinates(
    tmp_path, model, capsys
) -> None:
    """``enhance --layer`` with a folder of one file per PNG: each file is that image's, placed
    by its pixel coordinates. Before, every file read with --layer was taken as one file for
    several images and placed by its source name: refused ('no source / label attribute')."""
    from helpers_data import grey_rgb, write_png
    from PIL import Image

    images, labels = tmp_path / "images", tmp_path / "labels"
    labels.mkdir()
    for i, name in enumerate(("a", "b")):
        write_png(images / f"{name}.png", grey_rgb(32, i))
        _pixel_two_layers(labels / f"{name}.gpkg")
    out = tmp_path / "out"
    rc, err = _cli(capsys, "enhance", "--model", model, "--images", images, "--labels", labels,
                   "--out", out, "--layer", "new", "--no-progress")  # fmt: skip
    assert rc == 0, err
    for name in ("a", "b"):  # change map, red channel: 255 kept, 220 removed: coarse pixels
        red = np.asarray(Image.open(out / "changes" / f"{name}.png"))[..., 0]
        assert np.array_equal(np.isin(red, (220, 255)), _new_box()), name


def test_evaluate_truth_layer_of_one_pair_without_georeference(tmp_path, capsys) -> None:
    """``--pred a.png --truth a.gpkg --truth-layer new``: the pair's own file, placed by its
    pixel coordinates (before: as one file for several predictions, by source name: refused)."""
    from helpers_data import write_png

    pred = np.zeros((32, 32), np.uint8)
    pred[:, 16:] = 255  # columns 16..31: TP 64 (rows 4..11, cols 20..27), FP 448, FN 0
    write_png(tmp_path / "a.png", pred)
    truth = _pixel_two_layers(tmp_path / "a.gpkg")
    out = tmp_path / "ev.json"
    rc, err = _cli(capsys, "evaluate", "--pred", tmp_path / "a.png", "--truth", truth,
                   "--truth-layer", "new", "--json", out, "--no-progress")  # fmt: skip
    assert rc == 0, err
    row = json.loads(out.read_text())["images"][0]
    assert [row[k] for k in ("tp", "fp", "fn", "tn")] == [64, 448, 0, 512]


def test_scene_reads_the_layer_named_with_layer(tmp_path, model, capsys) -> None:
    """``elnet scene --labels two.gpkg --layer new``: the labels of the one-layer file (one scene
    and a folder of scenes); a folder of labels with --layer is one error naming it."""
    rng = np.random.default_rng(0)
    scenes = tmp_path / "scenes"
    for name in ("a", "b"):
        write_tif(scenes / f"{name}.tif", rng.integers(20, 230, (3, 32, 32)).astype(np.uint8))
    two, one = _two_layers(tmp_path)
    run = ["scene", "--model", model, "--tile", "32", "--overlap", "0", "--no-progress"]
    for out, labels, extra in (("two", two, ["--layer", "new"]), ("one", one, [])):
        rc, err = _cli(capsys, *run, "--image", scenes / "a.tif", "--labels", labels,
                       "--out", tmp_path / f"{out}.tif", *extra)  # fmt: skip
        assert rc == 0, err
        rc, err = _cli(capsys, *run, "--image", scenes, "--labels", labels,
                       "--out", tmp_path / f"{out}_dir", *extra)  # fmt: skip
        assert rc == 0, err
    assert np.array_equal(read_raster(tmp_path / "two.tif"), read_raster(tmp_path / "one.tif"))
    for name in ("a", "b"):
        got, ref = (read_raster(tmp_path / f"{d}_dir" / f"{name}.tif") for d in ("two", "one"))
        assert np.array_equal(got, ref), name
    folder = tmp_path / "labels"
    folder.mkdir()
    rc, err = _cli(capsys, *run, "--image", scenes, "--labels", folder, "--layer", "new",
                   "--out", tmp_path / "bad")  # fmt: skip
    assert rc == 2 and _one_error(err).startswith(f"error: {folder}: --layer 'new' names")
    assert not (tmp_path / "bad").exists()


def test_the_report_of_an_enhance_layer_run_draws_that_layer(
    tmp_path, model, capsys, monkeypatch
) -> None:
    """The run report of ``enhance --layer new`` draws each coarse label from layer new (the
    run records it: summary.json ``coarse_layer``); it read the file's default layer, old."""
    import sam2elnet.pipeline.report as report_mod
    from sam2elnet.pipeline.report_vector import draw_vector_label, share_vector_labels

    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_tif(images / f"{name}.tif", rng.integers(20, 230, (3, 32, 32)).astype(np.uint8))
    two, _ = _two_layers(tmp_path)
    out = tmp_path / "out"
    rc, err = _cli(capsys, "enhance", "--model", model, "--images", images, "--labels", two,
                   "--out", out, "--layer", "new", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert json.loads((out / "summary.json").read_text())["coarse_layer"] == "new"
    got: list = []
    monkeypatch.setattr(  # the cards' items as the page shares them (render_report)
        report_mod,
        "write_report",
        lambda path, items, **kw: got.extend(
            share_vector_labels(items, kw["coarse_layer"], kw["coarse_images"])
        ),
    )
    report_mod.write_run_report(out)
    want = np.zeros((32, 32), bool)
    want[:, 20:30] = True  # layer new: columns 20..29 (old: 0..9)
    assert len(got) == 2
    for it in got:
        assert np.array_equal(draw_vector_label(it.input_label, it.image), want), it.name
