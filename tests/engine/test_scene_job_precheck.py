"""``elnet scene`` of one flat scene is refused BEFORE the model loads and Ray starts.

The check before any window (``SceneInputs.check_usable``) ran inside ``predict_scene``, after
``scene_job`` had loaded the model (and, with ``--backend ray``, started its workers): a user
waited for both to be told the scene was blank. ``precheck_scene`` now refuses a scene that no
model can label (all nodata, constant file pixels) first; a folder keeps skip-and-continue.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import write_tif
from rasterio.enums import Resampling

from sam2elnet.engine import scene_norm
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.errors import DataError
from sam2elnet.pipeline import scenes

os.environ.setdefault("SAM2ELNET_THREADS", "1")

H = W = 96
KW = {"tile": 64, "overlap": 16, "progress": False}


@pytest.fixture(autouse=True)
def _small_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    # a 96^2 scene decimated by 5: rows / columns 0, 5, ..., 95 seen by the overview
    monkeypatch.setattr(scene_norm, "_OVERVIEW_PIXELS", 400)


def _no_model(*a: object, **k: object) -> None:
    raise AssertionError("the model was loaded for a scene refused by its pixels")


@pytest.mark.parametrize("backend", ["local", "ray"])
@pytest.mark.parametrize(
    ("data", "nodata", "words"),
    [
        (np.zeros((3, H, W), np.uint8), None, "constant image (every valid pixel"),
        (np.full((1, H, W), 7.5, np.float32), None, "constant image (every valid pixel"),
        (np.full((1, H, W), -9999, np.float32), -9999.0, "all nodata (no valid pixel"),
        (np.full((2, H, W), np.nan, np.float32), None, "all nodata (no valid pixel"),
    ],
)
def test_one_flat_scene_is_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, data, nodata, words
) -> None:
    monkeypatch.setattr(scenes, "load_scene_predictor", _no_model)
    src = write_tif(tmp_path / "flat.tif", data, nodata)
    with pytest.raises(DataError) as err:
        scenes.scene_job(src, tmp_path / "o.tif", tmp_path / "absent.pt", backend=backend, **KW)
    assert str(err.value).startswith(f"{src}: unusable scene, no label written: {words}")
    assert list(tmp_path.iterdir()) == [src]  # nothing written


def test_a_patch_the_overview_misses_is_found_and_predicted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only file pixels that are flat everywhere are refused early: a 3 x 3 patch between the
    overview's rows makes the strip pass stop, and the scene is predicted."""
    data = np.zeros((1, H, W), np.uint8)
    data[:, 41:44, 41:44] = 200  # off rows / columns 0, 5, 10, ...
    src = write_tif(tmp_path / "patch.tif", data)
    monkeypatch.setattr(scenes, "load_scene_predictor", lambda *a, **k: SmoothingPredictor())
    res = scenes.scene_job(src, tmp_path / "o.tif", "builtin:smoothing", **KW)
    assert res.n_predicted > 0 and (tmp_path / "o.tif").exists()


def test_bands_chosen_decide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Band 1 flat, band 2 varies: refused with --bands 1 only (any model reads band 2 else)."""
    rng = np.random.default_rng(0)
    data = np.stack([np.full((H, W), 9, np.uint8), rng.integers(0, 255, (H, W), np.uint8)])
    src = write_tif(tmp_path / "b.tif", data)
    monkeypatch.setattr(scenes, "load_scene_predictor", _no_model)
    with pytest.raises(DataError, match="constant image"):
        scenes.scene_job(src, tmp_path / "o.tif", "builtin:smoothing", bands=[1], **KW)
    with pytest.raises(AssertionError, match="the model was loaded"):  # band 2 varies: no refusal
        scenes.scene_job(src, tmp_path / "o.tif", "builtin:smoothing", **KW)


@pytest.mark.parametrize("path", ["scene_job", "predict_scene"])
def test_flat_overviews_out_of_date_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Overviews built from flat valid pixels, the pixels then overwritten with nodata: "all
    nodata", and the overviews named, before the model loads (``precheck_scene``) and in
    ``predict_scene``'s own check (``check_usable``, which said "all nodata" only)."""
    from sam2elnet.engine.scene import predict_scene

    src = write_tif(tmp_path / "s.tif", np.full((1, H, W), 5, np.uint8), 0)
    with rasterio.open(src, "r+") as ds:
        ds.build_overviews([2, 4], Resampling.nearest)
    with rasterio.open(src, "r+") as ds:
        ds.write(np.zeros((1, H, W), np.uint8))  # the overviews keep the old pixels
    monkeypatch.setattr(scenes, "load_scene_predictor", _no_model)
    with pytest.raises(DataError) as err:
        if path == "scene_job":
            scenes.scene_job(src, tmp_path / "o.tif", tmp_path / "absent.pt", **KW)
        else:
            predict_scene(src, tmp_path / "o.tif", SmoothingPredictor(), **KW)
    assert str(err.value).startswith(f"{src}: unusable scene, no label written: all nodata (")
    assert str(err.value).endswith(
        "they are out of date, rebuild them (gdaladdo -clean, then gdaladdo)"
    )
    assert not (tmp_path / "o.tif").exists()


def test_a_folder_skips_the_flat_scene_and_goes_on(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(2)
    write_tif(d / "a_flat.tif", np.zeros((1, H, W), np.uint8))
    write_tif(d / "b_ok.tif", rng.integers(0, 255, (1, H, W)).astype(np.uint8))
    res = scenes.scene_job(d, tmp_path / "out", "builtin:smoothing", **KW)
    assert res.done == ["b_ok.tif"]
    assert list(res.failed) == ["a_flat.tif"] and "constant image" in res.failed["a_flat.tif"]


def _coarse_refusal(scene: Path, label: Path) -> str:
    """The words predict_scene refuses ``label`` with once the model is there."""
    from sam2elnet.engine.scene import predict_scene

    with pytest.raises(DataError) as err:
        predict_scene(scene, scene.with_name("p.tif"), SmoothingPredictor(), coarse=label, **KW)
    return str(err.value)


@pytest.mark.parametrize("kind", ["vector", "raster"])
def test_one_scene_whose_labels_it_refuses_is_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Was: ``elnet scene --labels FILE`` with a vector file none of whose features overlaps the
    scene (a CRS mix-up, another area), or a raster of another size without georeference, was
    refused only after the model loaded (minutes for a large model, and Ray workers started).
    Now :func:`~sam2elnet.engine.scene_inputs.precheck_coarse` refuses it first, with the same
    words."""
    import geopandas as gpd
    from rasterio.crs import CRS
    from shapely.geometry import box

    rng = np.random.default_rng(3)
    if kind == "vector":  # 2 km east of the 960 m scene (EPSG:32633, corner 500000, 4000000)
        src = write_tif(tmp_path / "s.tif", rng.integers(0, 255, (1, H, W), np.uint8))
        label = tmp_path / "far.gpkg"
        far = box(503000, 3999000, 503500, 3999500)
        gpd.GeoDataFrame(geometry=[far], crs=CRS.from_epsg(32633)).to_file(label)
        words = f"{label}: the only label feature does not overlap the image: image extent"
    else:  # neither has a georeference, so a 50 x 40 px label cannot be aligned
        src = write_tif(tmp_path / "s.tif", rng.integers(0, 255, (1, H, W), np.uint8), georef=False)
        label = write_tif(tmp_path / "small.tif", np.zeros((1, 40, 50), np.uint8), georef=False)
        words = f"{label}: coarse label raster is 50x40 px but the scene is 96x96"
    expected = _coarse_refusal(src, label)
    assert expected.startswith(words), expected
    monkeypatch.setattr(scenes, "load_scene_predictor", _no_model)
    with pytest.raises(DataError) as err:
        scenes.scene_job(src, tmp_path / "o.tif", tmp_path / "absent.pt", labels=label, **KW)
    assert str(err.value) == expected
    assert not (tmp_path / "o.tif").exists()


def test_one_scene_with_an_overlapping_vector_label_reads_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the model loads and the prediction place one reading of the file."""
    import geopandas as gpd
    from rasterio.crs import CRS
    from shapely.geometry import box

    from sam2elnet.data import vector

    rng = np.random.default_rng(4)
    src = write_tif(tmp_path / "s.tif", rng.integers(0, 255, (1, H, W), np.uint8))
    label = tmp_path / "slick.gpkg"
    slick = box(500200, 3999400, 500500, 3999700)
    gpd.GeoDataFrame(geometry=[slick], crs=CRS.from_epsg(32633)).to_file(label)
    reads: list[Path] = []
    real = vector.read_vector

    def counted(p, **k):
        reads.append(Path(p))
        return real(p, **k)

    monkeypatch.setattr(vector, "read_vector", counted)
    monkeypatch.setattr(scenes, "load_scene_predictor", lambda *a, **k: SmoothingPredictor())
    res = scenes.scene_job(src, tmp_path / "o.tif", "builtin:smoothing", labels=label, **KW)
    assert res.n_predicted > 0 and (tmp_path / "o.tif").exists()
    assert reads == [label]
