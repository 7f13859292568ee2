"""--warp-to: GCP-only outputs (Sentinel-1 GRD) resampled onto a regular map grid.

The synthetic scene's GCPs follow a known sheared affine map (like a GRD's slant geometry), so the
true map position of every pixel corner is known; a warped label must put a known object corner
there within one output pixel.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import micro_model_file
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.warp import transform as warp_points

from sam2elnet.data.raster import LABEL_NODATA
from sam2elnet.data.warp import parse_warp_crs, resolve_warp_crs, warp_to_map_grid
from sam2elnet.errors import DataError, UserError

os.environ.setdefault("SAM2ELNET_THREADS", "1")

H, W = 60, 80
R0, R1, C0, C1 = 20, 40, 30, 60  # the object: rows R0..R1-1, cols C0..C1-1
WGS84 = CRS.from_epsg(4326)


def lonlat(row: float, col: float) -> tuple[float, float]:
    """True map position (lon, lat) of pixel-corner coordinates (row, col)."""
    return 28.0 + 0.001 * col + 0.0002 * row, 43.0 - 0.0009 * row


def gcp_tif(path: Path, data: np.ndarray, nodata: float | None = None) -> Path:
    gcps = [
        GroundControlPoint(row=r, col=c, x=lonlat(r, c)[0], y=lonlat(r, c)[1], z=0.0)
        for r in (0, H // 2, H)
        for c in (0, W // 2, W)
    ]
    data = data if data.ndim == 3 else data[None]
    prof = dict(driver="GTiff", width=W, height=H, count=len(data), dtype=str(data.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **prof, nodata=nodata) as ds:
            ds.write(data)
            ds.gcps = (gcps, WGS84)
    return path


def label_tif(path: Path) -> Path:
    lab = np.zeros((H, W), np.uint8)
    lab[R0:R1, C0:C1] = 255
    lab[:, :3] = LABEL_NODATA
    return gcp_tif(path, lab, nodata=LABEL_NODATA)


def object_edges(path: Path) -> tuple[float, float, float, float, float, float]:
    """(north, west, south, east edge of the object in map units, pixel w, pixel h)."""
    with rasterio.open(path) as ds:
        a, t = ds.read(1), ds.transform
    rows, cols = np.nonzero(a == 255)
    north = (t * (0, rows.min()))[1]
    south = (t * (0, rows.max() + 1))[1]
    west = (t * (cols.min(), 0))[0]
    east = (t * (cols.max() + 1, 0))[0]
    return north, west, south, east, abs(t.a), abs(t.e)


def true_edges(crs: CRS) -> tuple[float, float, float, float]:
    corners = [lonlat(r, c) for r in (R0, R1) for c in (C0, C1)]
    xs, ys = warp_points(WGS84, crs, [c[0] for c in corners], [c[1] for c in corners])
    return max(ys), min(xs), min(ys), max(xs)


def plain_tif(path: Path, img: np.ndarray) -> Path:
    """A single-band uint16 GeoTIFF without any georeference (no CRS, transform or GCPs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=img.shape[1],
            height=img.shape[0],
            count=1,
            dtype="uint16",
        ) as ds:
            ds.write(img[None])
    return path


@pytest.mark.parametrize(
    ("crs", "method", "epsg"),
    [("EPSG:4326", "tps", 4326), ("utm", "tps", 32635), ("EPSG:32635", "polynomial", 32635)],
)
def test_warped_label_lands_at_its_map_position(
    tmp_path: Path, crs: str, method: str, epsg: int
) -> None:
    src = label_tif(tmp_path / "grd_label.tif")
    info = warp_to_map_grid(src, tmp_path / "map.tif", crs, method=method)
    assert info is not None and info.crs == f"EPSG:{epsg}"
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert ds.crs == CRS.from_epsg(epsg) and ds.gcps[0] == []
        assert ds.transform.b == 0 and ds.transform.d == 0  # north-up map grid
        assert ds.nodata == LABEL_NODATA and ds.dtypes[0] == "uint8"
        assert set(np.unique(ds.read(1)).tolist()) == {0, LABEL_NODATA, 255}  # nearest: no greys
        assert ds.tags()["WARPED_FROM"] == f"9 ground control points ({method})"
    north, west, south, east, pw, ph = object_edges(tmp_path / "map.tif")
    t_north, t_west, t_south, t_east = true_edges(CRS.from_epsg(epsg))
    assert abs(north - t_north) <= ph and abs(south - t_south) <= ph
    assert abs(west - t_west) <= pw and abs(east - t_east) <= pw


def test_warp_in_place_and_crs_choices(tmp_path: Path) -> None:
    src = label_tif(tmp_path / "l.tif")
    with rasterio.open(src) as ds:
        assert resolve_warp_crs("utm", ds) == CRS.from_epsg(32635)  # lon ~28.05 E, lat ~42.97 N
    info = warp_to_map_grid(src, None, "utm")
    assert info is not None and info.path == src
    assert warp_to_map_grid(src, None, "EPSG:32635") is None  # already there: nothing to do
    with rasterio.open(src) as ds:
        assert ds.crs == CRS.from_epsg(32635) and ds.gcps[0] == []
    # a CRS-georeferenced output is reprojected on request
    info = warp_to_map_grid(src, tmp_path / "ll.tif", "EPSG:4326")
    assert info is not None and info.source == "EPSG:32635"
    north, west, *_rest, pw, ph = object_edges(tmp_path / "ll.tif")
    t_north, t_west, *_ = true_edges(WGS84)
    assert abs(north - t_north) <= 2 * ph and abs(west - t_west) <= 2 * pw  # warped twice


def test_warp_probabilities_bilinear_nan_nodata(tmp_path: Path) -> None:
    p = np.zeros((H, W), np.float32)
    p[R0:R1, C0:C1] = 1.0
    p[:, :3] = np.nan
    src = gcp_tif(tmp_path / "p.tif", p, nodata=float("nan"))
    warp_to_map_grid(src, tmp_path / "pm.tif", "utm")
    with rasterio.open(tmp_path / "pm.tif") as ds:
        a = ds.read(1)
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
    assert np.isnan(a).any() and np.nanmax(a) == pytest.approx(1.0) and np.nanmin(a) == 0.0


def test_warp_bad_inputs(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            plain, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8"
        ) as ds:
            ds.write(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(DataError, match="no georeference .* drop --warp-to"):
        warp_to_map_grid(plain, tmp_path / "x.tif", "utm")
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(UserError, match="is not a CRS; give utm"):
        parse_warp_crs("EPSG:999999")
    with pytest.raises(UserError, match="--warp-method must be one of tps, polynomial"):
        warp_to_map_grid(label_tif(tmp_path / "l.tif"), None, "utm", method="cubic")
    assert parse_warp_crs(" UTM ") == "utm" and parse_warp_crs("") is None


def test_scene_warp_to_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sam2elnet.cli import main

    rng = np.random.default_rng(0)
    img = (rng.gamma(4, 100, (H, W))).astype(np.uint16)
    img[R0:R1, C0:C1] = 30
    src = gcp_tif(tmp_path / "s1_grd.tif", img)
    args = ["scene", "--model", "builtin:smoothing", "--image", str(src), "--tile", "32",
            "--overlap", "8", "--no-progress"]  # fmt: skip
    out = tmp_path / "lab.tif"
    assert main([*args, "--out", str(out), "--prob", "--warp-to", "utm"]) == 0
    std = capsys.readouterr()
    err = std.err
    assert "warped from 9 ground control points (tps)" in err and "keep the GCPs" not in err
    for f in (out, tmp_path / "lab_prob.tif"):
        with rasterio.open(f) as ds:
            assert ds.crs == CRS.from_epsg(32635) and ds.gcps[0] == []
    # the summary gives the size of the label written (the map grid), and the scene's, labelled
    with rasterio.open(out) as ds:
        size = f"{ds.width}x{ds.height} px"
    assert size != f"{W}x{H} px"
    assert f"{out}: {size} (warped; scene {W}x{H} px), " in std.out, std.out
    # without --warp-to the GCPs are kept (the default) and the note names --warp-to
    assert main([*args, "--out", str(tmp_path / "keep.tif")]) == 0
    assert "--warp-to utm" in capsys.readouterr().err
    with rasterio.open(tmp_path / "keep.tif") as ds:
        assert ds.crs is None and len(ds.gcps[0]) == 9
    # bad input: one error line, exit 2, nothing written
    plain = plain_tif(tmp_path / "plain.tif", img)
    for extra, msg in (
        (["--warp-to", "EPSG:999999"], "--warp-to 'EPSG:999999' is not a CRS"),
        (["--warp-to", "utm", "--warp-method", "cubic"], "--warp-method must be one of"),
        (["--warp-to", "utm", "--image", str(plain)], "has no georeference"),
    ):
        bad = tmp_path / "bad.tif"
        assert main([*args, "--out", str(bad), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and msg in err and err.count("\n") == 1, err
        assert not bad.exists()


def test_scene_warp_to_is_checked_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scene that cannot be warped, or a --warp-to typo, is refused before the model file is
    read: with a model file that is no model, the error is the warp one (exit 2, one line,
    nothing written), also through the Python API (scene_job)."""
    from sam2elnet.cli import main
    from sam2elnet.pipeline.scenes import scene_job

    model = tmp_path / "model.pt"
    model.write_bytes(b"not a model: never read when --warp-to is refused")
    plain = plain_tif(tmp_path / "plain.tif", np.ones((H, W), np.uint16))
    grd = gcp_tif(tmp_path / "grd.tif", np.ones((H, W), np.uint16))
    out = tmp_path / "out" / "lab.tif"
    for image, warp, msg in (
        (plain, "utm", f"{plain}: has no georeference"),
        (grd, "EPSG:999999", "--warp-to 'EPSG:999999' is not a CRS"),
        (grd, "utm --warp-method cubic", "--warp-method must be one of tps, polynomial"),
    ):
        args = ["scene", "--model", str(model), "--image", str(image), "--out", str(out),
                "--no-progress", "--warp-to", *warp.split()]  # fmt: skip
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
        assert not out.parent.exists()
    with pytest.raises(DataError, match="has no georeference"):
        scene_job(plain, out, model, warp_to="utm", progress=False)
    with pytest.raises(UserError, match="is not a CRS"):
        scene_job(grd, out, model, warp_to="EPSG:999999", progress=False)
    assert not out.parent.exists()


def test_export_warp_to_places_polygons_by_the_gcps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import geopandas as gpd

    from sam2elnet.cli import main

    (labels := tmp_path / "labels").mkdir()
    label_tif(labels / "grd.tif")
    out = tmp_path / "poly.gpkg"
    assert main(["export", "--labels", str(labels), "--out", str(out), "--warp-to", "EPSG:32635",
                 "--no-progress"]) == 0  # fmt: skip
    assert "warped from 9 ground control points (tps)" in capsys.readouterr().err
    gdf = gpd.read_file(out, layer="labels")
    assert gdf.crs == CRS.from_epsg(32635) and len(gdf) == 1
    west, south, east, north = gdf.total_bounds
    t_north, t_west, t_south, t_east = true_edges(CRS.from_epsg(32635))
    px = 100.0  # one warped-grid pixel is just under 100 m here
    assert abs(north - t_north) < px and abs(south - t_south) < px
    assert abs(west - t_west) < px and abs(east - t_east) < px
    assert (labels / "grd.tif").stat().st_size > 0 and len(list(labels.iterdir())) == 1
    with rasterio.open(labels / "grd.tif") as ds:  # the label itself is not changed
        assert ds.crs is None and len(ds.gcps[0]) == 9
    # COCO keeps pixel coordinates: --warp-to refused, nothing written
    rc = main(["export", "--labels", str(labels), "--out", str(tmp_path / "c.json"),
               "--warp-to", "utm"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "--warp-to applies to polygon exports" in err
    assert not (tmp_path / "c.json").exists()


# ------------------------------------------------------------ annotate / enhance --warp-to
def sar_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.gamma(4, 100, (H, W)).astype(np.uint16)
    img[R0:R1, C0:C1] = 30  # a dark slick
    return img


def map_tif(path: Path, data: np.ndarray) -> Path:
    """``data`` on a CRS + transform grid (EPSG:32633, 10 m pixels)."""
    from affine import Affine

    prof = dict(driver="GTiff", width=W, height=H, count=1, dtype=str(data.dtype))
    with rasterio.open(
        path, "w", **prof, crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4000000)
    ) as ds:
        ds.write(data[None])
    return path


def gcp_footprint_lonlat() -> tuple[float, float, float, float]:
    """(west, south, east, north) of the GCP scene, from its true map (corners are extremes)."""
    pts = [lonlat(r, c) for r in (0, H) for c in (0, W)]
    return (
        min(p[0] for p in pts),
        min(p[1] for p in pts),
        max(p[0] for p in pts),
        max(p[1] for p in pts),
    )


def test_annotate_warp_to_cli_puts_labels_on_a_map_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """annotate --warp-to EPSG:4326: the GCP-only GRD label and the UTM label get a real CRS +
    transform covering their footprint; each warped label is exactly the source-grid label warped
    by warp_to_map_grid (nearest: only 0 / 255 / 127 values); a PNG is skipped with the reason."""
    from rasterio.warp import transform_bounds

    from sam2elnet.cli import main

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    gcp_tif(imgs / "grd.tif", sar_image())
    map_tif(imgs / "utm.tif", sar_image())
    from PIL import Image

    Image.fromarray((sar_image() // 8).astype(np.uint8)).save(imgs / "plain.png")
    base = ["annotate", "--model", str(model), "--images", str(imgs), "--no-progress",
            "--precision", "32", "--save-prob"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "keep")]) == 0
    assert main([*base, "--out", str(tmp_path / "warp"), "--warp-to", "EPSG:4326"]) == 0
    out = capsys.readouterr().out
    assert "warped onto a map grid in EPSG:4326" in out and "skipped 1" in out
    skipped = (tmp_path / "warp" / "skipped.csv").read_text()
    assert "plain.png" in skipped and "is not a GeoTIFF" in skipped
    expect = {
        "grd.tif": gcp_footprint_lonlat(),
        "utm.tif": transform_bounds("EPSG:32633", WGS84, 500000, 4000000 - 10 * H, 500000 + 10 * W, 4000000),
    }  # fmt: skip
    for name, (west, south, east, north) in expect.items():
        warped = tmp_path / "warp" / "labels" / name
        ref = warp_to_map_grid(
            tmp_path / "keep" / "labels" / name, tmp_path / f"ref_{name}", "EPSG:4326"
        )
        assert ref is not None
        with rasterio.open(warped) as ds, rasterio.open(ref.path) as rs:
            assert ds.crs == WGS84 and ds.gcps[0] == [] and ds.nodata == LABEL_NODATA
            b, px, py = ds.bounds, abs(ds.transform.a), abs(ds.transform.e)
            assert abs(b.left - west) <= px and abs(b.right - east) <= px
            assert abs(b.bottom - south) <= py and abs(b.top - north) <= py
            lab = ds.read(1)
            np.testing.assert_array_equal(lab, rs.read(1))
        with rasterio.open(tmp_path / "keep" / "labels" / name) as src:
            a = src.read(1)
        assert set(np.unique(lab).tolist()) - {LABEL_NODATA} == set(np.unique(a).tolist())
        valid = lab != LABEL_NODATA  # the object share survives the warp (nearest neighbour)
        assert abs(np.mean(lab[valid] == 255) - np.mean(a == 255)) < 0.05
        with rasterio.open(tmp_path / "warp" / "prob" / name) as ds:
            assert ds.crs == WGS84 and ds.dtypes[0] == "float32"
    with rasterio.open(tmp_path / "keep" / "labels" / "grd.tif") as ds:  # default: GCPs kept
        assert ds.crs is None and len(ds.gcps[0]) == 9
    summary = (tmp_path / "warp" / "summary.json").read_text()
    assert '"to": "EPSG:4326"' in summary


def test_enhance_warp_to_and_windowed_path(tmp_path: Path) -> None:
    """enhance --warp-to utm on the whole-image and on the window-by-window path (an image over
    --max-memory): labels and probabilities land in the scene's UTM zone; the change statistics
    stay those of the image grid."""
    from sam2elnet.engine.infer import annotate_folder, enhance_folder
    from sam2elnet.engine.predictor import Predictor

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    gcp_tif(imgs / "grd.tif", sar_image())
    (coarse := tmp_path / "coarse").mkdir()
    c = np.zeros((H, W), np.uint8)
    c[R0 - 2 : R1 + 2, C0 : C1 + 4] = 255
    from PIL import Image

    Image.fromarray(c).save(coarse / "grd.png")
    kw = dict(progress=False, precision="32", save_prob=True)
    keep = enhance_folder(model, imgs, coarse, tmp_path / "keep", **kw)
    res = enhance_folder(model, imgs, coarse, tmp_path / "warp", warp_to="utm", **kw)
    assert res.rows[0]["added_px"] == keep.rows[0]["added_px"]
    assert res.summary["warp"] == {"to": "utm", "method": "tps"}
    for sub in ("labels", "prob"):
        with rasterio.open(tmp_path / "warp" / sub / "grd.tif") as ds:
            assert ds.crs == CRS.from_epsg(32635) and ds.gcps[0] == []
    # the window-by-window path (image above the memory budget) warps the same way
    pred = Predictor.from_file(model, precision="32")
    budget = pred.whole_bytes(32 * 32)
    for job, args in ((annotate_folder, (model, imgs)), (enhance_folder, (model, imgs, coarse))):
        out = tmp_path / f"tiled_{job.__name__}"
        r = job(*args, out, predictor=pred, tile=32, overlap=8, max_memory=budget,
                warp_to="EPSG:32635", warp_method="polynomial", **kw)  # fmt: skip
        assert (out / "tiles" / "grd.gpkg").is_file() and not r.skipped
        if job is enhance_folder:  # change map on the image grid, with the image's GCPs
            assert r.rows[0]["changes"] == "changes/grd.tif"
            with rasterio.open(out / "changes" / "grd.tif") as ds:
                assert ds.count == 3 and len(ds.gcps[0]) == 9
        for sub in ("labels", "prob"):
            with rasterio.open(out / sub / "grd.tif") as ds:
                assert ds.crs == CRS.from_epsg(32635) and ds.gcps[0] == []
                assert ds.tags()["WARPED_FROM"] == "9 ground control points (polynomial)"


@pytest.mark.parametrize("command", ["annotate", "enhance"])
def test_annotate_enhance_bad_warp_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from sam2elnet.cli import main

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    gcp_tif(imgs / "grd.tif", sar_image())
    args = [command, "--model", str(model), "--images", str(imgs), "--no-progress"]
    if command == "enhance":
        (lab := tmp_path / "lab").mkdir()
        label_tif(lab / "grd.tif")
        args += ["--labels", str(lab)]
    for extra, msg in (
        (["--warp-to", "EPSG:999999"], "--warp-to 'EPSG:999999' is not a CRS"),
        (["--warp-to", "utm", "--warp-method", "cubic"], "--warp-method must be one of"),
    ):
        out = tmp_path / "out"
        assert main([*args, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and msg in err and err.count("\n") == 1, err
        assert not out.exists()


def test_annotate_warp_to_utm_says_which_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found in a docs walk: `enhance --warp-to utm` closed with 'warped onto a map grid in utm';
    the zone is each image's own (its centre's), which the line now says."""
    from sam2elnet.cli import main

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    gcp_tif(imgs / "grd.tif", sar_image())
    args = ["annotate", "--model", str(model), "--images", str(imgs), "--no-progress",
            "--precision", "32", "--out", str(tmp_path / "o"), "--warp-to", "utm"]  # fmt: skip
    assert main(args) == 0
    assert (
        "label and probability GeoTIFFs warped onto a map grid in the WGS 84 UTM zone of each "
        "image's centre (GCP transformer tps;"
    ) in capsys.readouterr().out
