"""A partly reviewed QGIS batch: the images the reviewer did not get to are told apart.

The weakest labels go out as one GeoPackage; the analyst edits some images (moves a polygon,
deletes the polygons of a look-alike), accepts one as it is (status = 'accepted') and does not
get to the last. `elnet import --from vector --reviewed-only` must give masks for the first
three only; without it all four come back, with a note naming the unchanged one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from helpers_logs import run_main_err as _cli
from review_helpers import make_run

from sam2elnet.export.api import export_labels


def _edit(gp: Path) -> None:
    """The reviewer's edits: a moved 1 px east (10 m), b's polygons deleted, c accepted."""
    import geopandas as gpd
    from shapely import affinity

    g = gpd.read_file(gp, layer="labels")
    a = g["source"] == "a.tif"
    g.loc[a, "geometry"] = g.loc[a, "geometry"].apply(lambda p: affinity.translate(p, 10.0, 0))
    g.loc[g["source"] == "c.tif", "status"] = "Accepted"
    g = g[g["source"] != "b.tif"]
    g.to_file(gp, layer="labels", driver="GPKG")


def _fg(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1) == 255


def test_partial_qgis_review_leaves_out_the_unedited_images(tmp_path: Path, capsys):
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4})
    gp = tmp_path / "weak.gpkg"
    export_labels(run / "rejected", gp, progress=False)
    _edit(gp)
    images = tmp_path / "images"

    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", images,
                   "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "m").glob("*.tif")) == ["a.tif", "b.tif", "c.tif"]
    assert "1 image comes back as exported" in err and "d.tif" in err, err
    lab = _fg(run / "rejected" / "a.tif")
    moved = np.zeros_like(lab)
    moved[:, 1:] = lab[:, :-1]
    assert (_fg(tmp_path / "m" / "a.tif") == moved).all()  # the correction, on its pixels
    assert not _fg(tmp_path / "m" / "b.tif").any()
    assert (_fg(tmp_path / "m" / "c.tif") == _fg(run / "rejected" / "c.tif")).all()

    # without the option every image of the record comes back; the note says which are unedited
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", images,
                   "--out", tmp_path / "m2", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert len(list((tmp_path / "m2").glob("*.tif"))) == 4
    assert "1 of 4 masks is the exported label unchanged (d.tif)" in err, err
    assert "--reviewed-only" in err


def test_reviewed_only_with_nothing_reviewed_is_one_error_line(tmp_path: Path, capsys):
    run = make_run(tmp_path, {"a": 0.1, "b": 0.2})
    gp = tmp_path / "weak.gpkg"
    export_labels(run / "rejected", gp, progress=False)
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "every image comes back as exported" in err
    assert not (tmp_path / "m").exists()
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--reviewed-only", "--all-images")  # fmt: skip
    assert rc == 2 and "contradict" in err, err


def test_pixel_coordinate_layer_unchanged_is_recognised(tmp_path: Path, capsys):
    """PNG labels exported at y = -row (QGIS's frame for a plain image) read back unchanged."""
    from helpers_data import write_png

    rng = np.random.default_rng(0)
    for name in ("p", "q"):
        write_png(tmp_path / "img" / f"{name}.png", rng.integers(0, 255, (30, 34, 3)).astype("u1"))
        m = np.zeros((30, 34), np.uint8)
        m[5:17, 4:20] = 255
        m[8:10, 8:10] = 0  # a hole
        write_png(tmp_path / "lab" / f"{name}.png", m)
    gp = tmp_path / "l.gpkg"
    export_labels(tmp_path / "lab", gp, pixel_coords="qgis", progress=False)
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "img",
                   "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "2 of 2 masks are the exported labels unchanged (p.png, q.png)" in err, err


def test_a_polygon_drawn_inside_the_label_counts_as_an_edit(tmp_path: Path, capsys):
    """A polygon drawn where the label already is adds no pixel, but the reviewer was there."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    run = make_run(tmp_path, {"a": 0.1, "b": 0.2})
    gp = tmp_path / "weak.gpkg"
    export_labels(run / "rejected", gp, progress=False)
    g = gpd.read_file(gp, layer="labels")
    first = g[g["source"] == "a.tif"].geometry.iloc[0]
    inner = box(*first.centroid.buffer(2.0).bounds).intersection(first)
    new = gpd.GeoDataFrame({"source": ["a.tif"]}, geometry=[inner], crs=g.crs)
    gpd.GeoDataFrame(pd.concat([g, new], ignore_index=True), crs=g.crs).to_file(
        gp, layer="labels", driver="GPKG"
    )
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--reviewed-only", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "m").glob("*.tif")] == ["a.tif"]
    assert (_fg(tmp_path / "m" / "a.tif") == _fg(run / "rejected" / "a.tif")).all()


def test_a_polygon_drawn_for_an_image_outside_the_review_set_is_named_as_such(
    tmp_path: Path, capsys
):
    """A budget export (a, b, c sent; d, e not), and the reviewer draws a polygon with
    source = e.tif, an image that is under --images but was not sent. The note said `names no
    image in IMAGES`, which is wrong (e.tif is there) and hid why the polygon was left out; now
    it says the image is not in the review set and how to import it."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    run = make_run(tmp_path, {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.9, "e": 0.8})
    gp = tmp_path / "weak.gpkg"
    export_labels(run, gp, review_count=3, progress=False)
    g = gpd.read_file(gp, layer="labels")
    assert set(g["source"]) == {"a.tif", "b.tif", "c.tif"}
    x0, y0, x1, y1 = g.total_bounds
    drawn = gpd.GeoDataFrame({"source": ["e.tif", "zz.tif"]},
                             geometry=[box(x0, y0, x1, y1)] * 2, crs=g.crs)  # fmt: skip
    pd.concat([g, drawn], ignore_index=True).to_file(gp, layer="labels", driver="GPKG")
    rc, err = _cli(capsys, "import", gp, "--from", "qgis", "--images", tmp_path / "images",
                   "--out", tmp_path / "m", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "m").glob("*.tif")) == ["a.tif", "b.tif", "c.tif"]
    assert (
        f"1 feature names an image of {tmp_path / 'images'} that is not in the review set "
        "(weak_review.json) (their source / label: e): skipped; --all-images imports it" in err
    ), err
    assert "1 feature names no image in" in err and "zz): skipped" in err, err  # not there
    assert "3 of 3 masks are the exported labels unchanged" in err, err  # e's box on none
