"""Labels out: polygons with attributes, COCO (own RLE), chips, and the export/scene CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_data import write_tif

from sam2elnet.cli import main
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.api import export_labels
from sam2elnet.export.coco import (
    counts_to_string,
    rle_counts,
    rle_decode,
    rle_encode,
    string_to_counts,
)
from sam2elnet.export.labels import find_labels, read_quality_csv
from sam2elnet.export.polygonize import polygonize_label


def label_array(h: int = 200, w: int = 240) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[20:80, 30:100] = 255  # rectangle with a hole
    lab[40:50, 50:60] = 0
    lab[120:190, 150:230] = 255  # big block crossing many rows
    lab[5:7, 200:202] = 255  # 4-pixel speck
    yy, xx = np.mgrid[:h, :w]
    lab[((yy - 150) ** 2 + (xx - 60) ** 2) < 25**2] = 255  # disc
    return lab


def write_label_tif(
    path: Path, lab: np.ndarray, *, georef: bool = True, nodata: float | None = 127
) -> Path:
    """The (H, W) uint8 label ``lab`` as a one-band GeoTIFF (:func:`helpers_data.write_tif`:
    EPSG:32633, 10 m pixels from (500000 E, 4000000 N); no georeference with ``georef``
    False), nodata 127 (the label nodata) unless given."""
    return write_tif(path, lab[None], nodata=nodata, georef=georef)


@pytest.fixture
def label_tif(tmp_path: Path) -> Path:
    lab = label_array()
    lab[:3, :3] = 127  # nodata corner
    (tmp_path / "labels").mkdir()
    return write_label_tif(tmp_path / "labels" / "a.tif", lab)


# ---------------------------------------------------------------- RLE
def test_rle_roundtrip_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = rng.integers(1, 30, 2)
        m = rng.random((h, w)) < rng.random()
        c = rle_counts(m)
        assert sum(c) == h * w
        assert string_to_counts(counts_to_string(c)) == c
        np.testing.assert_array_equal(rle_decode(rle_encode(m)), m)


def test_rle_known_values():
    # column-major, starts with a zero run: a 2x2 all-ones mask is [0, 4]
    assert rle_counts(np.ones((2, 2), bool)) == [0, 4]
    assert counts_to_string([0, 4]) == "04"
    m = np.array([[0, 1], [0, 1]], bool)  # first column zeros, second ones
    assert rle_counts(m) == [2, 2]
    # large and negative deltas survive the 5-bit encoding
    c = [5, 100000, 3, 2, 70000, 1]
    assert string_to_counts(counts_to_string(c)) == c


# ---------------------------------------------------------------- polygons
def test_polygons_keep_crs_attributes_and_area(tmp_path: Path, label_tif: Path):
    (tmp_path / "labels" / "quality.csv").write_text("image,predicted_iou\na.tif,0.83\n")
    out = tmp_path / "out.gpkg"
    res = export_labels(tmp_path / "labels", out, model_id="elnet-tiny-v1", progress=False)
    gdf = gpd.read_file(out, layer="labels")
    assert gdf.crs.to_epsg() == 32633
    assert res.n_features == len(gdf) == 4  # rectangle(with hole), block, speck, disc
    assert set(gdf.columns) >= {
        "source",
        "label",
        "quality",
        "area_px",
        "area_map",
        "model_id",
        "poly_id",
    }
    assert (gdf["quality"] == 0.83).all() and (gdf["model_id"] == "elnet-tiny-v1").all()
    lab = label_array()
    lab[:3, :3] = 127
    assert gdf["area_px"].sum() == pytest.approx(int((lab == 255).sum()))
    assert np.allclose(gdf["area_map"], gdf["area_px"] * 100)  # 10 m pixels
    holes = [len(g.interiors) for g in gdf.geometry]
    assert max(holes) == 1


def test_strip_polygonisation_equals_whole_raster(label_tif: Path):
    whole, _ = polygonize_label(label_tif, strip_rows=10_000)
    strips, _ = polygonize_label(label_tif, strip_rows=16)
    assert len(whole) == len(strips)
    from shapely import union_all

    a, b = union_all(whole), union_all(strips)
    assert a.symmetric_difference(b).area == pytest.approx(0.0, abs=1e-6)


def test_simplify_smooth_and_min_area(tmp_path: Path, label_tif: Path):
    base = gpd.read_file(export_labels(label_tif, tmp_path / "a.geojson", progress=False).out)
    simp = gpd.read_file(
        export_labels(label_tif, tmp_path / "b.geojson", simplify=15.0, progress=False).out
    )
    big = gpd.read_file(
        export_labels(label_tif, tmp_path / "c.geojson", min_area_px=10, progress=False).out
    )
    smooth = gpd.read_file(
        export_labels(label_tif, tmp_path / "d.geojson", smooth=10.0, progress=False).out
    )
    nverts = lambda g: sum(len(p.exterior.coords) for p in g.geometry)  # noqa: E731
    assert nverts(simp) < nverts(base)
    assert len(big) == len(base) - 1  # the 4-pixel speck is gone
    assert nverts(smooth) > 0 and len(smooth) == len(base)


def test_shapefile_output_has_all_sidecars(tmp_path: Path, label_tif: Path):
    out = tmp_path / "shp" / "labels.shp"
    export_labels(label_tif, out, "shp", model_id="m", progress=False)
    for suf in (".shp", ".shx", ".dbf", ".prj"):
        assert out.with_suffix(suf).exists()
    gdf = gpd.read_file(out)
    assert len(gdf) == 4 and gdf.crs.to_epsg() == 32633
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_png_labels_export_in_pixel_coordinates(tmp_path: Path):
    d = tmp_path / "png"
    d.mkdir()
    lab = np.zeros((50, 60), np.uint8)
    lab[10:20, 5:25] = 255
    cv2.imwrite(str(d / "x.png"), lab)
    cv2.imwrite(str(d / "x_prob.png"), lab)  # probability files are not labels
    assert find_labels(d) == [d / "x.png"]
    with pytest.raises(DataError, match="no georeference"):  # readers would take px for lon/lat
        export_labels(d, tmp_path / "x.geojson", progress=False)
    assert not (tmp_path / "x.geojson").exists()
    res = export_labels(d, tmp_path / "x.gpkg", progress=False)
    assert any("pixel coordinates" in n for n in res.notes)
    gdf = gpd.read_file(tmp_path / "x.gpkg", layer="labels")
    assert len(gdf) == 1
    assert gdf.total_bounds.tolist() == [5, 10, 25, 20]  # pixel coordinates, y = row
    assert gdf["area_px"].iloc[0] == 200


def test_01_labels_are_read_as_binary(tmp_path: Path):
    lab = (label_array() > 0).astype(np.uint8)
    path = write_label_tif(tmp_path / "b.tif", lab, nodata=None)
    polys, _ = polygonize_label(path)
    assert len(polys) == 4


# ---------------------------------------------------------------- COCO and chips
def test_coco_polygons_and_rle_reproduce_the_mask(tmp_path: Path, label_tif: Path):
    from rasterio import features

    lab = label_array()
    lab[:3, :3] = 127
    mask = lab == 255
    for rle in (False, True):
        out = tmp_path / f"coco_{rle}.json"
        export_labels(label_tif, out, "coco", coco_rle=rle, category="oil", progress=False)
        coco = json.loads(out.read_text())
        assert coco["categories"][0]["name"] == "oil"
        assert len(coco["images"]) == 1 and len(coco["annotations"]) == 4
        img = coco["images"][0]
        assert (img["height"], img["width"]) == mask.shape
        rebuilt = np.zeros_like(mask)
        for ann in coco["annotations"]:
            seg = ann["segmentation"]
            if isinstance(seg, dict):
                m = rle_decode(seg)
            else:
                m = np.zeros(mask.shape, np.uint8)
                for poly in seg:
                    ring = list(zip(poly[::2], poly[1::2], strict=True))
                    features.rasterize([({"type": "Polygon", "coordinates": [ring]}, 1)], out=m)
                m = m.astype(bool)
            assert m.sum() == ann["area"]
            x, y, w, h = ann["bbox"]
            assert m[y : y + h, x : x + w].sum() == ann["area"]
            rebuilt |= m
        np.testing.assert_array_equal(rebuilt, mask)
        if not rle:  # the region with a hole must be RLE even in polygon mode
            assert any(isinstance(a["segmentation"], dict) for a in coco["annotations"])
            assert any(isinstance(a["segmentation"], list) for a in coco["annotations"])


def test_chips_and_coco_over_chips(tmp_path: Path, label_tif: Path):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    with rasterio.open(label_tif) as lab:
        prof = dict(lab.profile, dtype="uint16", nodata=0, count=3)
    img = (1 + rng.random((3, 200, 240)) * 4000).astype(np.uint16)
    img[:, 195:, :] = 0  # image nodata (tag 0) in the last 5 rows
    with rasterio.open(img_dir / "a.tif", "w", **prof) as d:
        d.write(img)
    res = export_labels(
        label_tif,
        tmp_path / "chips.json",
        "coco",
        images=img_dir,
        chips=tmp_path / "chips",
        chip_size=128,
        progress=False,
    )
    imgs = sorted((tmp_path / "chips" / "images").glob("*.png"))
    masks = sorted((tmp_path / "chips" / "masks").glob("*.png"))
    assert res.n_chips == len(imgs) == len(masks) == 4  # 2 x 2 grid, edge chips shifted inward
    a = cv2.imread(str(imgs[0]), cv2.IMREAD_UNCHANGED)
    m = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8 and m.shape == (128, 128)
    # label convention: 0 / 255, nodata 127 where the label is nodata (corner) ...
    lab = label_array()
    assert [p.name for p in masks] == [f"a_r{r}_c{c}.png" for r in (0, 72) for c in (0, 112)]
    assert (m[:3, :3] == 127).all() and set(np.unique(m)) == {0, 127, 255}
    np.testing.assert_array_equal(m[3:, 3:], lab[3:128, 3:128])
    # ... and where the image has no measurement (rows 195-199 = chip rows 123-127)
    last = cv2.imread(str(masks[3]), cv2.IMREAD_UNCHANGED)
    assert (last[123:] == 127).all() and not (last[:123] == 127).any()
    np.testing.assert_array_equal(last[:123], lab[72:195, 112:240])
    with rasterio.open(masks[3]) as ds:  # GDAL reads the PNG tRNS chunk as nodata 127
        assert ds.nodata == 127 and ds.dataset_mask()[123:].max() == 0
    coco = json.loads((tmp_path / "chips.json").read_text())
    assert {i["file_name"] for i in coco["images"]} == {f"images/{p.name}" for p in imgs}
    # chips without images is a clear error
    with pytest.raises(DataError, match="no source image"):
        export_labels(label_tif, tmp_path / "x.gpkg", chips=tmp_path / "c2", progress=False)


# ---------------------------------------------------------------- bad input
def test_export_format_comes_from_the_format_table(monkeypatch: pytest.MonkeyPatch):
    """One suffix rule (export.layer_files.format_of): FORMATS' suffixes, .json = COCO, any case;
    a polygon format added to FORMATS is known by its suffix with no second table to edit."""
    from sam2elnet.export import layer_files
    from sam2elnet.export.layer_files import format_of

    assert [format_of(f"x{s}") for s in (".GPKG", ".geojson", ".shp", ".Json")] == [
        "gpkg",
        "geojson",
        "shp",
        "coco",
    ]
    assert format_of("x.json", "GeoJSON") == "geojson"
    monkeypatch.setitem(layer_files.FORMATS, "fgb", ("FlatGeobuf", ".fgb"))
    assert format_of("x.fgb") == "fgb"


def test_an_unknown_format_is_refused_before_warping(
    tmp_path: Path, label_tif: Path, monkeypatch: pytest.MonkeyPatch
):
    """--warp-to with an output of no known format: refused before any label is warped (was
    warped into a temporary folder first, then refused)."""
    from sam2elnet.data import warp

    warped: list[Path] = []
    monkeypatch.setattr(warp, "warp_to_map_grid", lambda src, *a, **k: warped.append(src))
    with pytest.raises(UserError, match="cannot tell the export format from o.txt"):
        export_labels(label_tif, tmp_path / "o.txt", warp_to="EPSG:4326", progress=False)
    assert warped == []


def test_bad_export_inputs(tmp_path: Path, label_tif: Path):
    with pytest.raises(DataError, match="does not exist"):
        export_labels(tmp_path / "nope", tmp_path / "o.gpkg", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no label rasters"):
        export_labels(tmp_path / "empty", tmp_path / "o.gpkg", progress=False)
    with pytest.raises(UserError, match="unknown export format"):
        export_labels(label_tif, tmp_path / "o.gpkg", "kml", progress=False)
    with pytest.raises(UserError, match="cannot tell the export format"):
        export_labels(label_tif, tmp_path / "o.txt", progress=False)
    with pytest.raises(
        UserError, match="unknown export format 'kml'; use geojson, gpkg, shp, coco or label-studio"
    ):
        export_labels(label_tif, tmp_path / "o.gpkg", "KML", progress=False)
    (tmp_path / "q.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match=r"q\.csv.*name column"):
        read_quality_csv(tmp_path / "q.csv")
    bad = tmp_path / "labels" / "corrupt.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 50)
    with pytest.raises(DataError, match="corrupt.tif"):
        export_labels(bad, tmp_path / "o.gpkg", progress=False)


def test_mixed_georeferenced_and_plain_labels_cannot_share_one_layer(tmp_path: Path):
    """write_polygons refuses them (one layer, one kind of coordinates), nothing written;
    export_labels of their folder skips the plain ones (test_export_scope.py)."""
    from sam2elnet.export.vector import write_polygons

    d = tmp_path / "mix"
    d.mkdir()
    write_label_tif(d / "a.tif", label_array())
    write_label_tif(d / "b.tif", label_array(), georef=False)
    with pytest.raises(DataError, match="some labels are georeferenced"):
        files = [d / "a.tif", d / "b.tif"]
        write_polygons(files, tmp_path / "o.gpkg", "gpkg", quality={}, notes=[], progress=False)
    assert not (tmp_path / "o.gpkg").exists()


# ---------------------------------------------------------------- CLI
def test_cli_export_and_errors(tmp_path: Path, label_tif: Path, capsys):
    assert (
        main(
            [
                "export",
                "--labels",
                str(label_tif),
                "--out",
                str(tmp_path / "o.gpkg"),
                "--model-id",
                "m1",
                "--min-area",
                "10",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "3 polygons" in capsys.readouterr().out
    assert (
        main(["export", "--labels", str(tmp_path / "missing"), "--out", str(tmp_path / "o.gpkg")])
        == 2
    )
    assert "error:" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                "--labels",
                str(label_tif),
                "--out",
                str(tmp_path / "c.json"),
                "--format",
                "coco",
                "--no-progress",
            ]
        )
        == 0
    )


def test_cli_scene_dry_run_batch_and_errors(tmp_path: Path, capsys):
    from helpers_data import make_scene

    scene = make_scene(tmp_path / "s.tif")
    out = tmp_path / "o.tif"
    assert (
        main(
            [
                "scene",
                "--model",
                "builtin:smoothing",
                "--image",
                str(scene),
                "--out",
                str(out),
                "--tile",
                "128",
                "--overlap",
                "32",
                "--prob",
                "--quality-gpkg",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        out.exists() and (tmp_path / "o_prob.tif").exists() and (tmp_path / "o_tiles.gpkg").exists()
    )
    capsys.readouterr()
    empty = make_scene(tmp_path / "void.tif", all_nodata=True)
    assert (
        main(
            [
                "scene",
                "--model",
                "builtin:smoothing",
                "--image",
                str(empty),
                "--out",
                str(tmp_path / "v.tif"),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line naming the file
    assert f"{empty}: unusable scene, no label written: all nodata (" in err
    assert "check the file's nodata value or mask" in err
    assert (
        main(
            [
                "scene",
                "--model",
                str(tmp_path / "nomodel.pt"),
                "--image",
                str(scene),
                "--out",
                str(tmp_path / "v.tif"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "scene",
                "--model",
                "builtin:smoothing",
                "--image",
                str(scene),
                "--out",
                str(tmp_path / "v.tif"),
                "--bands",
                "x",
            ]
        )
        == 2
    )
    # a folder with one good and one all-nodata scene: the bad one is skipped with its reason
    folder = tmp_path / "many"
    folder.mkdir()
    make_scene(folder / "a.tif", h=120, w=130)
    make_scene(folder / "b.tif", h=60, w=60, all_nodata=True)
    capsys.readouterr()
    assert (
        main(
            [
                "scene",
                "--model",
                "builtin:smoothing",
                "--image",
                str(folder),
                "--out",
                str(tmp_path / "many_out"),
                "--tile",
                "64",
                "--overlap",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )
    cap = capsys.readouterr()
    assert "1 scene predicted" in cap.out and "1 skipped" in cap.out
    assert f"skipping {folder / 'b.tif'}: " in cap.err  # the reason: once, in the warning
    assert "b.tif," in (tmp_path / "many_out" / "skipped.csv").read_text()
    assert (
        main(
            [
                "scene",
                "--model",
                "builtin:smoothing",
                "--image",
                str(folder),
                "--out",
                str(tmp_path / "many_out"),
                "--tile",
                "64",
                "--overlap",
                "16",
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "1 already done" in capsys.readouterr().out


def test_quality_csv_of_annotate_matches_labels_in_the_sibling_folder(tmp_path: Path):
    out = tmp_path / "run"
    (out / "labels").mkdir(parents=True)
    write_label_tif(out / "labels" / "scene_a.tif", label_array())
    (out / "quality.csv").write_text(
        "image,label,predicted_iou,kept\n/data/img/scene_a.tif,labels/scene_a.tif,0.912,True\n"
    )
    q = read_quality_csv(out / "quality.csv")
    assert q["scene_a"] == pytest.approx(0.912)
    export_labels(out / "labels", tmp_path / "o.gpkg", progress=False)
    gdf = gpd.read_file(tmp_path / "o.gpkg", layer="labels")
    assert np.allclose(gdf["quality"], 0.912)


def test_scene_outputs_get_polygon_quality_from_their_tiles_layer(tmp_path: Path):
    from helpers_data import make_scene

    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene import predict_scene

    scene = make_scene(tmp_path / "scene.tif")
    out = tmp_path / "pred" / "scene.tif"
    predict_scene(scene, out, SmoothingPredictor(score=True), tile=128, overlap=32,
                  quality_gpkg=out.with_name("scene_tiles.gpkg"), progress=False)  # fmt: skip
    res = export_labels(out, tmp_path / "o.gpkg", progress=False)
    gdf = gpd.read_file(tmp_path / "o.gpkg", layer="labels")
    assert len(gdf) >= 1 and gdf["quality"].between(0, 1).all()
    assert (gdf["source"] == "scene.tif").all()
    assert any("predicted IoU of the scene windows" in n for n in res.notes)
