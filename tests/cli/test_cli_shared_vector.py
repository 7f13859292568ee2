"""One vector label file for every image (``enhance --labels FILE.geojson`` with a folder of
images, ``scene --labels FILE`` with a folder of scenes) that cannot be read is one ``error:``
line naming it, exit 2, before the model loads and with nothing written. Before, every image
read it again and failed with the same message: one warning per image, then the closing error
listing it once more ("3 x FILE: cannot read vector labels ...")."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers_data import grey_rgb, write_png, write_tif
from helpers_logs import one_error_line, run_main_err

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json at all", "not a readable vector file"),
        ('{"type": "FeatureCollection", "features": []}', "has no features"),
    ],
)
@pytest.mark.parametrize("cmd", ["enhance", "scene"])
def test_one_unreadable_label_file_for_all_images_is_one_error(
    tmp_path: Path,
    unread_model: Path,
    capsys: pytest.CaptureFixture[str],
    cmd: str,
    content: str,
    says: str,
) -> None:
    images = tmp_path / "images"
    for i in range(3):
        if cmd == "enhance":
            write_png(images / f"a{i}.png", grey_rgb(32, i))
        else:
            write_tif(images / f"a{i}.tif", np.full((1, 32, 32), 50 + i, np.uint8))
    labels = tmp_path / "coarse.geojson"
    labels.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    flag = "--images" if cmd == "enhance" else "--image"
    capsys.readouterr()
    rc = main([cmd, "--model", str(unread_model), flag, str(images), "--labels", str(labels),
               "--out", str(out), "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2, captured
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {labels}: ") and says in err[0], err
    assert not out.exists()


# ------------------------------------------- one pixel-coordinate GeoPackage for PNG images


def _pixel_layer(path: Path, sign: int, names: bool = True, crs: str | None = None) -> Path:
    """A layer as ``elnet export`` writes it for images without georeference: a box on a.png
    and one on b.png in pixel coordinates (``sign`` -1: QGIS's y = -row, 1: y = row), each
    naming its image in ``source`` unless not ``names``."""
    import geopandas as gpd
    from shapely.geometry import box

    boxes = [box(4, sign * 6, 20, sign * 18), box(10, sign * 2, 28, sign * 12)]
    cols = {"source": ["a.png", "sub/b.png"]} if names else {"category": ["x", "x"]}
    with warnings.catch_warnings():  # pyogrio: "'crs' was not provided" (pixel coordinates)
        warnings.simplefilter("ignore", UserWarning)
        gpd.GeoDataFrame(cols, geometry=boxes, crs=crs).to_file(path, driver="GPKG")
    return path


def _read_labels(out: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    return {p.name: np.asarray(Image.open(p)) for p in sorted((out / "labels").iterdir())}


def _changes(out: Path) -> list[tuple[str, str, str]]:
    import csv

    with (out / "quality.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return sorted((Path(r["image"]).name, r["added_px"], r["removed_px"]) for r in rows)


@pytest.mark.parametrize("sign", [-1, 1], ids=["qgis-y-up", "gdal-y-down"])
def test_enhance_places_a_pixel_coordinate_layer_by_source_as_import_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sign: int
) -> None:
    """``enhance --labels coarse.gpkg`` on PNGs (no georeference) gives each image the
    features its ``source`` names, placed as ``import --from vector`` places them: the same
    enhanced labels and change counts as enhancing from the imported masks."""
    from helpers_data import micro_model_file

    images = tmp_path / "images"
    write_png(images / "a.png", grey_rgb(32, 1))
    write_png(images / "b.png", grey_rgb(32, 2))
    gpkg = _pixel_layer(tmp_path / "coarse.gpkg", sign)
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    masks = tmp_path / "masks"
    base = ["--images", str(images), "--no-progress"]
    assert main(["import", str(gpkg), "--from", "vector", "--out", str(masks), *base]) == 0
    from PIL import Image

    got = {p.name: np.asarray(Image.open(p)) > 0 for p in sorted(masks.glob("*.png"))}
    want_a = np.zeros((32, 32), bool)
    want_a[6:18, 4:20] = True  # rows 6..17, columns 4..19, whichever y convention
    assert sorted(got) == ["a.png", "b.png"] and np.array_equal(got["a.png"], want_a)
    assert got["b.png"][2:12, 10:28].all() and got["b.png"].sum() == 10 * 18
    enh = ["enhance", "--model", str(model), *base]
    capsys.readouterr()
    assert main([*enh, "--labels", str(gpkg), "--out", str(tmp_path / "v")]) == 0
    err = capsys.readouterr().err
    assert "cannot be placed" not in err and "no georeference" not in err, err
    assert main([*enh, "--labels", str(masks), "--out", str(tmp_path / "r")]) == 0
    from_layer, from_masks = _read_labels(tmp_path / "v"), _read_labels(tmp_path / "r")
    assert sorted(from_layer) == ["a.png", "b.png"]
    for name in from_layer:
        assert np.array_equal(from_layer[name], from_masks[name]), name
    assert _changes(tmp_path / "v") == _changes(tmp_path / "r")
    changes = {p.name: np.asarray(Image.open(p)) for p in (tmp_path / "v" / "changes").iterdir()}
    ref = {p.name: np.asarray(Image.open(p)) for p in (tmp_path / "r" / "changes").iterdir()}
    assert changes.keys() == ref.keys() and all(np.array_equal(changes[k], ref[k]) for k in ref)


def _enhance_refused(
    capsys: pytest.CaptureFixture[str], model: Path, images: Path, labels: Path, out: Path
) -> str:
    """``elnet enhance`` of ``images`` with ``labels``: exit 2, one ``error:`` line (returned),
    and no ``out`` folder (refused before the model loads)."""
    err = one_error_line(*run_main_err(capsys, "enhance", "--model", model, "--images", images,
                                       "--labels", labels, "--out", out, "--no-progress"))  # fmt: skip
    assert not out.exists()
    return err


@pytest.mark.parametrize(
    ("names", "crs", "says"),
    [
        (
            True,
            "EPSG:32633",
            "its features are in map coordinates (EPSG:32633), which cannot be placed on them",
        ),
        (False, None, "its features have no source / label attribute naming their image"),
    ],
    ids=["map-crs", "no-source"],
)
def test_a_folder_of_plain_images_a_label_file_cannot_be_placed_on_is_refused_up_front(
    tmp_path: Path,
    unread_model: Path,
    capsys: pytest.CaptureFixture[str],
    names: bool,
    crs: str | None,
    says: str,
) -> None:
    """No georeference on any image and no way to place the file's features by name: one
    ``error:`` line naming the file, the images, why and the fix, exit 2, before the model loads
    and with nothing written (it was one 'has no georeference' warning per image, then a
    failure). (A folder where some images can take it skips the others:
    test_vector_image_rule.)"""
    images = tmp_path / "images"
    for i in range(4):
        write_png(images / f"a{i}.png", grey_rgb(32, i))
    gpkg = _pixel_layer(tmp_path / "coarse.gpkg", -1, names=names, crs=crs)
    err = _enhance_refused(capsys, unread_model, images, gpkg, tmp_path / "out")
    assert err.startswith(
        f"error: {gpkg}: none of the 4 images has a georeference (CRS + transform, or GCPs): {says}"
    ), err
    assert f"elnet import --from vector {gpkg}" in err, err


def test_enhance_refuses_a_layer_naming_none_of_the_images(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    write_png(images / "c.png", grey_rgb(32, 1))
    write_png(images / "d.png", grey_rgb(32, 2))
    gpkg = _pixel_layer(tmp_path / "coarse.gpkg", -1)
    err = _enhance_refused(capsys, unread_model, images, gpkg, tmp_path / "out")
    assert err.startswith(f"error: {gpkg}: none of the 2 images has a georeference"), err
    assert (
        "no feature's source / label names one of the 2 images (they name a, b); check --images "
        "and the file" in err
    ), err


def test_an_image_no_feature_names_is_told_to_check_the_names_not_the_crs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A pixel-coordinate layer placed by ``source`` on PNGs, naming a.png and b.png but not
    c.png: c.png is enhanced from an empty coarse label with a warning that says no feature
    *names* it and to check the names (it said "lies on this image ... check the label CRS",
    and no CRS is involved). A georeferenced image keeps the CRS wording."""
    from helpers_data import micro_model_file

    from sam2elnet.data.vector_shared import warn_no_features

    images = tmp_path / "images"
    for i, name in enumerate(("a", "b", "c")):
        write_png(images / f"{name}.png", grey_rgb(32, i + 1))
    gpkg = _pixel_layer(tmp_path / "coarse.gpkg", -1)
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    capsys.readouterr()
    rc = main(["enhance", "--model", str(model), "--images", str(images), "--labels", str(gpkg),
               "--out", str(tmp_path / "v"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    said = [ln for ln in err.splitlines() if "no feature of" in ln]
    assert len(said) == 1, err
    assert said[0].endswith(
        f"{images / 'c.png'}: no feature of {gpkg} (one label file for all images) names this "
        "image (no georeference: the features are matched by their source / label attribute, "
        "the image's file name), so it is enhanced from an empty coarse label (nothing drawn "
        "there); if the file should cover it, check the source / label names of its features"
    ), said
    assert "CRS" not in said[0]
    geo = write_tif(tmp_path / "geo.tif", np.ones((1, 32, 32), np.uint8))
    caplog.clear()
    with caplog.at_level("WARNING"):
        warn_no_features(geo, gpkg)
        warn_no_features(images / "c.png", gpkg, by_name=False)  # a scene: never by name
    assert [r.getMessage() for r in caplog.records] == [
        f"{p}: no feature of {gpkg} (one label file for all images) lies on this image, so it "
        "is enhanced from an empty coarse label (nothing drawn there); if the file should cover "
        "it, check the label CRS"
        for p in (geo, images / "c.png")
    ]


def test_the_window_path_places_a_pixel_coordinate_layer_by_source_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images predicted window by window (--max-memory) took the whole pixel-coordinate layer
    as every image's coarse label: c.png, which no feature names, got a.png's and b.png's boxes
    (kept / removed pixels in its change map) and no warning. Now it gets none, as on the
    whole-image path, with the warning that no feature names it."""
    from helpers_data import micro_model_file
    from PIL import Image

    images = tmp_path / "images"
    for i, name in enumerate(("a", "b", "c")):
        write_png(images / f"{name}.png", grey_rgb(96, i + 1))
    gpkg = _pixel_layer(tmp_path / "coarse.gpkg", -1)
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    out = tmp_path / "w"
    capsys.readouterr()
    rc = main(["enhance", "--model", str(model), "--images", str(images), "--labels", str(gpkg),
               "--out", str(out), "--max-memory", "2M", "--tile", "64", "--overlap", "16",
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and "predicted window by window" in err, err
    said = [ln for ln in err.splitlines() if "no feature of" in ln]
    assert len(said) == 1 and f"{images / 'c.png'}: no feature of {gpkg}" in said[0], err
    assert "names this image" in said[0], said
    change = {p.stem: np.asarray(Image.open(p)) for p in (out / "changes").glob("*.png")}
    # red channel (H, W, 3): 255 kept, 220 removed, coarse-label pixels; c.png has none, a / b do
    assert not np.isin(change["c"][..., 0], (220, 255)).any()
    for name in ("a", "b"):
        assert np.isin(change[name][..., 0], (220, 255)).any(), name


def test_evaluate_refuses_a_prediction_folder_no_prediction_of_which_can_take_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same up-front check for ``evaluate --truth FILE`` with a prediction folder."""
    preds = tmp_path / "preds"
    write_png(preds / "p1.png", np.zeros((32, 32), np.uint8))
    write_png(preds / "p2.png", np.zeros((32, 32), np.uint8))
    gpkg = _pixel_layer(tmp_path / "truth.gpkg", -1, crs="EPSG:32633")
    capsys.readouterr()
    rc = main(["evaluate", "--pred", str(preds), "--truth", str(gpkg), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(
        f"error: {gpkg}: none of the 2 predictions has a georeference (CRS + transform, or "
        "GCPs): its features are in map coordinates (EPSG:32633)"
    ), err
    assert "give a --truth folder of one polygon file per prediction" in err[0], err


def test_evaluate_skips_the_plain_predictions_of_a_mixed_folder_and_scores_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GeoTIFF and a PNG with a truth layer in map coordinates: the GeoTIFF is scored, the
    PNG skipped with the reason (before: exit 2 for the whole folder)."""
    import json

    import geopandas as gpd
    from shapely.geometry import box

    preds = tmp_path / "preds"
    write_tif(preds / "a.tif", np.full((1, 32, 32), 255, np.uint8))
    write_png(preds / "p1.png", np.zeros((32, 32), np.uint8))
    gpkg = tmp_path / "truth.gpkg"  # a.tif's rows 10..19, columns 1..9 (10 m pixels)
    gpd.GeoDataFrame(
        {"source": ["a.tif"]}, geometry=[box(500010, 3999800, 500100, 3999900)], crs="EPSG:32633"
    ).to_file(gpkg)
    js = tmp_path / "ev.json"
    capsys.readouterr()
    rc = main(["evaluate", "--pred", str(preds), "--truth", str(gpkg), "--json", str(js),
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    rows = json.loads(js.read_text())["images"]
    assert [(Path(r["pred"]).name, r["tp"]) for r in rows] == [("a.tif", 90)]
    said = [ln for ln in err.splitlines() if "p1.png" in ln]
    assert len(said) == 1 and "its features are in map coordinates (EPSG:32633)" in said[0], err


def test_evaluate_places_a_pixel_coordinate_layer_by_source_as_enhance_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate --truth coarse.gpkg`` with PNG predictions: each takes the features its
    ``source`` names, in pixel coordinates, as ``enhance`` and ``import`` place them (was: one
    error, 'none of the 2 prediction(s) has a georeference')."""
    import json

    preds = tmp_path / "preds"
    for name in ("a", "b"):  # all object: TP = each image's truth pixels
        write_png(preds / f"{name}.png", np.full((32, 32), 255, np.uint8))
    gpkg = _pixel_layer(tmp_path / "truth.gpkg", -1)
    js = tmp_path / "ev.json"
    rc = main(["evaluate", "--pred", str(preds), "--truth", str(gpkg), "--json", str(js),
               "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    rows = {Path(r["pred"]).stem: r for r in json.loads(js.read_text())["images"]}
    # a: rows 6..17, columns 4..19 (12 x 16); b: rows 2..11, columns 10..27 (10 x 18)
    assert {k: (rows[k]["tp"], rows[k]["fn"]) for k in "ab"} == {"a": (192, 0), "b": (180, 0)}


def test_scene_refuses_a_folder_of_scenes_none_of_which_can_take_the_labels(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scene --labels FILE`` with a folder of scenes none of which can take it: the same
    up-front check as enhance, with the scene's fix."""
    scenes = tmp_path / "scenes"
    write_tif(scenes / "q.tif", np.full((1, 32, 32), 90, np.uint8), georef=False)
    write_tif(scenes / "p.tif", np.full((1, 32, 32), 90, np.uint8), georef=False)
    gpkg = _pixel_layer(tmp_path / "coarse.gpkg", -1, crs="EPSG:32633")
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["scene", "--model", str(unread_model), "--image", str(scenes), "--labels", str(gpkg),
               "--out", str(out), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0] == (
        f"error: {gpkg}: none of the 2 scenes has a georeference (CRS + transform, or GCPs): "
        "its features are in map coordinates (EPSG:32633), which cannot be placed on "
        "them; or georeference the scenes, or give --labels a folder of one label per scene"
    ), err
    assert not out.exists()
