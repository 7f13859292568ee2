"""enhance with vector coarse labels: polygons and road lines rasterised on each image's grid,
vector files matched by name, one file for many images read once, images it does not touch."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import count_vector_reads, tiled_scene
from helpers_logs import logs_warning

from sam2elnet.engine.infer import enhance_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError, UserError


def test_enhance_accepts_vector_coarse_labels(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """One GeoJSON of polygons is rasterised onto each image's grid before enhancement."""
    import geopandas as gpd
    from shapely.geometry import box

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    tiled_scene(scene, run["data"] / "images" / "s00.png")
    # A 20x20-pixel square in map coordinates (10 m pixels from x=500000, y=4000000 downwards).
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    labels = tmp_path / "coarse.geojson"
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(labels)
    res = enhance_folder(
        run["model"], scene, labels, tmp_path / "e", progress=False, predictor=pred
    )
    row = res.rows[0]
    assert row["coarse"].endswith("coarse.geojson")
    # In the change map, coarse pixels are white (kept) or red (removed): together they must be
    # exactly the rasterised square (rows/cols 20..39), whatever the model predicted.
    rgb = cv2.imread(str(tmp_path / "e" / row["changes"]))[:, :, ::-1]
    coarse = rgb[:, :, 0] > 0
    expected = np.zeros((96, 96), bool)
    expected[20:40, 20:40] = True
    assert np.array_equal(coarse, expected)
    assert int(row["removed_px"]) == int(np.count_nonzero(coarse & (rgb[:, :, 1] == 0)))


def test_enhance_buffers_road_lines_in_pixels_or_map_units(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """A road drawn as a centre line is buffered to --line-width, in map units of the image CRS
    (10 m pixels here) or with --line-width-px in pixels, on the whole-image and the window path
    (enhance had no pixel unit: 4 meant 4 m = 0.4 px on this image and burnt nothing)."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from sam2elnet.engine import memory

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    tiled_scene(scene, run["data"] / "images" / "s00.png")
    # along the edge between rows 29 and 30, from column 10 to column 90
    road = LineString([(500000 + 100, 4000000 - 300), (500000 + 900, 4000000 - 300)])
    labels = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[road], crs="EPSG:32633").to_file(labels)

    def coarse_rows(name: str, **kw: object) -> list[int]:
        res = enhance_folder(
            run["model"], scene, labels, tmp_path / name, progress=False, predictor=pred, **kw
        )
        rgb = cv2.imread(str(tmp_path / name / res.rows[0]["changes"]))[:, :, ::-1]
        coarse = rgb[:, :, 0] > 0  # kept (white) or removed (red): the coarse label
        rows = np.flatnonzero(coarse.any(axis=1))
        assert coarse[rows, 12:88].all()  # along the whole road
        return [int(r) for r in rows]

    assert coarse_rows("px", line_width=4, line_width_unit="px") == [28, 29, 30, 31]
    assert coarse_rows("map", line_width=40) == [28, 29, 30, 31]
    assert coarse_rows("metres", line_width=4) == []  # 0.4 px wide: no pixel centre inside
    budget = pred.whole_bytes(64 * 64)  # the window path (scene_changes' coarse source)
    rows = coarse_rows(
        "tiled", line_width=4, line_width_unit="px", tile=64, overlap=16, max_memory=budget
    )
    pred.max_memory = memory.DEFAULT_MAX_MEMORY
    assert rows == [28, 29, 30, 31]
    with pytest.raises(UserError, match="line-width-unit"):
        enhance_folder(run["model"], scene, labels, tmp_path / "bad", line_width_unit="feet")


def test_enhance_matches_vector_files_in_a_label_folder_by_name(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """--labels FOLDER of vector files (help: 'masks or vector files', matched by name): the key
    kept the .gpkg / .geojson suffix, so no image found its label ('have no label in ...')."""
    import geopandas as gpd
    from shapely.geometry import box

    from sam2elnet.engine.folder_inputs import label_index

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    tiled_scene(scene, run["data"] / "images" / "s00.png")
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    folder = tmp_path / "coarse"
    folder.mkdir()
    gdf = gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633")
    gdf.to_file(folder / "scene_mask.gpkg")
    gdf.to_file(folder / "other.geojson")
    idx = label_index(folder)
    assert dict(idx) == {"scene": folder / "scene_mask.gpkg", "other": folder / "other.geojson"}
    res = enhance_folder(
        run["model"], scene, folder, tmp_path / "e", progress=False, predictor=pred
    )
    row = res.rows[0]
    assert row["coarse"].endswith("scene_mask.gpkg")
    rgb = cv2.imread(str(tmp_path / "e" / row["changes"]))[:, :, ::-1]
    assert int(np.count_nonzero(rgb[:, :, 0] > 0)) == 400  # the rasterised 20 x 20 square


def test_enhance_reads_one_vector_file_for_many_images_once(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--labels square.gpkg, one vector file for 3 georeferenced images (two predicted whole,
    one window by window): the file was read and parsed once per image, twice for the windowed
    one (its prediction and its change map), 4 reads; now once for the run. Labels, change maps
    and quality.csv rows are those of a label folder with one copy of the file per image."""
    import shutil

    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    from sam2elnet.engine import memory

    images = tmp_path / "in"
    images.mkdir()
    for k, size in enumerate((64, 96, 64)):  # 96 x 96 px is over the budget: windows
        tiled_scene(images / f"s{k}.tif", run["data"] / "images" / "s00.png", size=size)
    # a 20 x 20 px square (rows / cols 20..39) on every image (10 m pixels, same origin)
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    shared = tmp_path / "square.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(shared)
    folder = tmp_path / "per_image"
    folder.mkdir()
    for k in range(3):
        shutil.copy(shared, folder / f"s{k}.gpkg")
    opts = dict(progress=False, predictor=pred, tile=64, overlap=16)
    opts["max_memory"] = pred.whole_bytes(64 * 64, coarse=True)
    try:
        with monkeypatch.context() as m:
            opened = count_vector_reads(m)
            one = enhance_folder(run["model"], images, shared, tmp_path / "one", **opts)
        each = enhance_folder(run["model"], images, folder, tmp_path / "each", **opts)
    finally:
        pred.max_memory = memory.DEFAULT_MAX_MEMORY
    assert opened == ["square.gpkg"]
    tiles = sorted(p.name for p in (tmp_path / "one" / "tiles").iterdir())
    assert tiles == ["s1.gpkg"]  # s1 took the window path, s0 and s2 the whole-image path
    assert [r["coarse"] for r in one.rows] == [str(shared)] * 3
    for a, b in zip(one.rows, each.rows, strict=True):
        same = [json.dumps({**r, "coarse": ""}, sort_keys=True, default=str) for r in (a, b)]
        assert same[0] == same[1]  # (as text: NaN features compare equal)
        for key in ("label", "changes"):
            with (
                rasterio.open(tmp_path / "one" / a[key]) as x,
                rasterio.open(tmp_path / "each" / b[key]) as y,
            ):
                assert np.array_equal(x.read(), y.read()), (a["image"], key)
        rgb = cv2.imread(str(tmp_path / "one" / a["changes"]))[:, :, ::-1]
        expected = np.zeros(rgb.shape[:2], bool)
        expected[20:40, 20:40] = True
        assert np.array_equal(rgb[:, :, 0] > 0, expected)  # kept or removed: the square


def test_one_vector_file_for_a_folder_gives_untouched_images_an_empty_coarse_label(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--labels slicks.gpkg, one file (drawn in QGIS, EPSG:4326) for a folder of two UTM scenes,
    with a slick on one: the other scene was skipped with 'none of the 1 label features overlaps
    the image ... check the label CRS'. Now it is enhanced from an empty coarse label (its whole
    image label stays empty) with one warning, on the whole-image and the window path, and in an
    elnet scene folder batch; one image and a file that misses it is still an error."""
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    from sam2elnet.cli import main
    from sam2elnet.engine import memory

    folder = tmp_path / "in"
    folder.mkdir()
    tiled_scene(folder / "a.tif", run["data"] / "images" / "s00.png")
    tiled_scene(folder / "b.tif", run["data"] / "images" / "s00.png")
    with rasterio.open(folder / "b.tif", "r+") as ds:  # 10 km east of a.tif
        ds.transform = from_origin(510000, 4000000, 10, 10)
    slick = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    labels = tmp_path / "slicks.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[slick], crs="EPSG:32633").to_crs(4326).to_file(labels)

    with logs_warning(caplog, r"b\.tif: no feature of .*slicks\.gpkg .*empty coarse label"):
        res = enhance_folder(
            run["model"], folder, labels, tmp_path / "e", progress=False, predictor=pred
        )
    assert res.skipped == [] and sorted(Path(r["image"]).name for r in res.rows) == [
        "a.tif",
        "b.tif",
    ]
    with rasterio.open(tmp_path / "e" / "labels" / "b.tif") as ds:
        assert not (ds.read(1) == 255).any()
    row_a = next(r for r in res.rows if r["image"].endswith("a.tif"))
    assert int(row_a["removed_px"]) + int(np.count_nonzero(
        rasterio.open(tmp_path / "e" / "labels" / "a.tif").read(1) == 255
    )) - int(row_a["added_px"]) == 400  # the 20 x 20 px coarse slick reached a.tif  # fmt: skip
    pred.max_memory = pred.whole_bytes(64 * 64)  # the window path (scene_changes too)
    try:
        res = enhance_folder(run["model"], folder, labels, tmp_path / "t", progress=False,
                             predictor=pred, tile=64, overlap=16)  # fmt: skip
    finally:
        pred.max_memory = memory.DEFAULT_MAX_MEMORY
    assert res.skipped == [] and len(res.rows) == 2
    assert main(["scene", "--model", "builtin:smoothing", "--image", str(folder), "--labels",
                 str(labels), "--out", str(tmp_path / "s"), "--tile", "64", "--overlap", "16",
                 "--no-progress"]) == 0  # fmt: skip
    assert (tmp_path / "s" / "a.tif").exists() and (tmp_path / "s" / "b.tif").exists()
    with pytest.raises(DataError, match="the only label feature does not overlap"):
        enhance_folder(run["model"], folder / "b.tif", labels, tmp_path / "one", progress=False,
                       predictor=pred)  # fmt: skip


def test_one_line_file_for_many_images_without_a_width_says_lines_burn_1_px(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--labels roads.gpkg, one file of road centre lines for a folder of georeferenced tiles,
    without --line-width: the lines burnt 1 px wide without a word (the note was collected for
    the shared file and never said; a folder of one file per image warned), in enhance and in a
    scene folder batch. Now one warning names the file and its line count; with a width, none."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from sam2elnet.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(2):
        tiled_scene(folder / f"t{k}.tif", run["data"] / "images" / "s00.png")
    road = LineString([(500000 + 100, 4000000 - 295), (500000 + 900, 4000000 - 295)])  # row 29
    labels = tmp_path / "roads.gpkg"
    gdf = gpd.GeoDataFrame({"width": [12.0, 12.0]}, geometry=[road, road], crs="EPSG:32633")
    gdf.to_file(labels)
    pattern = r"roads\.gpkg: 2 line features burnt 1 px wide; give a line width"
    with logs_warning(caplog, pattern):
        res = enhance_folder(
            run["model"], folder, labels, tmp_path / "e", progress=False, predictor=pred
        )
    assert len(res.rows) == 2
    rgb = cv2.imread(str(tmp_path / "e" / res.rows[0]["changes"]))[:, :, ::-1]
    assert np.flatnonzero((rgb[:, :, 0] > 0).any(axis=1)).tolist() == [29]  # 1 px wide
    with logs_warning(caplog, pattern):
        assert main(["scene", "--model", "builtin:smoothing", "--image", str(folder), "--labels",
                     str(labels), "--out", str(tmp_path / "s"), "--no-progress"]) == 0  # fmt: skip
    caplog.clear()
    enhance_folder(run["model"], folder, labels, tmp_path / "w", progress=False, predictor=pred,
                   line_width=4, line_width_unit="px")  # fmt: skip
    assert not [r for r in caplog.records if "burnt 1 px wide" in r.getMessage()]


def test_one_vector_file_without_a_crs_for_many_images_says_its_repairs_once(
    run: dict[str, Path],
    pred: Predictor,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--labels slicks.gpkg saved by QGIS without a CRS and holding a self-intersecting ring, one
    file for a folder of two UTM scenes: enhance (whole images and window by window) and an
    elnet scene folder batch said nothing, neither that the polygons were taken to be in the
    images' CRS nor that one was repaired (the notes were collected for the shared file and
    never said); one image and its own file warned. Now each is one warning for the file."""
    import warnings

    import geopandas as gpd
    from shapely.geometry import Polygon, box

    from sam2elnet.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(2):
        tiled_scene(folder / f"t{k}.tif", run["data"] / "images" / "s00.png")
    x0, y0 = 500000, 4000000
    square = box(x0 + 200, y0 - 400, x0 + 400, y0 - 200)
    bowtie = Polygon([(x0 + 500, y0 - 500), (x0 + 700, y0 - 700), (x0 + 700, y0 - 500),
                      (x0 + 500, y0 - 700)])  # fmt: skip
    labels = tmp_path / "slicks.gpkg"
    with warnings.catch_warnings():  # pyogrio: "'crs' was not provided", as QGIS can save it
        warnings.simplefilter("ignore", UserWarning)
        gpd.GeoDataFrame({"id": [1, 2]}, geometry=[square, bowtie]).to_file(labels)
    no_crs = r"slicks\.gpkg: labels have no CRS; assuming they are already in the image CRS"
    repaired = r"slicks\.gpkg: repaired 1 invalid geometry with make_valid"

    def said(pattern: str) -> int:
        import re

        return sum(bool(re.search(pattern, r.getMessage())) for r in caplog.records)

    for name, kw in (("whole", {}), ("windows", {"tile": 64, "overlap": 16})):
        budget = pred.max_memory
        if kw:
            pred.max_memory = pred.whole_bytes(64 * 64)  # 96 px images: the window path
        try:
            with logs_warning(caplog, no_crs):
                res = enhance_folder(run["model"], folder, labels, tmp_path / name,
                                     progress=False, predictor=pred, **kw)  # fmt: skip
        finally:
            pred.max_memory = budget
        assert len(res.rows) == 2 and (said(no_crs), said(repaired)) == (1, 1), name
    capsys.readouterr()
    assert main(["scene", "--model", "builtin:smoothing", "--image", str(folder), "--labels",
                 str(labels), "--out", str(tmp_path / "s"), "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("labels have no CRS; assuming") == 1, err
    assert err.count("repaired 1 invalid geometry") == 1, err
