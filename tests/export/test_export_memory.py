"""Bounded-memory export: strip-wise polygons written in batches, strip-wise COCO objects."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.transform import from_origin

import sam2elnet.export.vector as vector
from sam2elnet.export.api import export_labels
from sam2elnet.export.labels import LabelRaster
from sam2elnet.export.polygonize import iter_polygons

CRS = "EPSG:32633"


def noisy_label(h: int = 120, w: int = 90, seed: int = 0) -> np.ndarray:
    """Speckle plus a ring (a disc with a hole) that crosses many strip borders."""
    rng = np.random.default_rng(seed)
    lab = ((rng.random((h, w)) > 0.6) * 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    r2 = (yy - h // 2) ** 2 + (xx - w // 2) ** 2
    lab[r2 < 35**2] = 255
    lab[r2 < 12**2] = 0
    return lab


@pytest.fixture
def noisy_tif(tmp_path: Path) -> Path:
    lab = noisy_label()
    p = tmp_path / "noisy.tif"
    prof = dict(driver="GTiff", height=lab.shape[0], width=lab.shape[1], count=1, dtype="uint8",
                crs=CRS, transform=from_origin(500000, 4000000, 10, 10), nodata=127)  # fmt: skip
    with rasterio.open(p, "w", **prof) as ds:
        ds.write(lab, 1)
    return p


def _table(path: Path) -> gpd.GeoDataFrame:
    kw = {"layer": "labels"} if path.suffix == ".gpkg" else {}
    return gpd.read_file(path, **kw)


def _as_set(gdf: gpd.GeoDataFrame) -> list[tuple]:
    """Features without order: (geometry WKB, attributes); the geometry normalised and without
    collinear vertices (a polygon merged across a strip border keeps a vertex on the border)."""
    geoms = shapely.simplify(np.asarray(gdf.geometry.values), 0)
    wkb = shapely.to_wkb(shapely.normalize(geoms))
    cols = ["source", "label", "quality", "area_px", "area_map", "model_id"]
    attrs = gdf[cols].astype(str).itertuples(index=False, name=None)
    return sorted(zip(wkb.tolist(), attrs, strict=True))


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson"])
def test_batched_strip_export_equals_whole_raster_export(
    tmp_path: Path, noisy_tif: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
):
    # GeoJSON in the labels' CRS: WGS84 rounding would move the border vertices a merge keeps
    kw = {"model_id": "m", "progress": False, "geojson_crs": "source"}
    whole = export_labels(noisy_tif, tmp_path / "a" / f"l.{fmt}", strip_rows=10_000, **kw)
    monkeypatch.setattr(vector, "WRITE_BATCH", 37)
    strips = export_labels(noisy_tif, tmp_path / "b" / f"l.{fmt}", strip_rows=7, **kw)
    a, b = _table(whole.out), _table(strips.out)
    assert whole.n_features == strips.n_features == len(a) == len(b) > 100
    assert _as_set(a) == _as_set(b)  # same polygons with the same attributes
    assert b["poly_id"].tolist() == list(range(1, len(b) + 1))
    # the ring crosses ~10 strip borders and is still one polygon with its hole
    ring = a.geometry.area.idxmax()
    assert len(a.geometry[ring].interiors) >= 1
    assert (b.geometry.area.max(), len(b.geometry[b.geometry.area.idxmax()].interiors)) == (
        a.geometry.area.max(),
        len(a.geometry[ring].interiors),
    )


@pytest.mark.parametrize("geojson_crs", ["wgs84", "source"])
def test_geojson_batches_join_to_the_bytes_of_one_gdal_write(
    tmp_path: Path, noisy_tif: Path, monkeypatch: pytest.MonkeyPatch, geojson_crs: str
):
    one = export_labels(noisy_tif, tmp_path / "a" / "l.geojson", geojson_crs=geojson_crs,
                        progress=False)  # fmt: skip
    monkeypatch.setattr(vector, "WRITE_BATCH", 25)
    many = export_labels(noisy_tif, tmp_path / "b" / "l.geojson", geojson_crs=geojson_crs,
                         progress=False)  # fmt: skip
    assert one.out.read_bytes() == many.out.read_bytes()
    assert _table(many.out).crs.to_epsg() == (4326 if geojson_crs == "wgs84" else 32633)


def test_export_holds_at_most_one_batch_of_polygons(
    tmp_path: Path, noisy_tif: Path, monkeypatch: pytest.MonkeyPatch
):
    sizes: list[int] = []
    real = vector.LayerWriter.write

    def spy(self, gdf):  # noqa: ANN001, ANN202
        sizes.append(len(gdf))
        return real(self, gdf)

    monkeypatch.setattr(vector.LayerWriter, "write", spy)
    monkeypatch.setattr(vector, "WRITE_BATCH", 40)
    res = export_labels(noisy_tif, tmp_path / "l.gpkg", strip_rows=10, progress=False)
    assert len(sizes) >= 5 and max(sizes) <= 40 and sum(sizes) == res.n_features


def _spied(path: Path) -> tuple[LabelRaster, list[int]]:
    """The label opened, and the list that receives the first row of every strip it reads."""
    lab = LabelRaster(path)
    reads: list[int] = []
    real = lab.read_mask
    lab.read_mask = lambda row0, rows: (reads.append(row0), real(row0, rows))[1]
    return lab, reads


def test_polygons_stream_before_the_last_strip_is_read(noisy_tif: Path):
    lab, reads = _spied(noisy_tif)
    try:
        it = iter_polygons(lab, strip_rows=10)
        next(it)
        assert reads == [0]  # the first strip's inner polygons come out at once
        rest = list(it)
    finally:
        lab.close()
    assert len(reads) == 12 and len(rest) > 100


def test_failed_batch_leaves_nothing_half_written(
    tmp_path: Path, noisy_tif: Path, monkeypatch: pytest.MonkeyPatch
):
    calls = []
    real = vector.LayerWriter.write

    def failing(self, gdf):  # noqa: ANN001, ANN202
        calls.append(len(gdf))
        if len(calls) == 3:
            raise OSError("simulated write failure")
        return real(self, gdf)

    monkeypatch.setattr(vector.LayerWriter, "write", failing)
    monkeypatch.setattr(vector, "WRITE_BATCH", 30)
    for fmt in ("gpkg", "geojson", "shp"):
        calls.clear()
        out = tmp_path / fmt / f"l.{fmt}"
        with pytest.raises(OSError, match="simulated"):
            export_labels(noisy_tif, out, progress=False)
        assert list(out.parent.iterdir()) == []  # no output, no temporary file left


# ---------------------------------------------------------------- COCO strip by strip
def _ann_key(a: dict) -> str:
    import json

    return json.dumps({k: v for k, v in a.items() if k != "id"}, sort_keys=True)


@pytest.mark.parametrize("rle", [False, True])
def test_strip_coco_equals_whole_mask_coco(noisy_tif: Path, rle: bool):
    from sam2elnet.export.coco import CocoItem, CocoLabel, build_coco, rle_decode

    mask = noisy_label() == 255
    whole = build_coco([CocoItem("n.tif", mask, "noisy")], rle=rle, progress=False)
    one = build_coco([CocoLabel("n.tif", noisy_tif, "noisy")], rle=rle, progress=False)
    assert one["images"] == whole["images"]
    assert one["annotations"] == whole["annotations"]  # one strip: same order and ids
    strips = build_coco([CocoLabel("n.tif", noisy_tif, "noisy", strip_rows=7)], rle=rle,
                        progress=False)  # fmt: skip
    a, b = whole["annotations"], strips["annotations"]
    assert len(a) > 100 and sorted(map(_ann_key, a)) == sorted(map(_ann_key, b))
    ring = max(b, key=lambda x: x["area"])
    assert ring["bbox"][3] > 60  # the ring spans ~10 strips and is one annotation
    if rle:
        comp = rle_decode(ring["segmentation"])
        assert comp.sum() == ring["area"] and not (comp & ~mask).any()


def test_write_coco_streams_the_bytes_of_build_coco(
    tmp_path: Path, noisy_tif: Path, monkeypatch: pytest.MonkeyPatch
):
    import json

    from sam2elnet.export import coco

    head = coco._coco_head("oil", "m1")
    monkeypatch.setattr(coco, "_coco_head", lambda *a: head)
    items = [coco.CocoLabel("n.tif", noisy_tif, "noisy", strip_rows=9)] * 2
    q = {"noisy": 0.7}
    n_img, n_ann = coco.write_coco(tmp_path / "c.json", items, quality=q, progress=False)
    ref = coco.build_coco(items, quality=q, category="oil", model_id="m1", progress=False)
    assert (tmp_path / "c.json").read_text() == json.dumps(ref, allow_nan=False) + "\n"
    assert (n_img, n_ann) == (2, len(ref["annotations"]))
    assert [a["id"] for a in ref["annotations"]] == list(range(1, n_ann + 1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_write_coco_is_strict_json_with_a_non_finite_score(
    tmp_path: Path, noisy_tif: Path, bad: float
):
    """A NaN / infinite quality score (write_coco's own API, or a quality.csv saying 'inf')
    is written as null (the json_text rule), never as the bare tokens NaN / Infinity."""
    import json

    from sam2elnet.export import coco

    items = [coco.CocoLabel("n.tif", noisy_tif, "noisy", strip_rows=9)]
    out = tmp_path / "c.json"
    coco.write_coco(out, items, quality={"noisy": bad}, progress=False)
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def refuse(token: str) -> None:
        raise AssertionError(f"non-strict JSON token {token}")

    d = json.loads(text, parse_constant=refuse)
    assert d["images"][0]["predicted_quality"] is None
    assert d["annotations"] and all(a["score"] is None for a in d["annotations"])


def test_coco_objects_stream_strip_by_strip(noisy_tif: Path):
    from sam2elnet.export.regions import label_objects

    lab, reads = _spied(noisy_tif)
    try:
        it = label_objects(lab, strip_rows=10)
        first = next(it)
        assert reads == [0] and first.box[2] <= 10  # closed in the first strip, yielded at once
        rest = list(it)
    finally:
        lab.close()
    assert len(reads) == 12 and sum(o.area for o in [first, *rest]) == (noisy_label() == 255).sum()


def test_brush_rle_found_on_pixels_keeps_the_bytes():
    """The runs are found per pixel and scaled by the 4 RGBA channels; the stream is the one of
    the expanded H x W x 4 image (bytes pinned from that implementation), and decodes back."""
    from sam2elnet.export.brush import brush_decode, brush_encode

    m = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]], bool)
    assert brush_encode(m) == [0, 0, 0, 36, 57, 27, 252, 96, 22, 255, 239, 128, 71, 254]
    big = np.zeros((300, 400), bool)
    big[10:290, 5:390] = True  # runs longer than the largest field (65,536 values)
    assert np.array_equal(brush_decode(brush_encode(big), 300, 400), big)


def test_merged_region_keeps_the_holes_of_every_strip(tmp_path: Path):
    """A noisy region spanning all strips (many small holes in every strip, holes that only close
    across a border, two parts touching at a corner) merges to the whole-raster polygons."""
    from sam2elnet.export.polygonize import polygonize_label

    rng = np.random.default_rng(3)
    lab = np.full((64, 48), 255, np.uint8)
    lab[1:-1:3, 2:-2:4] = 0  # isolated background pixels: holes inside every strip
    lab[rng.random(lab.shape) > 0.93] = 0
    lab[20:26, 30:36] = 0  # a hole cut by the strip border at row 24
    lab[20:26, 30:36][2:4, 2:4] = 255  # with an island in it
    lab[:, 40] = 0  # right band (a polygon of its own) touching the main region at a corner
    lab[31, 40], lab[31, 41], lab[32, 41] = 255, 0, 255  # on the strip border at row 32
    p = tmp_path / "l.tif"
    with rasterio.open(p, "w", driver="GTiff", height=64, width=48, count=1, dtype="uint8",
                       crs=CRS, transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write(lab, 1)
    whole, _ = polygonize_label(p, strip_rows=10_000)
    strips, _ = polygonize_label(p, strip_rows=8)
    norm = lambda gs: sorted(shapely.to_wkb(shapely.normalize(shapely.simplify(np.asarray(gs), 0))))  # noqa: E731
    assert len(whole) == len(strips) and norm(whole) == norm(strips)
    big = max(strips, key=lambda g: g.area)
    assert len(big.interiors) > 50  # the holes of all 8 strips are in the one merged polygon
    band = [g for g in strips if g.bounds[0] == 500000 + 410]
    assert len(band) == 1 and len(band[0].interiors) > 5  # its own holes, not the main region's


@pytest.mark.parametrize(
    "transform",
    [
        Affine.translation(500000, 4000000) * Affine.rotation(17) * Affine.scale(10, -10),
        # the affine fit to a Sentinel-1-like label's GCPs (degrees, sheared)
        Affine(2.0004e-5, 1.0002e-6, 15.0, 9.9998e-7, -1.40003e-5, 45.0),
    ],
    ids=["rotated", "gcp-fit"],
)
def test_strips_of_a_grid_that_is_not_north_up_give_the_whole_raster_polygons(
    tmp_path: Path, transform: Affine
):
    """A label whose transform is not north-up (a rotated grid; a GCP-only label placed with
    the affine fit to its GCPs): the strips' polygons are merged where they meet, as for a
    north-up grid. Before, each strip's border vertices were computed through its own window
    transform and missed the next strip's by rounding, so every polygon crossing a strip border
    came out in pieces (755 -> 868 polygons at 7-row strips here)."""
    lab = noisy_label()
    p = tmp_path / "t.tif"
    with rasterio.open(p, "w", driver="GTiff", height=lab.shape[0], width=lab.shape[1], count=1,
                       dtype="uint8", crs=CRS, transform=transform) as ds:  # fmt: skip
        ds.write(lab, 1)
    from sam2elnet.export.polygonize import polygonize_label

    whole, _ = polygonize_label(p, strip_rows=10_000)
    strips, _ = polygonize_label(p, strip_rows=7)
    assert len(whole) == len(strips) == 755
    # the same polygons (a merged one keeps a vertex on each strip border it crossed, which is
    # not exactly collinear after a rotation, so no exact WKB comparison)
    areas = lambda gs: np.sort(shapely.area(np.asarray(gs)))  # noqa: E731
    assert np.allclose(areas(whole), areas(strips), rtol=1e-9)
    px = abs(transform.determinant)
    sym = shapely.symmetric_difference(shapely.union_all(whole), shapely.union_all(strips))
    assert shapely.area(sym) < 1e-6 * px
    assert all(shapely.is_valid(g) for g in strips)
    # in map coordinates: the first foreground pixel's polygon corner is the transform's
    # image of its pixel corner
    r, c = np.argwhere(lab == 255)[0]
    corner = transform * (float(c), float(r))
    assert any(
        np.isclose(shapely.get_coordinates(g), corner, rtol=0, atol=1e-9).all(axis=1).any()
        for g in whole
    )


def _label_tif(path: Path, lab: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=lab.shape[0], width=lab.shape[1],
                       count=1, dtype="uint8", crs=CRS,
                       transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write(lab, 1)
    return path


def _raw(path: Path, strip_rows: int) -> list[tuple[object, bool]]:
    """(polygon, known valid) pairs of the strip polygonisation, before the validity repair."""
    from sam2elnet.export import polygonize

    lab = LabelRaster(path)
    try:
        return list(polygonize._strip_polygons(lab, strip_rows))
    finally:
        lab.close()


@pytest.mark.parametrize("seed", range(6))
def test_merged_polygons_of_valid_pieces_are_valid_without_a_check(tmp_path: Path, seed: int):
    """Random speckle (4-connected GDAL pieces, holes touching shells and each other at
    corners, regions touching at corners across borders): every polygon merged across strips is
    marked valid and is valid by GEOS, and the strips give the whole-raster polygons."""
    rng = np.random.default_rng(seed)
    lab = ((rng.random((72, 56)) < rng.uniform(0.45, 0.75)) * 255).astype(np.uint8)
    p = _label_tif(tmp_path / "r.tif", lab)
    whole = _raw(p, 10_000)
    strips = _raw(p, int(rng.integers(3, 9)))
    merged = [g for g, known in strips if known]
    assert merged  # the check was skipped for polygons crossing strip borders
    assert all(shapely.is_valid(g) for g, _k in whole + strips)
    assert not any(known for _g, known in whole)  # one strip: GEOS checks every polygon
    norm = lambda gs: sorted(shapely.to_wkb(shapely.normalize(shapely.simplify(np.asarray(gs), 0))))  # noqa: E731
    assert norm([g for g, _k in whole]) == norm([g for g, _k in strips])


def test_an_invalid_piece_gets_its_merged_polygon_checked_and_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """With 8-connected pieces (self-touching rings, invalid for GEOS) the merged polygon is not
    marked valid, so iter_polygons checks it and repairs it (make_valid) like any other."""
    from rasterio import features
    from shapely.geometry import shape

    from sam2elnet.export import polygonize

    lab = np.zeros((8, 6), np.uint8)
    lab[1:7, 1] = 255  # a bar crossing the strip border at row 4 ...
    lab[2, 2] = lab[3, 3] = 255  # ... with a diagonal chain: one 8-connected self-touching ring
    p = _label_tif(tmp_path / "d.tif", lab)

    def shapes8(mask, transform):  # noqa: ANN001, ANN202
        for geom, _v in features.shapes(mask.astype(np.uint8), mask=mask, transform=transform,
                                        connectivity=8):  # fmt: skip
            yield shape(geom)

    monkeypatch.setattr(polygonize, "_shapes", shapes8)
    assert not _raw(p, 8)[0][0].is_valid  # one strip: one self-touching ring
    raw = _raw(p, 4)  # the invalid piece of rows 0-3 merged with the bar of rows 4-7
    assert raw and not any(known for _g, known in raw)
    lab_r = LabelRaster(p)
    try:
        out = list(polygonize.iter_polygons(lab_r, strip_rows=4))
    finally:
        lab_r.close()
    assert all(g.is_valid for g in out) and sum(g.area for g in out) == pytest.approx(8 * 100)


def test_brush_rle_packed_in_blocks_equals_one_packing(monkeypatch: pytest.MonkeyPatch):
    """Blocks of 3 chunks (bits carried across byte boundaries) give the bytes of one block;
    runs longer than one chunk (65,536 values) are split; the stream decodes to the mask."""
    from sam2elnet.export import brush

    rng = np.random.default_rng(5)
    masks = [rng.random((41, 67)) < 0.5, np.ones((300, 300), bool), rng.random((90, 700)) < 0.01]
    whole = [brush.brush_encode(m) for m in masks]
    monkeypatch.setattr(brush, "_BLOCK", 3)
    for m, one in zip(masks, whole, strict=True):
        assert brush.brush_encode(m) == one
        assert np.array_equal(brush.brush_decode(one, *m.shape), m)


def test_whole_mask_read_in_strips_equals_one_read(
    noisy_tif: Path, monkeypatch: pytest.MonkeyPatch
):
    """read_mask decodes a large window in row strips (Label Studio reads labels whole): the
    mask equals one decoding of the window, for the whole raster and for an offset window."""
    import sam2elnet.data.windowed as windowed

    lab = LabelRaster(noisy_tif)
    try:
        one = lab.read_mask_ignore()[0]
        sub = lab.read_mask_ignore(13, 50, 7, 60)[0]
        monkeypatch.setattr(windowed, "STRIP_PIXELS", 90 * 7)  # 7-row strips
        reads: list[int] = []
        real = lab.read_mask_ignore
        lab.read_mask_ignore = lambda *a: (reads.append(a[0]), real(*a))[1]  # type: ignore[method-assign]
        whole = lab.read_mask()
        assert whole.dtype == bool and np.array_equal(whole, one) and whole.any()
        assert reads == list(range(0, 120, 7))
        assert np.array_equal(lab.read_mask(13, 50, 7, 60), sub)
    finally:
        lab.close()
