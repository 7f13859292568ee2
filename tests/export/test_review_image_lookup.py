"""Every import finds an export's images under ``--images`` by one rule
(:func:`sam2elnet.export.image_lookup.find_image`): the name with its folders, the file name,
the stem with an image suffix; one image file stands only for the image of its name.

The Label Studio import looked for ``<stem>.<suffix>`` at the top of ``--images`` only, so a
task served from local storage with folders (``d=palsar/x.tif``) found no image there and its
mask lost the GeoTIFF's georeference; and one image file given as ``--images`` was used for
every task, whatever its name (the COCO import had both faults fixed the same day).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from helpers_data import write_png, write_tif
from helpers_logs import one_error_line, run_main
from hypothesis import given, settings
from hypothesis import strategies as st

from sam2elnet.export.image_lookup import find_image
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.export.labelstudio_import import import_label_studio


def _task(tid: int, image: str, mask: np.ndarray) -> dict:
    return {
        "id": tid,
        "data": {"image": image},
        "annotations": [{"id": 10 + tid, "result": mask_result(mask, "oil spill")}],
    }


def _block(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[1:4, 2:6] = True
    return m


def test_label_studio_finds_local_files_images_in_their_folders(tmp_path: Path) -> None:
    """``d=palsar/x.tif`` is found as ``--images/palsar/x.tif``: the mask is a GeoTIFF on the
    image's grid (it was a PNG without georeference)."""
    imgs = tmp_path / "imgs"
    write_tif(imgs / "palsar" / "x.tif", np.full((1, 8, 10), 50, np.uint8))
    write_tif(imgs / "sentinel" / "y.tif", np.full((1, 8, 10), 60, np.uint8))
    tasks = [
        _task(1, "/data/local-files/?d=palsar/x.tif", _block(8, 10)),
        _task(2, "/data/local-files/?d=sentinel/y.tif", _block(8, 10)),
    ]
    (tmp_path / "e.json").write_text(json.dumps(tasks))
    res = import_label_studio(tmp_path / "e.json", tmp_path / "m", images=imgs, progress=False)
    assert sorted(p.name for p in res.written) == ["x.tif", "y.tif"]
    for name, src in (("x.tif", "palsar/x.tif"), ("y.tif", "sentinel/y.tif")):
        with rasterio.open(tmp_path / "m" / name) as m, rasterio.open(imgs / src) as i:
            assert m.crs == i.crs and m.transform == i.transform
            assert np.array_equal(m.read(1) == 255, _block(8, 10))


def test_label_studio_single_image_file_stands_only_for_its_own_task(tmp_path: Path) -> None:
    """``--images a.png`` with tasks a and b: b is not matched with a.png (it was, and got no
    mask of its own); it takes its annotation's own size, 12 x 14."""
    a = write_png(tmp_path / "a.png", np.full((8, 10), 80, np.uint8))
    tasks = [
        _task(1, "/data/upload/1/0123abcd-a.png", _block(8, 10)),
        _task(2, "/data/upload/1/89abcdef-b.png", _block(12, 14)),
    ]
    (tmp_path / "e.json").write_text(json.dumps(tasks))
    import_label_studio(tmp_path / "e.json", tmp_path / "m", images=a, progress=False)
    with rasterio.open(tmp_path / "m" / "a.png") as d:
        assert (d.height, d.width) == (8, 10)
    with rasterio.open(tmp_path / "m" / "b.png") as d:
        assert (d.height, d.width) == (12, 14)
        assert np.array_equal(d.read(1) == 255, _block(12, 14))


def test_find_image_rule(tmp_path: Path) -> None:
    write_png(tmp_path / "palsar" / "x.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "y.PNG", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "z.png", np.zeros((4, 4), np.uint8))
    assert find_image(tmp_path, "palsar/x.png") == tmp_path / "palsar" / "x.png"
    assert find_image(tmp_path, "palsar\\x.png") == tmp_path / "palsar" / "x.png"
    assert find_image(tmp_path, "other/z.png") == tmp_path / "z.png"  # by file name
    assert find_image(tmp_path, "y.jpg") == tmp_path / "y.PNG"  # by stem, any case
    assert find_image(tmp_path, "nope.png") is None
    one = tmp_path / "z.png"
    assert find_image(one, "z.tif", 5) == one and find_image(one, "q.png", 1) == one
    assert find_image(one, "q.png", 2) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "a", "b", "/", "x.png"]), min_size=1, max_size=6))
def test_find_image_never_leaves_the_folder(tmp_path_factory, parts: list[str]) -> None:
    """Whatever the export's name (``..``, absolute), a hit lies under ``--images``."""
    root = tmp_path_factory.mktemp("r")
    inside = root / "in"
    write_png(inside / "x.png", np.zeros((2, 2), np.uint8))
    write_png(root / "x.png", np.zeros((2, 2), np.uint8))  # outside --images
    hit = find_image(inside, "/".join(parts))
    assert hit is None or inside in hit.parents


def _sizeless(tid: int, image: str, mask: np.ndarray, **data: str) -> dict:
    """A task whose regions give no image size (``original_width`` / ``_height`` dropped)."""
    task = _task(tid, image, mask)
    for r in task["annotations"][0]["result"]:
        r.pop("original_width", None)
        r.pop("original_height", None)
    task["data"].update(data)
    return task


def test_label_studio_none_of_the_images_found_says_so(tmp_path: Path, capsys) -> None:
    """No task's image under --images (nor at its data.source) and regions without a size: one
    error line saying none of the images was found, where it looked and a sample of the names
    looked for. It said 'no task has a usable annotation; review tasks in Label Studio', which
    hid the wrong --images folder."""
    imgs = tmp_path / "imgs"
    write_png(imgs / "other.png", np.zeros((8, 10), np.uint8))
    gone = tmp_path / "gone" / "y.tif"
    tasks = [
        _sizeless(1, "/data/local-files/?d=palsar/x.tif", _block(8, 10)),
        _sizeless(2, "/data/local-files/?d=views/y.png", _block(8, 10), source=str(gone)),
        _sizeless(3, "/data/upload/1/0123abcd-b.png", _block(8, 10)),
        {"id": 4, "data": {"image": "/data/upload/1/89abcdef-c.png"}, "annotations": []},
    ]
    export = tmp_path / "e.json"
    export.write_text(json.dumps(tasks))
    out = tmp_path / "m"
    rc, _, err = run_main(
        capsys, "import", export, "--from", "label-studio", "--images", imgs, "--out", out,
        "--no-progress",
    )  # fmt: skip
    assert one_error_line(rc, err) == (
        f"error: {export}: none of the 4 images of the Label Studio export was found: looked "
        f"in --images {imgs} and the tasks' data.source paths for palsar/x.tif, y.tif, b.png "
        "(+1); give --images the folder the annotated images came from (the annotations give "
        "no image size, so no mask can be made without them)"
    )
    assert not out.exists()
    rc, _, err = run_main(
        capsys, "import", export, "--from", "label-studio", "--out", out, "--no-progress"
    )
    assert "none of the 4 images of the Label Studio export was found: looked in the tasks' " in (
        one_error_line(rc, err)
    )
    assert not out.exists()


def test_label_studio_images_found_but_no_usable_annotation_keeps_its_message(
    tmp_path: Path, capsys
) -> None:
    """The image is found, but its one annotation was drawn on an image of another size: no
    usable annotation, and the error says that (not that images were missing)."""
    imgs = tmp_path / "imgs"
    write_tif(imgs / "palsar" / "x.tif", np.full((1, 8, 10), 50, np.uint8))
    tasks = [
        _task(1, "/data/local-files/?d=palsar/x.tif", _block(12, 14)),  # 14x12 regions
        _sizeless(2, "/data/upload/1/0123abcd-b.png", _block(8, 10)),  # b: not found
    ]
    export = tmp_path / "e.json"
    export.write_text(json.dumps(tasks))
    out = tmp_path / "m"
    rc, _, err = run_main(
        capsys, "import", export, "--from", "label-studio", "--images", imgs, "--out", out,
        "--no-progress",
    )  # fmt: skip
    assert one_error_line(rc, err) == (
        f"error: {export}: no task has a usable annotation; review tasks in Label Studio, then "
        "export again"
    )
    assert not out.exists()
