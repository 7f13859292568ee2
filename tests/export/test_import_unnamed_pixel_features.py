"""Features that name no image, in a layer without CRS (pixel coordinates), at ``elnet import``.

A new-user trial drew a missing road in a layer made fresh in QGIS (``missing_roads``: no
``source`` / ``label`` field, no CRS) and imported it with ``--layer missing_roads``: the line
was burnt into the mask of every one of the 4 images, without a word (a layer with a ``source``
field left empty instead stopped with "no image gave a mask"). Pixel coordinates fit every image:
such features are now placed only when the import has one image; else they are skipped with one
note saying how many and what to do, and when nothing at all can be placed the import is one
``error:`` line (exit 2), nothing written. The same rule for lines and polygons, with and without
the field. The notes on images without a feature no longer point at a review record the import
set aside as another layer's.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import write_png
from helpers_logs import run_main
from PIL import Image
from shapely.geometry import LineString, box

from sam2elnet.export.api import export_labels

H, W = 24, 40
NAMES = ("a", "b", "c")
ROAD = LineString([(2, -10.5), (38, -10.5)])  # along row 10, QGIS pixel coordinates (y = -row)
WIDTH = ("--line-width", "3", "--line-width-px")


def _images(root: Path, names: tuple[str, ...] = NAMES) -> Path:
    for n in names:
        write_png(root / "images" / f"{n}.png", np.full((H, W), 90, np.uint8))
    return root / "images"


def _rows(path: Path) -> list[int]:
    return np.flatnonzero((np.asarray(Image.open(path)) > 0).any(axis=1)).tolist()


def _layer(path: Path, geoms: list, **columns: list) -> Path:
    gpd.GeoDataFrame(columns, geometry=geoms, crs=None).to_file(path, layer="missing_roads")
    return path


def _import(capsys, gp: Path, images: Path, out: Path, *extra: object) -> tuple[int, str]:
    """(exit code, stderr then stdout, each run of white space one blank)."""
    rc, stdout, err = run_main(capsys, "import", gp, "--from", "vector", "--images", images,
                               "--out", out, "--layer", "missing_roads", "--no-progress",
                               *extra)  # fmt: skip
    return rc, " ".join(f"{err}\n{stdout}".split())


@pytest.mark.parametrize(
    ("geom", "columns", "fix"),
    [
        (ROAD, {}, "add a 'source' field holding the image's file name"),  # fresh QGIS layer
        (ROAD, {"source": [None]}, "fill in its 'source' (the image's file name)"),
        (box(2, -12, 20, -4), {}, "add a 'source' field holding the image's file name"),
    ],
    ids=["line-no-field", "line-empty-source", "polygon-no-field"],
)
def test_an_unnamed_pixel_layer_on_several_images_is_one_error_and_nothing_written(
    tmp_path: Path, capsys, geom, columns: dict, fix: str
) -> None:
    images = _images(tmp_path)
    gp = _layer(tmp_path / "roads.gpkg", [geom], **columns)
    out = tmp_path / "mr" / "masks"
    rc, err = _import(capsys, gp, images, out, *WIDTH)
    assert rc == 2, err
    assert err.startswith(f"error: {gp}: no feature can be placed: the layer's only feature has "
                          "no source / label attribute naming an image and the layer has no CRS, "
                          "so its image is unknown (pixel coordinates of the 3 images share one "
                          f"frame); {fix}"), err  # fmt: skip
    assert "or give the layer a CRS with georeferenced images" in err, err
    assert err.count("error:") == 1 and "note:" not in err and "written" not in err, err
    assert not out.exists()  # was: 3 masks each holding the same line


def test_unnamed_pixel_features_beside_named_ones_are_skipped_with_a_note(
    tmp_path: Path, capsys
) -> None:
    images = _images(tmp_path)
    other = LineString([(2, -3.5), (38, -3.5)])  # row 3
    gp = _layer(tmp_path / "roads.gpkg", [ROAD, other, other], source=["a.png", None, ""])
    out = tmp_path / "m"
    rc, err = _import(capsys, gp, images, out, *WIDTH)
    assert rc == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png"], err
    assert _rows(out / "a.png") == [9, 10, 11]  # its own road only, not the unnamed one
    assert (
        "note: 2 features have no source / label attribute naming an image and the layer has no "
        "CRS, so their image is unknown (pixel coordinates of the 3 images share one frame): "
        "skipped; fill in their 'source' (the image's file name), or give the layer a CRS with "
        "georeferenced images"
    ) in err, err


@pytest.mark.parametrize("columns", [{}, {"source": [None]}], ids=["no-field", "empty-source"])
def test_an_unnamed_pixel_layer_with_one_image_is_placed_on_it(
    tmp_path: Path, capsys, columns: dict
) -> None:
    images = _images(tmp_path, ("a",))
    gp = _layer(tmp_path / "roads.gpkg", [ROAD], **columns)
    out = tmp_path / "m"
    rc, err = _import(capsys, gp, images, out, *WIDTH)
    assert rc == 0, err
    assert _rows(out / "a.png") == [9, 10, 11], err
    assert "no source / label attribute" not in err, err
    assert f"{out}: 1 mask written" in err, err  # was "1 masks written"
    # one image given as a file of a folder of several: the same
    _images(tmp_path / "more")
    rc, err = _import(capsys, gp, tmp_path / "more" / "images" / "b.png", tmp_path / "m2", *WIDTH)
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "m2").glob("*.png")) == ["b.png"], err


def test_a_layer_beside_the_export_record_says_once_why_images_get_no_mask(
    tmp_path: Path, capsys
) -> None:
    """The export's record (roads_review.json) is set aside for another layer, and a note says
    so ("masks only for the images its features name"); the note on the images without a
    feature then said "no review set (roads_review.json) lists them", which contradicted it."""
    images = _images(tmp_path)
    labels = tmp_path / "labels"
    labels.mkdir()
    for n in NAMES:
        lab = np.zeros((H, W), np.uint8)
        lab[2:6, 4:12] = 255
        Image.fromarray(lab).save(labels / f"{n}.png")
    gp = tmp_path / "roads.gpkg"
    export_labels(labels, gp, progress=False, pixel_coords="qgis")
    assert (tmp_path / "roads_review.json").is_file()
    _layer(gp, [ROAD], source=["a.png"])
    rc, err = _import(capsys, gp, images, tmp_path / "m", *WIDTH)
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "m").glob("*.png")) == ["a.png"], err
    assert "roads_review.json is the record of the layer 'labels', not of 'missing_roads'" in err
    assert (
        f"note: 2 images of {images} have no feature in the layer 'missing_roads': no mask for "
        "them (--all-images makes an all-background mask for each)"
    ) in err, err
    assert "no review set" not in err, err


def _export(root: Path) -> tuple[Path, Path]:
    """PNG images a, b, c, their labels (rows 2-5) exported to roads.gpkg (no CRS) + record."""
    images = _images(root)
    labels = root / "labels"
    labels.mkdir()
    for n in NAMES:
        lab = np.zeros((H, W), np.uint8)
        lab[2:6, 4:12] = 255
        Image.fromarray(lab).save(labels / f"{n}.png")
    gp = root / "roads.gpkg"
    export_labels(labels, gp, progress=False, pixel_coords="qgis")
    return gp, images


def test_layer_repeated_burns_the_polygons_and_the_drawn_lines_into_the_same_masks(
    tmp_path: Path, capsys
) -> None:
    """docs/roads.md said to import missing roads drawn as lines "into another --out": masks
    of the added roads alone, with every other road as background. ``--layer labels --layer
    missing_roads`` now burns both into one mask set: the polygons as they are, the lines
    buffered to --line-width; the export's record (of 'labels') still tells the images."""
    gp, images = _export(tmp_path)
    _layer(gp, [ROAD], source=["a.png"])
    base = ("--layer", "labels", "--layer", "missing_roads", *WIDTH)
    rc, stdout, err = run_main(capsys, "import", gp, "--from", "vector", "--images", images,
                               "--out", tmp_path / "m", "--no-progress", *base)  # fmt: skip
    assert rc == 0, err
    m = tmp_path / "m"
    assert sorted(p.name for p in m.glob("*.png")) == ["a.png", "b.png", "c.png"], err
    assert _rows(m / "a.png") == [2, 3, 4, 5, 9, 10, 11]  # its polygon and the added road
    assert _rows(m / "b.png") == _rows(m / "c.png") == [2, 3, 4, 5]
    assert "is the record of the layer" not in err and "note: 2 of 3 masks" in err, err
    # the image with an added road is an edit: --reviewed-only keeps it alone
    rc, _, err = run_main(capsys, "import", gp, "--from", "vector", "--images", images,
                          "--out", tmp_path / "r", "--no-progress", "--reviewed-only",
                          *base)  # fmt: skip
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == ["a.png"], err
    # the layer without a source field: its line skipped, and the note names the layer
    _layer(gp, [ROAD])
    rc, _, err = run_main(capsys, "import", gp, "--from", "vector", "--images", images,
                          "--out", tmp_path / "n", "--no-progress", *base)  # fmt: skip
    said = " ".join(err.split())
    assert rc == 0, err
    assert "add a 'source' field to the layer 'missing_roads' holding the image's file name" in (
        said
    ), said
    assert _rows(tmp_path / "n" / "a.png") == [2, 3, 4, 5]


def test_layers_read_together_are_refused_when_one_lacks_a_crs_or_is_named_twice(
    tmp_path: Path, capsys
) -> None:
    gp, images = _export(tmp_path)
    gpd.GeoDataFrame({"source": ["a.png"]}, geometry=[ROAD], crs="EPSG:32633").to_file(
        gp, layer="missing_roads"
    )
    args = ("import", gp, "--from", "vector", "--images", images, "--no-progress")
    for layers, want in (
        (
            ("labels", "missing_roads"),
            "the layer 'missing_roads' has a CRS (EPSG:32633) and 'labels' none",
        ),
        (("labels", "labels"), "labels given twice; name each layer once"),
        (("labels", "nope"), "no layer 'nope'; its layers: labels"),
    ):
        out = tmp_path / f"m{len(want)}"
        rc, err = _import_err(
            capsys, *args, "--out", out, *[a for n in layers for a in ("--layer", n)]
        )
        assert rc == 2 and err.count("error:") == 1 and want in err, err
        assert not out.exists()


def _import_err(capsys, *args: object) -> tuple[int, str]:
    rc, _, err = run_main(capsys, *args)
    return rc, " ".join(err.split())


def test_unnamed_features_over_mixed_images_name_the_images_that_got_none(
    tmp_path: Path, capsys
) -> None:
    """Was: a layer without CRS whose features name no image, over an images folder mixing
    GeoTIFFs (the layer read in their CRS: the features placed by map position) and a PNG
    without georeference (the rule places none on it), gave the PNG nothing without a word.
    Now one note counts and names it and says what to do."""
    import rasterio
    from helpers_data import write_tif

    images = tmp_path / "images"
    for n in ("a", "b"):  # EPSG:32633, corner (500000, 4000000), 10 m pixels
        write_tif(images / f"{n}.tif", np.full((1, H, W), 90, np.uint8))
    write_png(images / "c.png", np.full((H, W), 90, np.uint8))
    slick = box(500040, 3999880, 500200, 3999960)  # rows 4-11, columns 4-19 of a and b
    gp = _layer(tmp_path / "roads.gpkg", [slick, slick])
    out = tmp_path / "m"
    rc, err = _import(capsys, gp, images, out)
    assert rc == 0, err
    assert sorted(p.name for p in out.glob("*.*") if p.suffix != ".json") == ["a.tif", "b.tif"], err
    with rasterio.open(out / "a.tif") as ds:  # the slick, placed by map position
        assert np.flatnonzero(ds.read(1).any(axis=1)).tolist() == list(range(4, 12))
    assert (
        "note: 2 features have no source / label attribute naming an image and the layer has no "
        "CRS: placed by map position on the georeferenced images only; 1 image without a CRS + "
        "transform (c.png) received none of them; add a 'source' field holding the image's file "
        "name, as the exported 'labels' layer has, or georeference that image"
    ) in err, err


def test_no_image_header_is_read_when_every_feature_names_its_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note on a CRS-less layer's unnamed features read every image's header (to tell the
    georeferenced images from the others) even when no feature is unnamed; now it reads none
    then, and still reads them when one is."""
    import sam2elnet.data.grids as grids
    from sam2elnet.export.import_layers import unnamed_unplaced

    images = _images(tmp_path)
    files = sorted(images.glob("*.png"))
    reads: list[Path] = []
    real = grids.raster_header

    def counted(path, *args, **kwargs):
        reads.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(grids, "raster_header", counted)
    named = gpd.GeoDataFrame({"source": ["a.png", "b.png"]}, geometry=[ROAD, ROAD], crs=None)
    run = {f.stem for f in files}
    assert unnamed_unplaced(named, files, run, tmp_path / "roads.gpkg") is None
    assert reads == []
    one_unnamed = gpd.GeoDataFrame({"source": ["a.png", ""]}, geometry=[ROAD, ROAD], crs=None)
    note = unnamed_unplaced(one_unnamed, files, run, tmp_path / "roads.gpkg")
    assert note is not None and note.startswith("1 feature has no source / label attribute")
    assert reads == files
