"""One vector label file for many images, read once (data.vector_shared): which files are read,
what a SharedVector stands for, and that placing its frame gives the pixels of reading the file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_data import count_vector_reads, write_png
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point, box

import sam2elnet.data.vector_shared as shared_mod
from sam2elnet.data.vector import rasterize_vector
from sam2elnet.data.vector_kinds import NO_WIDTH_KINDS, layer_no_width_notes
from sam2elnet.data.vector_shared import SharedVector, frame_of, share_vectors
from sam2elnet.errors import DataError

T = from_origin(500000, 4000000, 10, 10)  # 10 m pixels, EPSG:32633


def _square(path: Path) -> Path:
    """A GeoPackage of one 10 x 10 px square (rows / cols 5..14 of a grid at ``T``)."""
    gpd.GeoDataFrame(
        {"id": [1]}, geometry=[box(500050, 3999850, 500150, 3999950)], crs="EPSG:32633"
    ).to_file(path)
    return path


def test_share_vectors_reads_each_file_named_twice_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of a.gpkg (3 images), b.gpkg (1), a raster mask (2) and an empty .gpkg (2): only a.gpkg
    is shared, read once; the unreadable one is left to its images (their own error)."""
    a, b = _square(tmp_path / "a.gpkg"), _square(tmp_path / "b.gpkg")
    mask, bad = tmp_path / "m.png", tmp_path / "bad.gpkg"
    mask.write_bytes(b"not read")
    bad.write_bytes(b"")
    with monkeypatch.context() as m:
        opened = count_vector_reads(m)
        shared = share_vectors([a, str(a), a, b, mask, mask, bad, bad])
    assert opened == ["a.gpkg"]
    assert list(shared) == [a]
    assert shared[a].path == a and len(shared[a].frame) == 1
    assert share_vectors([]) == {}


def test_a_shared_vector_stands_for_its_path(tmp_path: Path) -> None:
    a = _square(tmp_path / "a.gpkg")
    sv = share_vectors([a, a])[a]
    assert os.fspath(sv) == str(sv) == str(a) and Path(sv) == a
    assert sv == SharedVector(a, None) and hash(sv) == hash(SharedVector(a, None))
    assert frame_of(sv) is sv.frame and frame_of(a) is None and frame_of(None) is None
    back = pickle.loads(pickle.dumps(sv))  # what a Ray worker gets with its chunk
    assert back.path == a and back.frame.crs == sv.frame.crs
    assert back.frame.geometry.geom_equals(sv.frame.geometry).all()


def test_placing_the_shared_frame_gives_the_pixels_of_reading_the_file(tmp_path: Path) -> None:
    a = _square(tmp_path / "a.gpkg")
    img = tmp_path / "img.tif"
    with rasterio.open(img, "w", driver="GTiff", height=20, width=20, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=T) as ds:  # fmt: skip
        ds.write(np.zeros((1, 20, 20), np.uint8))
    sv = share_vectors([a, a])[a]
    got = rasterize_vector(sv, img, frame=frame_of(sv))
    expected = np.zeros((20, 20), bool)
    expected[5:15, 5:15] = True
    assert np.array_equal(got, expected)
    assert np.array_equal(got, rasterize_vector(a, img))


def _pixel_layer(path: Path, names: list[str | None] | None) -> Path:
    """A GeoPackage without CRS of one 4 x 4 px square per entry of ``names`` (pixel
    coordinates, y = -row); a ``source`` column of ``names`` unless None."""
    n = 1 if names is None else len(names)
    cols = {"id": list(range(n))} if names is None else {"source": names}
    gpd.GeoDataFrame(cols, geometry=[box(2, -6, 6, -2)] * n).to_file(path)
    return path


def test_a_shared_layer_names_its_images_once_and_refuses_without_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layer for several images without georeference: which image each feature names is
    worked out once per SharedVector (not once per image), places only the image's own
    features, and a layer without source / label is refused on each image (DataError naming
    the image and why)."""
    imgs = [write_png(tmp_path / f"{s}.png", np.zeros((16, 16, 3), np.uint8)) for s in "ab"]
    named = _pixel_layer(tmp_path / "n.gpkg", ["a.png", None])
    sv = share_vectors([named, named])[named]
    calls: list[int] = []
    orig = shared_mod.feature_stems
    monkeypatch.setattr(shared_mod, "feature_stems", lambda g: calls.append(1) or orig(g))
    a = rasterize_vector(sv, imgs[0], frame=sv.frame, shared=True)
    b = rasterize_vector(sv, imgs[1], frame=sv.frame, shared=True)
    assert calls == [1] and sv.names == ([("a", ""), ("", "")], True)
    assert int(a.sum()) == 16 and a[2:6, 2:6].all()  # its own square, 4 x 4 px
    assert not b.any()  # names no feature of b; unnamed features have no image
    bare = _pixel_layer(tmp_path / "bare.gpkg", None)
    sv = share_vectors([bare, bare])[bare]
    with pytest.raises(DataError) as err:
        rasterize_vector(sv, imgs[0], frame=sv.frame, shared=True)
    assert err.value.path == imgs[0]
    assert "no source / label attribute naming their image" in str(err.value)
    assert f"{bare} is one label file for several images" in str(err.value)


def test_the_unplaced_note_names_features_of_images_not_in_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SharedVector.unplaced_note (enhance --labels FILE, evaluate with one truth file): the
    features naming an image not among the served ones, counted, in one note naming where the
    images are; None when every named image is served. A served copy (serving) keeps the names
    already worked out for the file."""
    layer = _pixel_layer(tmp_path / "n.gpkg", ["a.png", "d.png", "e.tif", "e.tif", None])
    sv = share_vectors([layer, layer])[layer]
    assert sv.names[0][:3] == [("a", ""), ("d", ""), ("e", "")]
    calls: list[int] = []
    orig = shared_mod.feature_stems
    monkeypatch.setattr(shared_mod, "feature_stems", lambda g: calls.append(1) or orig(g))
    served = sv.serving([tmp_path / "a.png", tmp_path / "b.png"])
    assert served.unplaced_note("imgs") == (
        "3 features name no image in imgs (their source / label: d, e): skipped"
    )
    assert calls == []  # the names were not worked out again for the served copy
    assert sv.serving(["a.png", "d.png", "e.tif"]).unplaced_note("imgs") is None
    one = sv.serving(["a.png", "e.png"]).unplaced_note(Path("x") / "imgs")
    assert (
        one
        == f"1 feature names no image in {Path('x') / 'imgs'} (their source / label: d): skipped"
    )


def test_the_refusal_on_one_image_and_on_the_folder_is_one_message(tmp_path: Path) -> None:
    """A layer without source / label for PNGs: the reader's error on one image (DataError
    naming it, the image skipped) and the up-front one (UserError naming the file) are the
    one text of :func:`~sam2elnet.data.vector_names.unplaceable_message`: the same reason and
    the same fix, only the subject differs."""
    from sam2elnet.data.vector_shared import check_placeable
    from sam2elnet.errors import UserError

    imgs = [write_png(tmp_path / f"{s}.png", np.zeros((16, 16, 3), np.uint8)) for s in "ab"]
    bare = _pixel_layer(tmp_path / "bare.gpkg", None)
    sv = share_vectors([bare, bare])[bare]
    with pytest.raises(DataError) as one:
        rasterize_vector(sv, imgs[0], frame=sv.frame, shared=True)
    with pytest.raises(UserError) as whole:
        check_placeable(sv, imgs)
    assert one.value.path == imgs[0] and whole.value.path == bare
    head_one = f"has no georeference (CRS + transform, or GCPs), and {bare} is one label file "
    head_all = "none of the 2 images has a georeference (CRS + transform, or GCPs)"
    msg_one, msg_all = str(one.value).split(": ", 1)[1], str(whole.value).split(": ", 1)[1]
    assert msg_one.startswith(head_one + "for several images: ")
    assert msg_all.startswith(head_all + ": ")
    assert msg_one.split(": ", 1)[1] == msg_all.split(": ", 1)[1]  # reason and fix: one text


def test_layer_no_width_notes_count_the_whole_layer(tmp_path):
    """The no-width notes of a layer placed on many images count its points and lines once
    (import --from vector, one coarse-label file for many images) and name a width attribute."""
    geoms = [
        Point(1, 1),
        LineString([(0, 0), (5, 5)]),
        LineString([(0, 5), (5, 0)]),
        box(0, 0, 1, 1),
    ]
    frame = gpd.GeoDataFrame({"road_width": [1, 2, 3, 4]}, geometry=geoms)
    p = tmp_path / "roads.gpkg"
    notes = layer_no_width_notes(p, frame)
    assert [kind for _, kind in notes] == list(NO_WIDTH_KINDS)
    assert notes[0][0].startswith(f"{p}: 1 point feature skipped (give a line width")
    assert notes[1][0].startswith(f"{p}: 2 line features burnt 1 px wide; give a line width")
    assert notes[1][0].endswith(
        "the layer's attribute 'road_width' is not read (one width for all lines)"
    )
    assert layer_no_width_notes(p, frame.iloc[[3]]) == []  # polygons only: nothing to say
