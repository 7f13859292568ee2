"""Which features of one vector file for several georeferenced images land on which image: the
one rule (:func:`sam2elnet.data.vector_names.image_features`) in every reader. A feature whose
``source`` / ``label`` names one of the run's images goes to that image only; any other (no
name, or a name that is no image of the run: a class name) goes by map position.

Before, ``enhance`` / ``scene`` / ``evaluate`` placed a shared file on georeferenced images by
map position only (a polygon tagged ``b.tif`` that overlaps ``a.tif`` landed on both), and
``import --from vector`` skipped a feature whose ``label`` held a class name.

Fixture: two 32 x 32 px GeoTIFFs, 10 m pixels, EPSG:32633 (:func:`helpers_data.write_tif`):
``a.tif`` at easting 500000, ``b.tif`` at 500160 (columns 16..31 of ``a`` are columns 0..15 of
``b``). Features, in the layout of :data:`FEATURES`, each in the overlap or reaching it.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_data import write_tif
from shapely.geometry import box

from sam2elnet.cli import main

X0, Y0, CRS = 500_000.0, 4_000_000.0, "EPSG:32633"


def _box(c0: int, c1: int, r0: int, r1: int) -> object:
    """Columns c0..c1-1, rows r0..r1-1 of a.tif."""
    return box(X0 + 10 * c0, Y0 - 10 * r1, X0 + 10 * c1, Y0 - 10 * r0)


#: (source, label, geometry): tagged a; tagged b (also over a); untagged; a class name
FEATURES = [
    ("a.tif", None, _box(18, 22, 2, 6)),
    ("b.tif", None, _box(24, 28, 10, 14)),
    (None, None, _box(20, 24, 20, 24)),
    (None, "oil", _box(30, 34, 28, 30)),
]


def _want(name: str) -> np.ndarray:
    """The pixels each image takes by the rule (b's columns are a's minus 16)."""
    m = np.zeros((32, 32), bool)
    if name == "a":
        m[2:6, 18:22] = m[20:24, 20:24] = m[28:30, 30:32] = True
    else:
        m[10:14, 8:12] = m[20:24, 4:8] = m[28:30, 14:18] = True
    return m


@pytest.fixture
def tiles(tmp_path: Path) -> tuple[Path, Path]:
    """``images/`` with a.tif and b.tif, and ``coarse.gpkg`` of :data:`FEATURES`."""
    rng = np.random.default_rng(0)
    for name, x0 in (("a", X0), ("b", X0 + 160)):
        img = rng.integers(20, 230, (3, 32, 32)).astype(np.uint8)
        write_tif(tmp_path / "images" / f"{name}.tif", img, x0=x0)
    src, lab, geoms = zip(*FEATURES, strict=True)
    gpkg = tmp_path / "coarse.gpkg"
    gdf = gpd.GeoDataFrame({"source": list(src), "label": list(lab)}, geometry=list(geoms), crs=CRS)
    gdf.to_file(gpkg, layer="labels")
    return tmp_path / "images", gpkg


def test_the_readers_place_a_shared_file_by_the_one_rule(tiles: tuple[Path, Path]) -> None:
    """Whole-image reader, window reader and evaluate's reader: the same pixels per image."""
    from sam2elnet.data.tiling import Window
    from sam2elnet.data.vector import rasterize_vector, read_vector
    from sam2elnet.data.vector_shared import SharedVector
    from sam2elnet.engine.eval_vector import VectorTruth
    from sam2elnet.engine.scene_coarse import CoarseSource

    images, gpkg = tiles
    files = [images / "a.tif", images / "b.tif"]
    sv = SharedVector(gpkg, read_vector(gpkg)).serving(files)
    vt = VectorTruth.shared(gpkg)
    vt.images = frozenset({"a", "b"})
    for f in files:
        want = _want(f.stem)
        got = rasterize_vector(sv, f, frame=sv.frame, shared=True)
        assert np.array_equal(got, want), f.name
        with rasterio.open(f) as ds:
            cs = CoarseSource(sv, ds)
            assert np.array_equal(cs.read(Window(0, 0, 32, 32)) > 0, want), f.name
        assert np.array_equal(vt.on_grid(gpkg, f), want), f.name


def test_import_enhance_and_evaluate_agree_on_the_pixels(
    tiles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_warp import micro_model_file

    images, gpkg = tiles
    masks = tmp_path / "masks"
    base = ["--images", str(images), "--no-progress"]
    assert main(["import", str(gpkg), "--from", "vector", "--out", str(masks), *base]) == 0
    for name in ("a", "b"):
        with rasterio.open(masks / f"{name}.tif") as ds:
            assert np.array_equal(ds.read(1) == 255, _want(name)), name

    model = micro_model_file(tmp_path / "m.pt", bands=3)
    out = tmp_path / "enh"
    rc = main(["enhance", "--model", str(model), "--labels", str(gpkg), "--out", str(out), *base])
    assert rc == 0, capsys.readouterr().err
    for name in ("a", "b"):  # change map, red band: 255 kept, 220 removed: the coarse pixels
        with rasterio.open(out / "changes" / f"{name}.tif") as ds:
            assert np.array_equal(np.isin(ds.read(1), (220, 255)), _want(name)), name

    preds = tmp_path / "preds"  # all-object predictions: TP = the truth pixels of each
    for name, x0 in (("a", X0), ("b", X0 + 160)):
        write_tif(preds / f"{name}.tif", np.full((1, 32, 32), 255, np.uint8), x0=x0)
    js = tmp_path / "ev.json"
    rc = main(["evaluate", "--pred", str(preds), "--truth", str(gpkg), "--json", str(js),
               "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    rows = {Path(r["pred"]).stem: r for r in json.loads(js.read_text())["images"]}
    assert {k: rows[k]["tp"] for k in ("a", "b")} == {"a": 36, "b": 40}


def test_the_report_cards_of_an_evaluation_read_back_place_by_the_rule(
    tiles: tuple[Path, Path], tmp_path: Path
) -> None:
    """An evaluation whose truth layer is no longer held (a result read back for a report):
    its cards place the shared truth file as the evaluation scored it, by the rule (before:
    by map position only, so a.tif's card drew b.tif's polygon over the overlap)."""
    from sam2elnet.engine.eval_readback import vector_truths
    from sam2elnet.engine.evaluate import evaluate_folders

    _, gpkg = tiles
    preds = tmp_path / "preds"
    for name, x0 in (("a", X0), ("b", X0 + 160)):
        write_tif(preds / f"{name}.tif", np.full((1, 32, 32), 255, np.uint8), x0=x0)
    res = evaluate_folders(preds, gpkg, progress=False)
    assert {Path(r.pred_path).stem: r.confusion.tp for r in res.images} == {"a": 36, "b": 40}
    res.layer = None  # read back: only the rows' paths
    files = vector_truths(res)
    for name in ("a", "b"):
        assert np.array_equal(files.on_grid(gpkg, preds / f"{name}.tif"), _want(name)), name
