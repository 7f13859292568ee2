"""`elnet import --from cvat` reads CVAT's own exports: "CVAT for images 1.1" (annotations.xml,
alone or in CVAT's zip) and "Segmentation mask 1.1" (labelmap.txt + SegmentationClass PNGs).

Before, "CVAT for images 1.1" (CVAT's default export) was refused with "export COCO 1.0" and a
"Segmentation mask 1.1" zip was not read at all. The files here are written as CVAT writes them
(``cvat/apps/dataset_manager/formats/cvat.py``: two-decimal coordinates, ``rle="a, b, c"`` with
``width = right - left + 1``; the labelmap header ``# label:color_rgb:parts:actions``), and the
masks are checked pixel by pixel.

Also: the QGIS (vector) import had no check for two images of one stem in ``--images``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import write_png, write_tif
from helpers_logs import one_error_line as _one_error
from helpers_logs import run_main as _cli
from PIL import Image

from sam2elnet.export.cvat_import import import_cvat, read_labelmap
from sam2elnet.export.cvat_xml import cvat_rle_decode
from sam2elnet.export.image_lookup import find_image

H, W = 32, 40


def _annotations_xml(images: str, labels: tuple[str, ...] = ("oil spill", "look-alike")) -> str:
    """annotations.xml as CVAT's "CVAT for images 1.1" export writes it (task meta, then one
    <image> per frame)."""
    label_xml = "".join(
        f"""
        <label>
          <name>{n}</name>
          <color>#fa3253</color>
          <type>any</type>
          <attributes>
          </attributes>
        </label>"""
        for n in labels
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id>
      <name>sar review</name>
      <size>2</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <bugtracker></bugtracker>
      <created>2026-12-01 10:00:00.000000+00:00</created>
      <updated>2026-12-02 15:00:00.000000+00:00</updated>
      <subset>default</subset>
      <start_frame>0</start_frame>
      <stop_frame>1</stop_frame>
      <frame_filter></frame_filter>
      <segments>
        <segment>
          <id>7</id>
          <start>0</start>
          <stop>1</stop>
          <url>http://localhost:8080/api/jobs/7</url>
        </segment>
      </segments>
      <owner>
        <username>reviewer</username>
        <email></email>
      </owner>
      <assignee></assignee>
      <labels>{label_xml}
      </labels>
    </task>
    <dumped>2026-12-02 16:00:00.000000+00:00</dumped>
  </meta>{images}
</annotations>
"""


# image a: a box, a polygon, a mask (oil spill), a polygon of look-alike, a polyline and points
IMAGE_A = f"""
  <image id="0" name="palsar/a.tif" width="{W}" height="{H}">
    <box label="oil spill" source="manual" occluded="0" xtl="2.00" ytl="3.00" xbr="10.00" ybr="7.00" z_order="0">
    </box>
    <polygon label="oil spill" source="manual" occluded="1" points="20.00,4.00;30.00,4.00;30.00,12.00;20.00,12.00" z_order="1">
    </polygon>
    <mask label="oil spill" source="manual" occluded="0" rle="1, 2, 3, 4, 2" left="5" top="20" width="4" height="3" z_order="0">
    </mask>
    <polygon label="look-alike" source="manual" occluded="0" points="34.00,25.00;38.00,25.00;38.00,30.00;34.00,30.00" z_order="0">
    </polygon>
    <polyline label="oil spill" source="manual" occluded="0" points="1.00,30.00;15.00,30.00" z_order="0">
    </polyline>
    <points label="oil spill" source="manual" occluded="0" points="12.00,28.00" z_order="0">
    </points>
  </image>
  <image id="1" name="palsar/b.tif" width="{W}" height="{H}">
  </image>"""


def _expected_a(look_alike: bool) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[3:7, 2:10] = True  # box xtl=2..xbr=10, ytl=3..ybr=7: pixel centres inside
    m[4:12, 20:30] = True  # the square polygon
    m[20:23, 5:9] |= np.array([[0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]], bool)  # rle, row-major
    if look_alike:
        m[25:30, 34:38] = True
    return m


def _images(root: Path) -> Path:
    for name in ("a", "b"):
        write_tif(root / "palsar" / f"{name}.tif", np.full((1, H, W), 40, np.uint8))
    return root


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1)


def test_cvat_for_images_zip_gives_masks_pixel_by_pixel(tmp_path: Path, capsys) -> None:
    imgs = _images(tmp_path / "imgs")
    z = tmp_path / "task_7_annotations_cvat for images 1.1.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", _annotations_xml(IMAGE_A))
    rc, out, err = _cli(
        capsys, "import", z, "--from", "cvat", "--images", imgs, "--out", tmp_path / "m",
        "--no-progress",
    )  # fmt: skip
    assert rc == 0, err
    assert "2 masks written" in out
    assert "2 categories (look-alike, oil spill)" in err and "--category" in err, err
    assert "left out 2 shapes without an area (points: 1, polyline: 1)" in err, err
    a = _read(tmp_path / "m" / "a.tif")
    assert np.array_equal(a == 255, _expected_a(look_alike=True))
    assert set(np.unique(a)) <= {0, 255}
    assert not _read(tmp_path / "m" / "b.tif").any()  # no shape: reviewed as empty
    with rasterio.open(tmp_path / "m" / "a.tif") as m, rasterio.open(imgs / "palsar/a.tif") as i:
        assert m.crs == i.crs and m.transform == i.transform
    # --category keeps one label; the bare annotations.xml reads the same
    xml = tmp_path / "annotations.xml"
    xml.write_text(_annotations_xml(IMAGE_A), encoding="utf-8")
    res = import_cvat(xml, tmp_path / "m2", category="oil spill", progress=False)
    assert sorted(p.name for p in res.written) == ["a.png", "b.png"]  # no --images: PNGs
    assert np.array_equal(_read(tmp_path / "m2" / "a.png") == 255, _expected_a(False))
    assert not any("categories" in n for n in res.notes), res.notes


def test_rotated_box_and_ellipse(tmp_path: Path) -> None:
    shapes = """
  <image id="0" name="r.png" width="40" height="32">
    <box label="oil spill" source="manual" occluded="0" xtl="10.00" ytl="14.00" xbr="20.00" ybr="18.00" rotation="90.00" z_order="0">
    </box>
  </image>
  <image id="1" name="e.png" width="40" height="32">
    <ellipse label="oil spill" source="manual" occluded="0" cx="20.00" cy="16.00" rx="9.00" ry="4.00" rotation="90.00" z_order="0">
    </ellipse>
  </image>"""
    xml = tmp_path / "annotations.xml"
    xml.write_text(_annotations_xml(shapes), encoding="utf-8")
    import_cvat(xml, tmp_path / "m", progress=False)
    want = np.zeros((32, 40), bool)
    want[11:21, 13:17] = True  # 10 x 4 box about (15, 16) turned upright: 4 wide, 10 high
    assert np.array_equal(_read(tmp_path / "m" / "r.png") == 255, want)
    yy, xx = np.mgrid[:32, :40] + 0.5
    # rx along y after the quarter turn
    circle = ((xx - 20) / 4.0) ** 2 + ((yy - 16) / 9.0) ** 2 <= 1
    assert np.array_equal(_read(tmp_path / "m" / "e.png") == 255, circle)


def test_cvat_rle_decode_is_row_major_background_first() -> None:
    m = cvat_rle_decode("0, 3, 1, 2", 1, 1, 3, 2, 4, 5)  # starts with foreground: a 0 run
    want = np.zeros((4, 5), bool)
    want[1, 1:4] = True
    want[2, 2:4] = True
    assert np.array_equal(m, want)


def _bad_xml_cases(tmp_path: Path, imgs: Path) -> list[tuple[list[object], str]]:
    good = _annotations_xml(IMAGE_A)
    cut = tmp_path / "cut.xml"
    cut.write_text(good[: len(good) // 2], encoding="utf-8")
    nozip = tmp_path / "no_xml.zip"
    with zipfile.ZipFile(nozip, "w") as zf:
        zf.writestr("images/palsar/a.png", b"not read")
    plain = tmp_path / "annotations.xml"
    plain.write_text(good, encoding="utf-8")
    small = tmp_path / "small"
    write_tif(small / "palsar" / "a.tif", np.zeros((1, 16, 16), np.uint8))
    long_rle = tmp_path / "long.xml"
    long_rle.write_text(good.replace('rle="1, 2, 3, 4, 2"', 'rle="1, 2, 3, 4, 9"'), "utf-8")
    pts = tmp_path / "pts.xml"
    pts.write_text(good.replace("20.00,4.00;30.00", "20.00;4.00,30.00"), encoding="utf-8")
    video = tmp_path / "video.xml"
    video.write_text(
        '<?xml version="1.0"?>\n<annotations><version>1.1</version><meta/>'
        '<track id="0" label="oil spill" source="manual"><box frame="0" keyframe="1" '
        'outside="0" occluded="0" xtl="1" ytl="1" xbr="4" ybr="4" z_order="0"/></track>'
        "</annotations>",
        encoding="utf-8",
    )
    return [
        ([cut], "damaged XML"),
        ([plain, "--category", "road"], "category 'road' is not in annotations.xml"),
        ([nozip], "neither annotations.xml"),
        ([plain, "--images", small], "is 16x16 px"),
        ([long_rle], "runs cover 19 pixels, the mask box 4x3 has 12"),
        ([pts], "<polygon> points"),
        ([video], "CVAT for video"),
    ]


def test_bad_cvat_exports_are_one_error_line_and_write_nothing(tmp_path: Path, capsys) -> None:
    imgs = _images(tmp_path / "imgs")
    for args, what in _bad_xml_cases(tmp_path, imgs):
        out = tmp_path / "m"
        rc, _, err = _cli(
            capsys, "import", args[0], "--from", "cvat", "--out", out, "--no-progress", *args[1:]
        )
        line = _one_error(rc, err)
        assert what in line and str(args[0]) in line, (what, line)
        assert not out.exists(), what


# ------------------------------------------------------------------ Segmentation mask 1.1

LABELMAP = (
    "# label:color_rgb:parts:actions\n"
    "background:0,0,0::\n"
    "oil spill:250,50,83::\n"
    "look-alike:51,221,255::\n"
)
OIL, LOOK = (250, 50, 83), (51, 221, 255)


def _png_bytes(rgb: np.ndarray, palette: bool = False) -> bytes:
    im = Image.fromarray(rgb.astype(np.uint8), "RGB")
    if palette:
        im = im.quantize(colors=8, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _segmask_zip(path: Path, labelmap: str = LABELMAP, colour=OIL) -> tuple[Path, np.ndarray]:
    """A "Segmentation mask 1.1" zip: palsar/a drawn (oil spill and look-alike), c drawn
    (palette PNG), b listed in ImageSets but never drawn (no PNG, as CVAT leaves it)."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[2:9, 3:12] = colour
    rgb[20:26, 30:36] = LOOK
    c = np.zeros((H, W, 3), np.uint8)
    c[5:7, 5:25] = OIL
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("labelmap.txt", labelmap)
        zf.writestr("ImageSets/Segmentation/default.txt", "palsar/a\nb\nc\n")
        zf.writestr("SegmentationClass/palsar/a.png", _png_bytes(rgb))
        zf.writestr("SegmentationObject/palsar/a.png", _png_bytes(rgb))
        zf.writestr("SegmentationClass/c.png", _png_bytes(c, palette=True))
    return path, rgb


def test_segmentation_mask_zip_gives_the_category_colour(tmp_path: Path, capsys) -> None:
    imgs = tmp_path / "imgs"
    write_tif(imgs / "palsar" / "a.tif", np.full((1, H, W), 40, np.uint8))
    write_png(imgs / "b.png", np.full((H, W), 60, np.uint8))
    z, rgb = _segmask_zip(tmp_path / "task_7_segmentation mask 1.1.zip")
    rc, out, err = _cli(
        capsys, "import", z, "--from", "cvat", "--images", imgs, "--out", tmp_path / "m",
        "--category", "oil spill", "--no-progress",
    )  # fmt: skip
    assert rc == 0, err
    assert "3 masks written" in out, out
    a = _read(tmp_path / "m" / "a.tif")  # palsar/a.png's image is palsar/a.tif
    assert np.array_equal(a == 255, (rgb == OIL).all(-1))
    with rasterio.open(tmp_path / "m" / "a.tif") as m:
        assert m.crs is not None
    assert not _read(tmp_path / "m" / "b.png").any()  # listed, nothing drawn: empty
    want_c = np.zeros((H, W), bool)
    want_c[5:7, 5:25] = True
    assert np.array_equal(_read(tmp_path / "m" / "c.png") == 255, want_c)  # palette PNG
    # default: every label but background, with the note naming them
    res = import_cvat(z, tmp_path / "m2", images=imgs, progress=False)
    assert np.array_equal(
        _read(tmp_path / "m2" / "a.tif") == 255, (rgb == OIL).all(-1) | (rgb == LOOK).all(-1)
    )
    assert any("2 categories (look-alike, oil spill)" in n for n in res.notes), res.notes
    # without --images, b has no size: skipped with the reason, the others written
    res = import_cvat(z, tmp_path / "m3", progress=False)
    assert [s for s, _ in res.skipped] == ["b"] and "--images" in res.skipped[0][1]


def test_bad_segmentation_mask_zips(tmp_path: Path, capsys) -> None:
    imgs = tmp_path / "imgs"
    write_tif(imgs / "palsar" / "a.tif", np.full((1, 16, 16), 40, np.uint8))
    good, _ = _segmask_zip(tmp_path / "good.zip")
    stray, _ = _segmask_zip(tmp_path / "stray.zip", colour=(1, 2, 3))
    nolm = tmp_path / "nolm.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(nolm, "w") as dst:
        for n in src.namelist():
            if n != "labelmap.txt":
                dst.writestr(n, src.read(n))
    badlm, _ = _segmask_zip(tmp_path / "badlm.zip", labelmap="oil spill:250,50::\n")
    cases = [
        ([stray], "colour (1, 2, 3), which labelmap.txt does not list"),
        ([nolm], "no labelmap.txt"),
        ([badlm], "is not 'name:r,g,b:parts:actions'"),
        ([good, "--category", "road"], "category 'road' is not in labelmap.txt"),
        ([good, "--images", imgs], "is 16x16 px"),
    ]
    for args, what in cases:
        rc, _, err = _cli(
            capsys, "import", args[0], "--from", "cvat", "--out", tmp_path / "m", "--no-progress",
            *args[1:],
        )  # fmt: skip
        line = _one_error(rc, err)
        assert what in line and str(args[0]) in line, (what, line)
        assert not (tmp_path / "m").exists(), what


def test_read_labelmap() -> None:
    assert read_labelmap(LABELMAP + "a:b:1,2,3::\n") == {
        "background": (0, 0, 0),
        "oil spill": OIL,
        "look-alike": LOOK,
        "a:b": (1, 2, 3),
    }


def test_cvat_coco_still_read_and_its_size_mismatch_stops(tmp_path: Path, capsys) -> None:
    """--from cvat hands a COCO 1.0 zip to the COCO import; an image of another size under
    --images now stops it (it was skipped, the reviewed mask dropped with a note)."""
    coco = {
        "images": [{"id": 1, "file_name": "palsar/a.tif", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [], "bbox": [2, 3, 8, 4]}
        ],
        "categories": [{"id": 1, "name": "oil spill"}],
    }
    z = tmp_path / "task_7_coco 1.0.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations/instances_default.json", json.dumps(coco))
    rc, _, err = _cli(
        capsys, "import", z, "--from", "cvat", "--out", tmp_path / "m", "--no-progress"
    )
    assert rc == 0, err
    want = np.zeros((H, W), bool)
    want[3:7, 2:10] = True
    assert np.array_equal(_read(tmp_path / "m" / "a.png") == 255, want)
    small = tmp_path / "small"
    write_tif(small / "palsar" / "a.tif", np.zeros((1, 16, 16), np.uint8))
    rc, _, err = _cli(
        capsys, "import", z, "--from", "coco", "--images", small, "--out", tmp_path / "m2",
        "--no-progress",
    )  # fmt: skip
    assert "is 16x16 px" in _one_error(rc, err)
    assert not (tmp_path / "m2").exists()


def test_find_image_tries_the_stem_in_its_folder_first(tmp_path: Path) -> None:
    write_tif(tmp_path / "palsar" / "x.tif", np.zeros((1, 4, 4), np.uint8))
    write_png(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    assert find_image(tmp_path, "palsar/x.png") == tmp_path / "palsar" / "x.tif"
    assert find_image(tmp_path, "other/x.png") == tmp_path / "x.png"


# ---------------------------------------------------------------------------------- QGIS


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_vector_import_refuses_two_images_of_one_stem(tmp_path: Path, capsys) -> None:
    import geopandas as gpd
    from shapely.geometry import Polygon

    imgs = tmp_path / "imgs"
    write_png(imgs / "x.png", np.zeros((16, 16), np.uint8))
    write_tif(imgs / "x.tif", np.zeros((1, 16, 16), np.uint8))
    gdf = gpd.GeoDataFrame(
        {"source": ["x.png"]}, geometry=[Polygon([(2, -2), (6, -2), (6, -5), (2, -5)])]
    )
    gdf.to_file(tmp_path / "labels.gpkg", layer="labels")
    rc, _, err = _cli(
        capsys, "import", tmp_path / "labels.gpkg", "--from", "vector", "--images", imgs,
        "--out", tmp_path / "m", "--all-images",
    )  # fmt: skip
    line = _one_error(rc, err)
    assert "two images of --images" in line and "x.png, x.tif" in line, line
    assert not (tmp_path / "m").exists()


def test_segmask_image_skipped_for_want_of_size_is_reported_once(tmp_path: Path) -> None:
    """b (listed, never drawn: no PNG) is not under --images: it is skipped, and only that note
    names it; before, the not-found note counted it too, though no PNG was written for it."""
    imgs = tmp_path / "imgs"
    write_tif(imgs / "palsar" / "a.tif", np.full((1, H, W), 40, np.uint8))
    z, _ = _segmask_zip(tmp_path / "seg.zip")
    res = import_cvat(z, tmp_path / "m", images=imgs, category="oil spill", progress=False)
    assert sorted(p.name for p in res.written) == ["a.tif", "c.png"]
    notes = [n for n in res.notes if not n.startswith("no review record")]  # not an elnet export
    assert notes == [
        # the image c, not its mask c.png (before): its suffix is unknown
        f"1 of 3 images of the Segmentation mask export is not in {imgs} (c.*): its "
        "mask is a PNG of the size the file gives, without georeference or nodata; give "
        "--images the folder it came from to keep those",
        "skipped b: the Segmentation mask export gives no size for it and no --images holds "
        "its image; give --images",
    ], res.notes


def test_segmask_images_none_found_are_named_by_image_not_by_mask(tmp_path: Path, capsys) -> None:
    """A "Segmentation mask" export none of whose images is under --images (or in the zip's
    JPEGImages/): one error line saying plainly that none was found, where it looked and a
    sample of the images looked for, by stem (their suffix is unknown). It named the masks
    (palsar/a.png, b.png: b has no mask at all) and said they were 'not in --images'."""
    imgs = tmp_path / "imgs"
    write_png(imgs / "other.png", np.zeros((H, W), np.uint8))
    z, _ = _segmask_zip(tmp_path / "seg.zip")
    rc, _, err = _cli(
        capsys, "import", z, "--from", "cvat", "--images", imgs, "--out", tmp_path / "m",
        "--category", "oil spill", "--no-progress",
    )  # fmt: skip
    assert _one_error(rc, err) == (
        f"error: {z}: none of the 3 images of the Segmentation mask export was found: looked "
        f"in --images {imgs} for c.*, palsar/a.*, b.*; give the folder the annotated images "
        "came from, or leave --images out for PNG masks of the size the file gives"
    )
    with zipfile.ZipFile(z, "a") as zf:  # images saved with the export, none of these
        zf.writestr("JPEGImages/other.jpg", _img_bytes(H, W, "JPEG"))
    rc, _, err = _cli(
        capsys, "import", z, "--from", "cvat", "--out", tmp_path / "m",
        "--category", "oil spill", "--no-progress",
    )  # fmt: skip
    assert _one_error(rc, err) == (
        f"error: {z}: none of the 3 images of the Segmentation mask export was found: looked "
        "in the zip's JPEGImages/ for c.*, palsar/a.*, b.*; give --images the folder the "
        "CVAT task's images came from"
    )
    assert not (tmp_path / "m").exists()


def _img_bytes(h: int, w: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, np.uint8), "RGB").save(buf, format=fmt)
    return buf.getvalue()


# a task of plain images as CVAT keeps them: a.png 36x44, sub/b.jpg 40x32, c.png 36x44 (no shape)
SAVED = [("a.png", 36, 44, "PNG"), ("sub/b.jpg", 40, 32, "JPEG"), ("c.png", 36, 44, "PNG")]
SAVED_XML = """
  <image id="0" name="a.png" width="44" height="36">
    <polygon label="oil spill" source="manual" occluded="0" points="4.00,4.00;20.00,4.00;20.00,14.00;4.00,14.00" z_order="0">
    </polygon>
  </image>
  <image id="1" name="sub/b.jpg" width="32" height="40">
    <box label="oil spill" source="manual" occluded="0" xtl="10.00" ytl="20.00" xbr="18.00" ybr="30.00" z_order="0">
    </box>
  </image>
  <image id="2" name="c.png" width="44" height="36">
  </image>"""


def test_zip_saved_with_images_needs_no_images_folder(tmp_path: Path, capsys) -> None:
    """A zip downloaded with CVAT's "Save images" (images/<name> beside annotations.xml;
    JPEGImages/<name> beside SegmentationClass/, as CVAT writes them) gives the images: no
    --images needed, a note says so; --images, when given, wins (and a note says that)."""
    want_a = np.zeros((36, 44), bool)
    want_a[4:14, 4:20] = True
    want_b = np.zeros((40, 32), bool)
    want_b[20:30, 10:18] = True
    xz = tmp_path / "task_7_annotations_cvat for images 1.1.zip"
    with zipfile.ZipFile(xz, "w") as zf:
        zf.writestr("annotations.xml", _annotations_xml(SAVED_XML))
        for name, h, w, fmt in SAVED:
            zf.writestr(f"images/{name}", _img_bytes(h, w, fmt))
    rc, out, err = _cli(
        capsys, "import", xz, "--from", "cvat", "--out", tmp_path / "x", "--no-progress"
    )
    assert rc == 0, err
    assert "3 masks written" in out, out
    assert "images from the zip's images/" in err and "not in" not in err, err
    assert np.array_equal(_read(tmp_path / "x" / "a.png") == 255, want_a)
    assert np.array_equal(_read(tmp_path / "x" / "b.png") == 255, want_b)
    assert not _read(tmp_path / "x" / "c.png").any()
    # Segmentation mask 1.1 with images: c was never drawn (no PNG) and gets its image's size
    rgb_a = np.zeros((36, 44, 3), np.uint8)
    rgb_a[want_a] = OIL
    rgb_b = np.zeros((40, 32, 3), np.uint8)
    rgb_b[want_b] = OIL
    sz = tmp_path / "task_7_segmentation mask 1.1.zip"
    with zipfile.ZipFile(sz, "w") as zf:
        zf.writestr("labelmap.txt", LABELMAP)
        zf.writestr("ImageSets/Segmentation/default.txt", "a\nsub/b\nc\n")
        zf.writestr("SegmentationClass/a.png", _png_bytes(rgb_a))
        zf.writestr("SegmentationClass/sub/b.png", _png_bytes(rgb_b))
        zf.writestr("SegmentationObject/a.png", _png_bytes(rgb_a))
        zf.writestr("SegmentationObject/sub/b.png", _png_bytes(rgb_b))
        for name, h, w, fmt in SAVED:
            zf.writestr(f"JPEGImages/{name}", _img_bytes(h, w, fmt))
    res = import_cvat(sz, tmp_path / "s", progress=False)
    assert sorted(p.name for p in res.written) == ["a.png", "b.png", "c.png"], res.skipped
    assert [n for n in res.notes if not n.startswith("no review record")] == [
        "images from the zip's JPEGImages/ (downloaded with CVAT's 'Save images'); --images, "
        "when given, wins (the task's GeoTIFFs keep their georeference)"
    ], res.notes
    assert np.array_equal(_read(tmp_path / "s" / "a.png") == 255, want_a)
    assert np.array_equal(_read(tmp_path / "s" / "b.png") == 255, want_b)
    c = _read(tmp_path / "s" / "c.png")
    assert c.shape == (36, 44) and not c.any()
    # --images wins: its GeoTIFF gives the georeference, a note names the source
    imgs = tmp_path / "imgs"
    write_tif(imgs / "a.tif", np.full((1, 36, 44), 40, np.uint8))
    res = import_cvat(xz, tmp_path / "g", images=imgs, progress=False)
    assert res.notes[0] == (
        f"images from --images {imgs}; the 3 images in the zip's images/ were not used "
        "(--images wins: it keeps a GeoTIFF's georeference)"
    ), res.notes
    with rasterio.open(tmp_path / "g" / "a.tif") as m:
        assert m.crs is not None and np.array_equal(m.read(1) == 255, want_a)


def test_bad_images_in_the_zip_are_one_error(tmp_path: Path, capsys) -> None:
    """Named as in the zip (not the temporary copy), exit 2, nothing written."""
    cases = {
        "none.zip": (
            [("other.png", b"")],
            "none of the 3 images of annotations.xml was found: looked in the zip's images/ for "
            "a.png, sub/b.jpg, c.png",
        ),
        "damaged.zip": ([("a.png", b"not an image")], "images/a.png: cannot decode image"),
        "size.zip": ([("a.png", _img_bytes(20, 20, "PNG"))], "a.png is 20x20 px in images/a.png"),
    }
    for zname, (files, what) in cases.items():
        z = tmp_path / zname
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("annotations.xml", _annotations_xml(SAVED_XML))
            for name, data in files:
                zf.writestr(f"images/{name}", data or _img_bytes(36, 44, "PNG"))
        rc, _, err = _cli(
            capsys, "import", z, "--from", "cvat", "--out", tmp_path / "m", "--no-progress"
        )
        line = _one_error(rc, err)
        assert what in line and line.startswith(f"error: {z}: "), (what, line)
        assert "give --images" in line and "elnet-cvat-images" not in line, line
        assert not (tmp_path / "m").exists(), what


def test_unzipped_export_folder_is_one_error_saying_what_to_give(tmp_path: Path, capsys) -> None:
    """A user who unzipped CVAT's download and gives the folder was told it 'does not exist'."""
    d = tmp_path / "task_7"
    (d / "images").mkdir(parents=True)
    (d / "annotations.xml").write_text(_annotations_xml(SAVED_XML), encoding="utf-8")
    rc, _, err = _cli(
        capsys, "import", d, "--from", "cvat", "--out", tmp_path / "m", "--no-progress"
    )
    line = _one_error(rc, err)
    assert line.startswith(f"error: {d}: ") and "does not exist" not in line, line
    assert "a folder" in line and "the zip CVAT downloaded" in line, line
    assert f"{d / 'annotations.xml'} with --images {d / 'images'}" in line, line
    assert not (tmp_path / "m").exists()


def test_zip_images_are_read_in_place_one_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """The zip's images are not extracted up front (a task of large images needed their whole
    size in temporary disk space): an image is read only when its mask needs it (here the
    GeoTIFF's georeference and nodata, the transparent PNG's nodata; not the JPEG and opaque
    PNG, whose sizes the XML gives), extracted alone for that time. The masks are those of the
    same images given as --images."""
    import tempfile

    import sam2elnet.data.images as images_mod

    xml = (
        SAVED_XML.replace('name="c.png"', 'name="c.tif"')
        + """
  <image id="3" name="d.png" width="44" height="36">
  </image>"""
    )
    rgba = np.full((36, 44, 4), 90, np.uint8)
    rgba[:6, :, 3] = 0  # transparent rows: nodata
    unzipped = tmp_path / "unzipped"
    write_tif(unzipped / "c.tif", np.full((1, 36, 44), 40, np.uint8), nodata=0)
    with rasterio.open(unzipped / "c.tif", "r+") as ds:
        ds.write(np.pad(np.full((1, 30, 44), 40, np.uint8), ((0, 0), (6, 0), (0, 0))))
    Image.fromarray(rgba, "RGBA").save(unzipped / "d.png")
    for name, h, w, fmt in SAVED[:2]:
        (unzipped / name).parent.mkdir(parents=True, exist_ok=True)
        (unzipped / name).write_bytes(_img_bytes(h, w, fmt))
    z = tmp_path / "task.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", _annotations_xml(xml))
        for f in sorted(q for q in unzipped.rglob("*") if q.is_file()):
            zf.write(f, f"images/{f.relative_to(unzipped).as_posix()}")
    watch = tmp_path / "tmp"
    watch.mkdir()
    reads: list[tuple[str, list[str]]] = []
    real = images_mod.read_image

    def spy(path, *a, **k):
        on_disk = sorted(q.name for q in watch.rglob("*") if q.is_file())
        reads.append((Path(path).name, on_disk))
        return real(path, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(tempfile, "tempdir", str(watch))
        m.setattr(images_mod, "read_image", spy)
        res = import_cvat(z, tmp_path / "zipped", progress=False)
    assert reads == [("c.tif", ["c.tif"]), ("d.png", ["d.png"])]  # one image on disk at a time
    assert list(watch.iterdir()) == []
    want = import_cvat(_xml_file(tmp_path, xml), tmp_path / "given", images=unzipped,
                       progress=False)  # fmt: skip
    assert sorted(p.name for p in res.written) == ["a.png", "b.png", "c.tif", "d.png"]
    assert [p.name for p in res.written] == [p.name for p in want.written]
    for a, b in zip(res.written, want.written, strict=True):
        assert np.array_equal(_read(a), _read(b)), a.name
    assert (_read(tmp_path / "zipped" / "d.png")[:6] == 127).all()  # the transparent rows
    with rasterio.open(tmp_path / "zipped" / "c.tif") as ds:
        assert ds.crs == "EPSG:32633" and (ds.read(1)[:6] == 127).all()


def _xml_file(tmp_path: Path, xml: str) -> Path:
    f = tmp_path / "annotations.xml"
    f.write_text(_annotations_xml(xml), encoding="utf-8")
    return f
